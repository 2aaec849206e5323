//! Cross-checks on the real balanced CIC-DDoS2019 sample (8,000 flows, 16 classes):
//! our forest vs smartcore's forest, a fully grown linfa-trees tree and linfa-ensemble's
//! random forest, on the same split as `fixtures/sklearn_rf_reference.py`; and the depth-4
//! linfa-trees figure.
mod common;

use std::path::PathBuf;

use common::cic_sample::{accuracy, macro_f1, CicSample};
use linfa::prelude::*;
use ndarray::Array1;
use rf_baseline::{fit_tree_figure, RandomForest};

fn sample() -> CicSample {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    CicSample::load(
        &dir.join("../../../shared/datasets"),
        &dir.join("tests/fixtures/sklearn_rf_reference.json"),
    )
}

fn ours_test_f1(s: &CicSample, seed: u64) -> f64 {
    let (xtr, ytr) = s.rows(&s.train);
    let (xte, yte) = s.rows(&s.test);
    let rf = RandomForest::params()
        .seed(seed)
        .fit(&Dataset::new(xtr, Array1::from(ytr)))
        .unwrap();
    let pred = rf.predict_labels(xte.view()).to_vec();
    macro_f1(&yte, &pred, s.classes.len())
}

#[test]
fn beats_or_matches_smartcore_forest_and_linfa_tree() {
    use smartcore::ensemble::random_forest_classifier::{
        RandomForestClassifier, RandomForestClassifierParameters,
    };
    use smartcore::linalg::basic::matrix::DenseMatrix;

    let s = sample();
    let (xtr, ytr) = s.rows(&s.train);
    let (xte, yte) = s.rows(&s.test);
    let n_classes = s.classes.len();

    let ours: f64 = (0..3).map(|seed| ours_test_f1(&s, seed)).sum::<f64>() / 3.0;

    // smartcore 0.4: its own DenseMatrix, i64-like labels, default 100 trees, sqrt features.
    let to_dense = |a: &ndarray::Array2<f32>| {
        let rows: Vec<Vec<f32>> = a.rows().into_iter().map(|r| r.to_vec()).collect();
        DenseMatrix::from_2d_vec(&rows).unwrap()
    };
    let ytr_i: Vec<i32> = ytr.iter().map(|&v| v as i32).collect();
    let params = RandomForestClassifierParameters::default()
        .with_n_trees(100)
        .with_seed(0);
    let sc = RandomForestClassifier::fit(&to_dense(&xtr), &ytr_i, params).unwrap();
    let sc_pred: Vec<usize> = sc
        .predict(&to_dense(&xte))
        .unwrap()
        .iter()
        .map(|&v| v as usize)
        .collect();
    let smartcore_f1 = macro_f1(&yte, &sc_pred, n_classes);

    // linfa-trees: one fully grown gini tree.
    let tree = linfa_trees::DecisionTree::params()
        .max_depth(None)
        .fit(&Dataset::new(xtr.clone(), Array1::from(ytr.clone())))
        .unwrap();
    let lt_pred = tree.predict(&xte).to_vec();
    let linfa_f1 = macro_f1(&yte, &lt_pred, n_classes);

    eprintln!(
        "test macro-F1: ours (mean of 3 seeds) {ours:.4}, smartcore forest {smartcore_f1:.4}, \
         linfa-trees single tree {linfa_f1:.4}, sklearn (fixture mean) {:.4}",
        s.sklearn_mean("test_macro_f1")
    );
    // "Within noise": 1.5 points on 800 test flows.
    assert!(
        ours >= smartcore_f1 - 0.015,
        "ours {ours} vs smartcore {smartcore_f1}"
    );
    assert!(
        ours >= linfa_f1 - 0.015,
        "ours {ours} vs linfa-trees {linfa_f1}"
    );
}

#[test]
fn depth4_figure_on_real_data_matches_linfa_predictions() {
    let s = sample();
    let (xtr, ytr) = s.rows(&s.train);
    let (tree, fig) = fit_tree_figure(xtr.view(), &ytr, &s.feature_names, &s.classes, 4).unwrap();
    assert!(fig.nodes.iter().all(|n| n.depth <= 4));
    assert_eq!(fig.nodes[0].samples, ytr.len());
    // Children's counts add up to the parent's.
    for n in &fig.nodes {
        if let (Some(l), Some(r)) = (n.left, n.right) {
            let sum: Vec<usize> = fig.nodes[l]
                .class_counts
                .iter()
                .zip(&fig.nodes[r].class_counts)
                .map(|(a, b)| a + b)
                .collect();
            assert_eq!(sum, n.class_counts);
        }
    }
    let linfa_pred = tree.predict(&xtr).to_vec();
    assert_eq!(fig.predict(xtr.view()), linfa_pred);
    let acc = accuracy(&ytr, &linfa_pred);
    eprintln!(
        "depth-4 linfa tree train accuracy {acc:.4}, {} nodes",
        fig.nodes.len()
    );
    assert!(
        acc > 0.3,
        "a depth-4 tree should beat 1/16 chance by far: {acc}"
    );
    let dot = fig.to_dot();
    assert!(dot.starts_with("digraph Tree {") && dot.trim_end().ends_with('}'));
    assert_eq!(dot.matches(" -> ").count(), fig.nodes.len() - 1);
}

/// linfa-ensemble 0.8's `RandomForest` (bagged fully grown linfa-trees trees, a random feature
/// subset per tree, majority vote) against ours on the same train/test rows.
///
/// Setup, the same for both sides: 20 trees (linfa-trees rescans every training row per node and
/// feature, so 100 trees take minutes in a debug test build on 2 cores), bootstrap samples of the
/// full training split, mean of seeds 0 and 1. linfa-ensemble draws a feature subset per tree,
/// not per node; all features (plain bagging) was its strongest setting here: with 30 trees and
/// 3 seeds it scored 0.610 macro-F1 with all features and 0.597 with 30 % (the value of its own
/// random-forest example), ours 0.612; in this test's setup ours 0.604, linfa-ensemble 0.610.
/// Ours must be above, or within noise (2 points of macro-F1 on 800 test flows) below.
#[test]
fn beats_or_matches_linfa_ensemble_forest() {
    use linfa_ensemble::EnsembleLearnerParams;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const TREES: usize = 20;
    let s = sample();
    let (xtr, ytr) = s.rows(&s.train);
    let (xte, yte) = s.rows(&s.test);
    let n_classes = s.classes.len();
    let train = Dataset::new(xtr, Array1::from(ytr));
    let seeds = [0u64, 1];

    let started = std::time::Instant::now();
    let linfa: f64 = seeds
        .iter()
        .map(|&seed| {
            let forest = EnsembleLearnerParams::new_fixed_rng(
                linfa_trees::DecisionTree::params().max_depth(None),
                ChaCha8Rng::seed_from_u64(seed),
            )
            .ensemble_size(TREES)
            .bootstrap_proportion(1.0)
            .feature_proportion(1.0)
            .fit(&train)
            .unwrap();
            assert_eq!(forest.models.len(), TREES);
            let pred: Array1<usize> = forest.predict(&xte);
            macro_f1(&yte, pred.as_slice().unwrap(), n_classes)
        })
        .sum::<f64>()
        / seeds.len() as f64;
    let linfa_s = started.elapsed().as_secs_f64();

    let started = std::time::Instant::now();
    let ours: f64 = seeds
        .iter()
        .map(|&seed| {
            let rf = RandomForest::params()
                .n_trees(TREES)
                .seed(seed)
                .fit(&train)
                .unwrap();
            macro_f1(
                &yte,
                rf.predict_labels(xte.view()).as_slice().unwrap(),
                n_classes,
            )
        })
        .sum::<f64>()
        / seeds.len() as f64;
    let ours_s = started.elapsed().as_secs_f64();

    eprintln!(
        "test macro-F1, {TREES} trees, mean of seeds 0 and 1: ours {ours:.4} ({ours_s:.1} s), \
         linfa-ensemble RandomForest {linfa:.4} ({linfa_s:.1} s)"
    );
    assert!(
        ours >= linfa - 0.02,
        "ours {ours:.4} more than 2 points below linfa-ensemble {linfa:.4}"
    );
}
