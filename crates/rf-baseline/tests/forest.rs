//! Unit tests of the histogram forest on tiny data with known answers.
use std::path::PathBuf;

use linfa::prelude::*;
use ndarray::{array, Array1, Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rf_baseline::{fit_tree_figure, ClassWeight, MaxFeatures, RandomForest, RfError, LEAF_FEATURE};

fn single_tree() -> rf_baseline::RandomForestParams {
    RandomForest::params()
        .n_trees(1)
        .bootstrap(false)
        .max_features(MaxFeatures::All)
}

fn random_data(n: usize, f: usize, classes: usize, seed: u64) -> (Array2<f32>, Array1<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((n, f), |_| rng.gen_range(-1.0f32..1.0));
    // Label from the first two features plus noise, so there is signal and overlap.
    let y = x
        .rows()
        .into_iter()
        .map(|r| {
            let s = r[0] + 0.5 * r[1] + rng.gen_range(-0.3f32..0.3);
            (((s + 1.5) / 3.0 * classes as f32).floor() as usize).min(classes - 1)
        })
        .collect();
    (x, y)
}

#[test]
fn one_feature_split_at_the_midpoint() {
    let x = array![
        [0.0f32],
        [1.0],
        [2.0],
        [3.0],
        [10.0],
        [11.0],
        [12.0],
        [13.0]
    ];
    let y = array![0usize, 0, 0, 0, 1, 1, 1, 1];
    let rf = single_tree()
        .fit(&Dataset::new(x.clone(), y.clone()))
        .unwrap();
    let t = &rf.trees()[0];
    assert_eq!(t.n_nodes(), 3);
    assert_eq!(t.feature[0], 0);
    assert_eq!(t.threshold[0], 6.5);
    assert_eq!(t.children(0), Some((1, 2)));
    assert_eq!(t.cover, vec![8.0, 4.0, 4.0]);
    assert_eq!(t.leaf_distribution(1).unwrap(), &[1.0, 0.0]);
    assert_eq!(t.leaf_distribution(2).unwrap(), &[0.0, 1.0]);
    assert_eq!(rf.predict(&x), y);
    // Routing is x <= threshold → left; NaN → right.
    let q = array![[6.5f32], [6.51], [f32::NAN], [-1e30]];
    assert_eq!(rf.predict(&q), array![0, 1, 1, 0]);
}

#[test]
fn xor_needs_depth_two_and_constant_features_are_skipped() {
    // Feature 0 is constant (never split on); features 1 and 2 form an XOR: no single split
    // helps, two levels classify perfectly.
    let x = array![
        [5.0f32, 0.0, 0.0],
        [5.0, 0.0, 1.0],
        [5.0, 1.0, 0.0],
        [5.0, 1.0, 1.0],
        [5.0, 0.0, 0.0],
        [5.0, 0.0, 1.0],
        [5.0, 1.0, 0.0],
        [5.0, 1.0, 1.0],
    ];
    let y = array![0usize, 1, 1, 0, 0, 1, 1, 0];
    let rf = single_tree()
        .max_depth(Some(2))
        .fit(&Dataset::new(x.clone(), y.clone()))
        .unwrap();
    assert_eq!(rf.predict(&x), y);
    let t = &rf.trees()[0];
    assert_eq!(t.depth(), 2);
    assert_eq!(t.n_nodes(), 7);
    assert!(t.feature.iter().all(|&f| f != 0));
    for n in 0..t.n_nodes() {
        if !t.is_leaf(n) {
            assert_eq!(t.threshold[n], 0.5);
        }
    }
    let imp = rf.feature_importances();
    assert_eq!(imp[0], 0.0);
    assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-12);
}

#[test]
fn matches_scikit_learn_trees_exactly_when_bins_are_exact() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sklearn_tree.json");
    let fx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mat = |v: &serde_json::Value| -> Array2<f32> {
        let rows: Vec<Vec<f32>> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_f64().unwrap() as f32)
                    .collect()
            })
            .collect();
        Array2::from_shape_fn((rows.len(), rows[0].len()), |(i, j)| rows[i][j])
    };
    let x = mat(&fx["x"]);
    let xq = mat(&fx["xq"]);
    let y: Array1<usize> = fx["y"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    for m in fx["models"].as_array().unwrap() {
        let depth = m["max_depth"].as_u64().unwrap() as usize;
        let rf = single_tree()
            .max_depth(Some(depth))
            .fit(&Dataset::new(x.clone(), y.clone()))
            .unwrap();
        let t = &rf.trees()[0];
        assert_eq!(
            t.n_nodes() as u64,
            m["node_count"].as_u64().unwrap(),
            "depth {depth}"
        );
        assert_eq!(t.feature[0] as u64, m["root_feature"].as_u64().unwrap());
        assert!((t.threshold[0] as f64 - m["root_threshold"].as_f64().unwrap()).abs() < 1e-6);
        let want = mat(&m["proba"]);
        let got = rf.predict_proba(xq.view());
        for (a, b) in got.iter().zip(want.iter()) {
            assert!(
                (a - b).abs() < 1e-6,
                "depth {depth}: proba {a} vs sklearn {b}"
            );
        }
        let imp_want: Vec<f64> = m["feature_importances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for (a, b) in rf.feature_importances().iter().zip(&imp_want) {
            assert!(
                (a - b).abs() < 1e-9,
                "depth {depth}: importance {a} vs sklearn {b}"
            );
        }
    }
}

#[test]
fn proba_rows_sum_to_one_and_importances_to_one() {
    let (x, y) = random_data(600, 6, 4, 1);
    let rf = RandomForest::params()
        .n_trees(25)
        .seed(3)
        .fit(&Dataset::new(x.clone(), y))
        .unwrap();
    let p = rf.predict_proba(x.view());
    assert_eq!(p.dim(), (600, 4));
    for r in p.rows() {
        assert!((r.sum() - 1.0).abs() < 1e-5, "row sums to {}", r.sum());
        assert!(r.iter().all(|&v| (0.0..=1.0 + 1e-6).contains(&v)));
    }
    let imp = rf.feature_importances();
    assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    // The two informative features rank first.
    let mut order: Vec<usize> = (0..6).collect();
    order.sort_by(|&a, &b| imp[b].total_cmp(&imp[a]));
    assert_eq!(&order[..2], &[0, 1], "importances {imp:?}");
    // Labels are the argmax of the probabilities.
    let labels = rf.predict(&x);
    for (r, &l) in p.rows().into_iter().zip(labels.iter()) {
        assert!(r.iter().all(|&v| v <= r[l]));
    }
}

#[test]
fn same_seed_same_bytes_for_any_thread_count() {
    let (x, y) = random_data(2000, 8, 3, 2);
    let ds = Dataset::new(x.clone(), y);
    let params = RandomForest::params().n_trees(12).seed(11);
    let fit_with = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let rf = params.fit(&ds).unwrap();
            (rf.to_json_bytes().unwrap(), rf.predict_proba(x.view()))
        })
    };
    let (b1, p1) = fit_with(1);
    let (b2, p2) = fit_with(2);
    let (b3, _) = fit_with(2);
    assert_eq!(b1, b2, "1 vs 2 threads");
    assert_eq!(b2, b3, "same seed twice");
    assert_eq!(p1, p2);
    let other = RandomForest::params()
        .n_trees(12)
        .seed(12)
        .fit(&ds)
        .unwrap();
    assert_ne!(other.to_json_bytes().unwrap(), b1, "the seed must matter");
}

#[test]
fn save_load_roundtrip_and_corruption_is_rejected() {
    let (x, y) = random_data(300, 4, 3, 5);
    let rf = RandomForest::params()
        .n_trees(5)
        .fit(&Dataset::new(x.clone(), y))
        .unwrap()
        .with_class_names(vec!["a".into(), "b".into(), "c".into()])
        .unwrap();
    let dir = std::env::temp_dir().join(format!("rf-baseline-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rf.json");
    rf.save(&path).unwrap();
    let back = RandomForest::load(&path).unwrap();
    assert_eq!(back.to_json_bytes().unwrap(), rf.to_json_bytes().unwrap());
    assert_eq!(back.predict_proba(x.view()), rf.predict_proba(x.view()));
    assert_eq!(back.classes(), &["a", "b", "c"]);
    std::fs::remove_dir_all(&dir).unwrap();

    // A child index pointing outside the tree must be a typed error, not a panic at predict time.
    let mut v: serde_json::Value = serde_json::from_slice(&rf.to_json_bytes().unwrap()).unwrap();
    v["trees"][0]["child_or_leaf"][0] = serde_json::json!(1_000_000);
    let err = RandomForest::from_json_slice(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(matches!(err, RfError::Json(_)), "{err}");
    assert!(err.to_string().contains("tree 0 node 0"), "{err}");
    assert!(matches!(
        RandomForest::from_json_slice(b"{"),
        Err(RfError::Json(_))
    ));
    assert!(matches!(
        RandomForest::load("/nonexistent/rf.json"),
        Err(RfError::Io { .. })
    ));
}

#[test]
fn parameters_are_checked() {
    let bad = [
        RandomForest::params().n_trees(0),
        RandomForest::params().max_depth(Some(0)),
        RandomForest::params().min_samples_split(1),
        RandomForest::params().min_samples_leaf(0),
        RandomForest::params().max_bins(1),
        RandomForest::params().max_bins(257),
        RandomForest::params().max_features(MaxFeatures::Fraction(1.5)),
        RandomForest::params().max_features(MaxFeatures::Count(0)),
    ];
    for p in bad {
        assert!(
            matches!(p.check_ref(), Err(RfError::InvalidParameter { .. })),
            "{p:?}"
        );
    }
    let x = Array2::<f32>::zeros((0, 3));
    let y = Array1::<usize>::zeros(0);
    assert!(matches!(
        RandomForest::params().fit(&Dataset::new(x, y)),
        Err(RfError::EmptyData { .. })
    ));
    let rf = single_tree()
        .fit(&Dataset::new(
            array![[0.0f32, 1.0], [1.0, 0.0]],
            array![0usize, 1],
        ))
        .unwrap();
    assert!(matches!(
        rf.try_predict_proba(Array2::<f32>::zeros((1, 3)).view()),
        Err(RfError::FeatureCount {
            expected: 2,
            got: 3
        })
    ));
    assert!(rf.clone().with_class_names(vec!["x".into()]).is_err());
}

#[test]
fn defaults_follow_scikit_learn() {
    let p = RandomForest::params().check().unwrap();
    assert_eq!(p.n_trees(), 100);
    assert_eq!(p.max_depth(), None);
    assert_eq!(p.min_samples_split(), 2);
    assert_eq!(p.min_samples_leaf(), 1);
    assert_eq!(p.max_features(), MaxFeatures::Sqrt);
    assert_eq!(MaxFeatures::Sqrt.resolve(76), 8);
    assert!(p.bootstrap());
    assert_eq!(p.class_weight(), ClassWeight::None);
}

#[test]
fn class_weights_and_min_samples_leaf() {
    // 90 / 10 imbalance; balanced weights make both classes weigh n/2 at the root.
    let (x, _) = random_data(100, 3, 2, 9);
    let y: Array1<usize> = (0..100).map(|i| usize::from(i < 10)).collect();
    for (cw, root) in [
        (ClassWeight::None, [90.0, 10.0]),
        (ClassWeight::Balanced, [50.0, 50.0]),
        (
            ClassWeight::BalancedSqrt,
            [
                90.0 * (100.0f64 / 180.0).sqrt(),
                10.0 * (100.0f64 / 20.0).sqrt(),
            ],
        ),
    ] {
        let rf = single_tree()
            .class_weight(cw)
            .min_samples_leaf(7)
            .fit(&Dataset::new(x.clone(), y.clone()))
            .unwrap();
        let t = &rf.trees()[0];
        let total = root[0] + root[1];
        assert!(
            (t.cover[0] - total).abs() < 1e-3,
            "{cw:?}: root cover {}",
            t.cover[0]
        );
        // Every leaf keeps ≥ 7 training rows: check by routing the data.
        let mut per_leaf = vec![0usize; t.n_nodes()];
        for r in x.axis_iter(Axis(0)) {
            per_leaf[t.leaf_of(r.as_slice().unwrap())] += 1;
        }
        for (n, &rows) in per_leaf.iter().enumerate() {
            if t.feature[n] == LEAF_FEATURE {
                assert!(rows >= 7, "{cw:?}: leaf {n} has {rows} rows");
            }
        }
    }
}

#[test]
fn two_dimensional_single_column_targets_fit() {
    // linfa's `Dataset<f32, usize>` defaults to 2-D targets; one column is accepted.
    let x = array![[0.0f32], [1.0], [2.0], [3.0]];
    let y = array![[0usize], [0], [1], [1]];
    let rf = single_tree().fit(&Dataset::new(x.clone(), y)).unwrap();
    assert_eq!(rf.predict_labels(x.view()).to_vec(), vec![0, 0, 1, 1]);
}

#[test]
fn tiny_figure_has_known_split_and_dot() {
    let x = array![[0.0f32, 5.0], [1.0, 5.0], [2.0, 5.0], [3.0, 5.0]];
    let names = vec!["Flow Bytes/s".to_string(), "const \"q\"".to_string()];
    let classes = vec!["BENIGN".to_string(), "Syn".to_string()];
    let (_, fig) = fit_tree_figure(x.view(), &[0, 0, 1, 1], &names, &classes, 3).unwrap();
    assert_eq!(fig.nodes.len(), 3);
    let root = &fig.nodes[0];
    assert_eq!(root.feature.as_deref(), Some("Flow Bytes/s"));
    assert_eq!(root.threshold, Some(1.5));
    assert_eq!(root.class_counts, vec![2, 2]);
    assert_eq!(fig.nodes[root.left.unwrap()].class_counts, vec![2, 0]);
    assert_eq!(fig.nodes[root.right.unwrap()].class_counts, vec![0, 2]);
    let dot = fig.to_dot();
    assert!(dot.contains("Flow Bytes/s < 1.5"), "{dot}");
    assert!(dot.contains("class = Syn"));
    assert!(fit_tree_figure(x.view(), &[0, 0, 1, 1], &names, &classes, 0).is_err());
    assert!(fit_tree_figure(x.view(), &[0, 0, 1, 2], &names, &classes, 2).is_err());
}

/// The packed inference layout (8-byte nodes, hot child adjacent, one-class leaves coded inline,
/// 8192-row blocks walked 16 lanes at a time with refill) must give exactly the bits of the plain
/// per-tree walk summed in tree order (so also within 1e-6 and the same argmax), NaN rows
/// included, for any row count (partial lane groups and blocks), for fully grown trees (every
/// leaf one class) and for depth-limited ones (mixed leaves through the table).
#[test]
fn predict_proba_bits_equal_plain_tree_walk() {
    let (x, y) = random_data(600, 5, 4, 11);
    let grown = RandomForest::params()
        .n_trees(7)
        .seed(5)
        .fit(&Dataset::new(x.clone(), y.clone()))
        .unwrap();
    assert!(grown.trees().iter().any(|t| t.depth() > 8));
    let shallow = RandomForest::params()
        .n_trees(7)
        .seed(5)
        .max_depth(Some(3))
        .fit(&Dataset::new(x, y))
        .unwrap();
    let is_one_class = |d: &[f32]| d.iter().filter(|&&v| v == 1.0).count() == 1;
    let leaf_rows = |f: &RandomForest| -> Vec<Vec<f32>> {
        f.trees()
            .iter()
            .flat_map(|t| {
                t.leaf_values
                    .chunks(4)
                    .map(<[f32]>::to_vec)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    assert!(leaf_rows(&grown).iter().all(|d| is_one_class(d)));
    let shallow_leaves = leaf_rows(&shallow);
    assert!(shallow_leaves.iter().any(|d| !is_one_class(d)));
    assert!(shallow_leaves.iter().any(|d| is_one_class(d)));

    let (mut probe, _) = random_data(20_000, 5, 4, 12);
    // NaN goes right; exact thresholds go left.
    probe[[3, 0]] = f32::NAN;
    probe[[4, 1]] = f32::NAN;
    let t0 = &grown.trees()[0];
    probe[[5, t0.feature[0] as usize]] = t0.threshold[0];
    for forest in [&grown, &shallow] {
        let scale = 1.0 / forest.trees().len() as f32;
        for rows in [1, 15, 17, 257, 8193, 20_000] {
            let part = probe.slice(ndarray::s![..rows, ..]);
            let got = forest.predict_proba(part);
            for (i, r) in part.rows().into_iter().enumerate() {
                let mut want = vec![0f32; forest.n_classes()];
                for t in forest.trees() {
                    let leaf = t.leaf_of(r.as_slice().unwrap());
                    for (w, v) in want.iter_mut().zip(t.leaf_distribution(leaf).unwrap()) {
                        *w += *v;
                    }
                }
                for (j, w) in want.iter().enumerate() {
                    assert_eq!(
                        got[[i, j]].to_bits(),
                        (w * scale).to_bits(),
                        "rows {rows}, row {i}, class {j}"
                    );
                }
            }
        }
    }
}
