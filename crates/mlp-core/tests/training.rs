//! Gradient check, determinism, presets, save/load and error handling.
use mlp_core::engine::{train_step, MaskSource, Workspace};
use mlp_core::{
    balanced_sqrt_weights, Activation, Architecture, FittedMlp, HiddenSpec, Init, MlpError,
    MlpParams, Network, Schedule,
};
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn toy(n: usize, f: usize, k: usize, seed: u64) -> (Array2<f32>, Array1<usize>) {
    // k Gaussian blobs with distinct means: learnable but not trivially separable.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let y = Array1::from_shape_fn(n, |i| i % k);
    let x = Array2::from_shape_fn((n, f), |(i, j)| {
        let c = y[i] as f32;
        (c * ((j % 3) as f32 - 1.0)) * 0.8 + rng.gen_range(-1.0f32..1.0)
    });
    (x, y)
}

fn small_arch() -> Architecture {
    Architecture {
        n_features: 5,
        hidden: vec![
            HiddenSpec::new(6, true, Activation::Relu, 0.25),
            HiddenSpec::new(5, true, Activation::Elu, 0.0),
            HiddenSpec::new(4, false, Activation::Elu, 0.0),
        ],
        n_classes: 3,
    }
}

/// Central finite differences (f64 steps on f32 parameters) against the analytic gradient of
/// every parameter; fixed dropout mask. Tolerance: |fd − analytic| ≤ 3e-4 + 1e-2·|analytic|
/// (f32 loss, step 2e-3; a step of 1e-2 crosses ReLU kinks).
#[test]
#[allow(clippy::needless_range_loop)]
fn finite_difference_gradient_check() {
    let arch = small_arch();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut net = Network::new(arch, Init::PyTorch, &mut rng).unwrap();
    let (x, y) = toy(40, 5, 3, 9);
    let x = x.as_slice().unwrap().to_vec();
    let y = y.to_vec();
    let w: Vec<f32> = y.iter().map(|&c| [0.7f32, 1.0, 1.3][c]).collect();
    let masks = vec![
        (0..40 * 6)
            .map(|i| f32::from(i % 4 != 0))
            .collect::<Vec<_>>(),
        Vec::new(),
        Vec::new(),
    ];
    let mut ws = Workspace::new(&net, 40);
    let loss = |net: &mut Network, ws: &mut Workspace| {
        let st = train_step(net, ws, &x, &y, &w, MaskSource::Explicit(&masks), None);
        st.loss_sum / st.weight_sum
    };
    loss(&mut net, &mut ws);
    let analytic = ws.grads.clone();
    let h = 2e-3f32;
    let mut checked = 0;
    for i in 0..net.params.len() {
        let orig = net.params[i];
        net.params[i] = orig + h;
        let up = loss(&mut net, &mut ws);
        net.params[i] = orig - h;
        let down = loss(&mut net, &mut ws);
        net.params[i] = orig;
        let fd = (up - down) / (2.0 * f64::from(h));
        let an = f64::from(analytic[i]);
        assert!(
            (fd - an).abs() <= 3e-4 + 1e-2 * an.abs(),
            "param {i}: finite difference {fd} vs analytic {an}"
        );
        checked += 1;
    }
    assert_eq!(checked, net.params.len());
}

fn fit_params() -> mlp_core::MlpValidParams {
    MlpParams::optimized()
        .batch_size(600)
        .max_epochs(3)
        .seed(11)
        .check()
        .unwrap()
}

/// The same seed gives bit-identical weights with 1, 2 and 3 rayon threads (batches of 600
/// rows = three 256-row chunks).
#[test]
fn same_seed_same_bits_for_any_thread_count() {
    let (x, y) = toy(1500, 7, 4, 1);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| fit_params().fit(x.view(), y.view(), None, None).unwrap())
    };
    let a = run(1);
    let b = run(2);
    let c = run(3);
    let bits = |m: &FittedMlp| {
        m.network()
            .params
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&a), bits(&b));
    assert_eq!(bits(&a), bits(&c));
    assert_eq!(a.network().running, c.network().running);
    // A different seed gives different weights.
    let d = MlpParams::optimized()
        .batch_size(600)
        .max_epochs(3)
        .seed(12)
        .check()
        .unwrap()
        .fit(x.view(), y.view(), None, None)
        .unwrap();
    assert_ne!(bits(&a), bits(&d));
}

#[test]
fn optimized_preset_learns_blobs_and_records_history() {
    let (x, y) = toy(3000, 8, 4, 2);
    let (xv, yv) = toy(600, 8, 4, 3);
    let m = MlpParams::optimized()
        .batch_size(256)
        .max_epochs(20)
        .check()
        .unwrap()
        .fit(x.view(), y.view(), Some((xv.view(), yv.view())), None)
        .unwrap();
    let acc = m
        .predict(xv.view())
        .iter()
        .zip(yv.iter())
        .filter(|(a, b)| a == b)
        .count() as f64
        / yv.len() as f64;
    assert!(acc > 0.8, "validation accuracy {acc}");
    let h = m.history();
    assert!(!h.is_empty() && h.len() <= 20);
    assert!(h.last().unwrap().train_loss < h[0].train_loss);
    assert!(h.iter().all(|e| e.val_loss.is_some() && e.seconds >= 0.0));
    // OneCycle: lr rises then falls.
    let peak = h.iter().map(|e| e.learning_rate).fold(0.0, f64::max);
    assert!(peak > h[0].learning_rate && peak > h.last().unwrap().learning_rate);
    let p = m.predict_proba(xv.view());
    assert!(p.rows().into_iter().all(|r| (r.sum() - 1.0).abs() < 1e-5));
}

#[test]
fn sklearn_baseline_learns_blobs_with_internal_holdout() {
    let (x, y) = toy(2000, 8, 4, 4);
    let m = MlpParams::sklearn_baseline()
        .max_epochs(60)
        .check()
        .unwrap()
        .fit(x.view(), y.view(), None, None)
        .unwrap();
    let acc = m
        .predict(x.view())
        .iter()
        .zip(y.iter())
        .filter(|(a, b)| a == b)
        .count() as f64
        / y.len() as f64;
    assert!(acc > 0.8, "train accuracy {acc}");
    assert_eq!(m.layers().len(), 2);
    assert_eq!(m.layers()[0].weight.dim(), (100, 8));
    assert!(m.best_epoch().is_some());
}

#[test]
fn early_stopping_restores_best_epoch() {
    let (x, y) = toy(800, 6, 3, 5);
    let (xv, yv) = toy(300, 6, 3, 6);
    let es = mlp_core::EarlyStopping {
        patience: 2,
        tol: 0.0,
        metric: mlp_core::StopMetric::ValLoss,
        holdout_fraction: 0.1,
    };
    // A large constant lr makes validation loss bounce so patience triggers.
    let p = MlpParams::optimized()
        .batch_size(64)
        .max_epochs(40)
        .learning_rate(0.05)
        .schedule(Schedule::Constant)
        .early_stopping(Some(es))
        .check()
        .unwrap();
    let m = p
        .fit(x.view(), y.view(), Some((xv.view(), yv.view())), None)
        .unwrap();
    let h = m.history();
    let best = m.best_epoch().unwrap();
    let best_loss = h[best].val_loss.unwrap();
    assert!(h.iter().all(|e| e.val_loss.unwrap() >= best_loss));
    // The kept weights are the best epoch's: recomputing validation loss gives its value.
    let logits = m.serving().logits(xv.view());
    let cw = m.class_weights();
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (r, &c) in logits.rows().into_iter().zip(yv.iter()) {
        let mx = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = f64::from(mx) + r.iter().map(|&v| f64::from(v - mx).exp()).sum::<f64>().ln();
        num += f64::from(cw[c]) * (lse - f64::from(r[c]));
        den += f64::from(cw[c]);
    }
    assert!(
        (num / den - best_loss).abs() < 1e-9,
        "{} vs {best_loss}",
        num / den
    );
    if h.len() < 40 {
        assert_eq!(
            h.len(),
            best + 1 + 2,
            "stopped `patience` epochs after the best"
        );
    }
}

#[test]
fn save_load_roundtrip_keeps_predictions_and_pytorch_names() {
    let (x, y) = toy(700, 5, 3, 7);
    let m = fit_params().fit(x.view(), y.view(), None, None).unwrap();
    let m = m
        .with_classes(vec!["a".into(), "b".into(), "c".into()])
        .unwrap()
        .with_feature_names((0..5).map(|i| format!("feat_{i}")).collect())
        .unwrap()
        .with_preprocessing(Some(serde_json::json!({"kind": "test"})));
    let dir = tempfile::tempdir().unwrap();
    let (wp, cp) = (dir.path().join("m.safetensors"), dir.path().join("m.json"));
    m.save(&wp, &cp).unwrap();
    let back = FittedMlp::load(&wp, &cp).unwrap();
    assert_eq!(back.network().params, m.network().params);
    assert_eq!(back.network().running, m.network().running);
    assert_eq!(back.predict_proba(x.view()), m.predict_proba(x.view()));
    assert_eq!(back.classes(), m.classes());
    assert_eq!(back.feature_names(), m.feature_names());
    assert_eq!(back.preprocessing(), m.preprocessing());
    let bytes = std::fs::read(&wp).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    for n in [
        "net.0.weight",
        "net.0.bias",
        "net.1.weight",
        "net.1.running_mean",
        "net.1.running_var",
        "net.1.num_batches_tracked",
        "net.5.weight",
        "net.14.weight",
        "net.14.bias",
    ] {
        assert!(names.iter().any(|x| x == n), "missing {n} in {names:?}");
    }
    let nbt = st.tensor("net.1.num_batches_tracked").unwrap();
    assert_eq!(nbt.dtype(), safetensors::Dtype::I64);
    assert!(nbt.shape().is_empty());
    assert_eq!(st.tensor("net.4.weight").unwrap().shape(), &[256, 128]);
    // A wrong architecture is a typed error, not a panic.
    let mut bad = m.config();
    bad.architecture.hidden[0].units = 3;
    std::fs::write(&cp, serde_json::to_string(&bad).unwrap()).unwrap();
    assert!(matches!(
        FittedMlp::load(&wp, &cp),
        Err(MlpError::Format(_))
    ));
}

#[test]
fn bad_inputs_are_typed_errors() {
    let (x, mut y) = toy(100, 4, 2, 8);
    let p = fit_params();
    assert!(matches!(
        p.fit(x.view(), y.slice(ndarray::s![..50]), None, None),
        Err(MlpError::Shape(_))
    ));
    y[7] = 5;
    assert!(matches!(
        p.fit(x.view(), y.view(), None, Some(2)),
        Err(MlpError::Label {
            row: 7,
            label: 5,
            n_classes: 2
        })
    ));
    y[7] = 1;
    let mut x2 = x.clone();
    x2[[3, 2]] = f32::NAN;
    assert!(matches!(
        p.fit(x2.view(), y.view(), None, None),
        Err(MlpError::NonFinite { row: 3, column: 2 })
    ));
    assert!(matches!(
        MlpParams::optimized().learning_rate(0.0).check(),
        Err(MlpError::InvalidParam {
            name: "learning_rate",
            ..
        })
    ));
    assert!(matches!(
        MlpParams::optimized().batch_size(0).check(),
        Err(MlpError::InvalidParam {
            name: "batch_size",
            ..
        })
    ));
    let bad_hidden = vec![HiddenSpec::new(4, false, Activation::Relu, 1.0)];
    assert!(matches!(
        MlpParams::optimized().hidden(bad_hidden).check(),
        Err(MlpError::InvalidParam { name: "hidden", .. })
    ));
}

#[test]
fn balanced_sqrt_weights_have_mean_one_and_favour_rare_classes() {
    let w = balanced_sqrt_weights(&[100, 25, 400]);
    assert!(((w.iter().sum::<f32>() / 3.0) - 1.0).abs() < 1e-6);
    assert!(w[1] > w[0] && w[0] > w[2]);
    // sqrt(n/(k·c)) ratios: w1/w0 = sqrt(100/25) = 2.
    assert!((w[1] / w[0] - 2.0).abs() < 1e-5);
}

#[test]
fn one_cycle_end_points_match_pytorch_definition() {
    let s = Schedule::one_cycle_default();
    let total = 1000;
    let (lr0, b0) = s.at(0, total, 0.004, 0.9);
    assert!((lr0 - 0.004 / 25.0).abs() < 1e-15 && (b0 - 0.95).abs() < 1e-15);
    let (lr_peak, b_peak) = s.at(299, total, 0.004, 0.9);
    assert!((lr_peak - 0.004).abs() < 1e-15 && (b_peak - 0.85).abs() < 1e-15);
    let (lr_end, b_end) = s.at(999, total, 0.004, 0.9);
    assert!((lr_end - 0.004 / 25.0 / 1e4).abs() < 1e-15 && (b_end - 0.95).abs() < 1e-15);
}

/// Every serving-kernel path (portable, AVX2, AVX-512 where the CPU has them) matches an f64
/// reference `act(x·Wᵀ + b)` for odd shapes (row tails, column padding) and all activations.
#[test]
fn packed_kernels_match_reference() {
    use mlp_core::cpu::{KernelPath, PackedDense};
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut ran = std::collections::BTreeSet::new();
    let mut unsupported = std::collections::BTreeSet::new();
    for &(rows, k, n) in &[
        (1usize, 3usize, 1usize),
        (13, 76, 128),
        (9, 37, 17),
        (30, 256, 64),
    ] {
        for act in [Activation::Identity, Activation::Relu, Activation::Elu] {
            let w: Vec<f32> = (0..n * k).map(|_| rng.gen_range(-0.5f32..0.5)).collect();
            let b: Vec<f32> = (0..n).map(|_| rng.gen_range(-0.5f32..0.5)).collect();
            let ldx = k + 3;
            let x: Vec<f32> = (0..rows * ldx)
                .map(|_| rng.gen_range(-2.0f32..2.0))
                .collect();
            let layer = PackedDense::new(&w, n, k, &b, act);
            for path in [KernelPath::Portable, KernelPath::Avx2, KernelPath::Avx512] {
                let mut out = vec![f32::NAN; rows * layer.n_pad];
                if !layer.forward_with(path, &x, rows, ldx, &mut out) {
                    unsupported.insert(format!("{path:?}"));
                    continue;
                }
                ran.insert(format!("{path:?}"));
                for r in 0..rows {
                    for j in 0..n {
                        let z: f64 = f64::from(b[j])
                            + (0..k)
                                .map(|t| f64::from(w[j * k + t]) * f64::from(x[r * ldx + t]))
                                .sum::<f64>();
                        let want = match act {
                            Activation::Identity => z,
                            Activation::Relu => z.max(0.0),
                            Activation::Elu => {
                                if z > 0.0 {
                                    z
                                } else {
                                    z.exp_m1()
                                }
                            }
                        };
                        let got = f64::from(out[r * layer.n_pad + j]);
                        assert!(
                            (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                            "{path:?} {act:?} ({rows},{k},{n}) [{r},{j}]: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
    eprintln!("packed serving kernels run: {ran:?}; not supported by this CPU: {unsupported:?}");
    // What ran is what the CPU supports: no path is left out silently.
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        assert_eq!(ran.contains("Avx2"), avx2);
        assert_eq!(
            ran.contains("Avx512"),
            std::is_x86_feature_detected!("avx512f")
        );
    }
    assert!(ran.contains("Portable"));
}
