//! mlp-core on the real balanced CIC-DDoS2019 sample (8,000 flows as published; rows with
//! non-finite cells dropped by `flowdata`'s default policy; 16 classes, 76 features).
//!
//! Protocol: `flowdata::read_csv` → `task_rows` → `stratified_split` 70/20/10 (seed 42) →
//! `preprocess` default preset (rank-based normal scores) fitted on the training rows → MLP trained on train (the `optimized` preset early-stops on the validation
//! part; the `sklearn-baseline` preset holds out 10 % of train itself, as scikit-learn does) →
//! accuracy and macro-F1 on the test part.
//!
//! Reproduce: `cargo test -p flowxai --test mlp_real -- --nocapture`
//! (numbers are printed; the asserts are floors, far below the measured values).
use std::path::PathBuf;

use mlp_core::{FittedMlp, MlpParams, MlpValidParams};
use ndarray::{Array1, Array2};

mod common;
use common::{balanced_sample as load, macro_f1, RealSample as Data};

fn evaluate(name: &str, params: MlpValidParams, d: &Data, use_val: bool) -> (f64, f64, FittedMlp) {
    let t0 = std::time::Instant::now();
    let val = use_val.then(|| (d.val.0.view(), d.val.1.view()));
    let m = params
        .fit(
            d.train.0.view(),
            d.train.1.view(),
            val,
            Some(d.classes.len()),
        )
        .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let pred = m.predict(d.test.0.view());
    let truth = d.test.1.as_slice().unwrap();
    let acc = pred.iter().zip(truth).filter(|(a, b)| a == b).count() as f64 / truth.len() as f64;
    let f1 = macro_f1(truth, pred.as_slice().unwrap(), d.classes.len());
    let h = m.history();
    eprintln!(
        "{name}: test accuracy {acc:.4}, macro-F1 {f1:.4}; {} epochs (best {:?}), {secs:.1} s fit; \
         train rows {}, val rows {}, test rows {}",
        h.len(),
        m.best_epoch(),
        d.train.0.nrows(),
        d.val.0.nrows(),
        d.test.0.nrows()
    );
    (acc, f1, m)
}

/// The `optimized` preset (batch 1024, ≤ 80 epochs, OneCycle max_lr 0.004) over seeds 0, 1, 2.
/// Measured on this split: test macro-F1 0.593 / 0.580 / 0.587 (mean 0.587), accuracy
/// 0.615 / 0.608 / 0.613. PyTorch with the same recipe on the same preprocessed split
/// (`crates/mlp-core/tests/fixtures/torch_optimized_reference.py`) gets 0.584 / 0.597 / 0.579
/// (mean 0.587). With the earlier `log-robust` preprocessing both were 0.578–0.579. With
/// 5,421 training rows a batch of 1024 is only 6 steps per epoch, so seeds vary.
/// Floor: the mean must reach 0.55.
#[test]
fn optimized_mlp_on_real_cic_ddos2019() {
    let d = load();
    let mut f1s = Vec::new();
    let mut last = None;
    for seed in [0u64, 1, 2] {
        let (acc, f1, m) = evaluate(
            &format!("optimized seed {seed}"),
            MlpParams::optimized().seed(seed).check().unwrap(),
            &d,
            true,
        );
        assert!(acc >= 0.5, "accuracy {acc:.4}");
        f1s.push(f1);
        last = Some(m);
    }
    let mean = f1s.iter().sum::<f64>() / f1s.len() as f64;
    eprintln!("optimized: mean test macro-F1 over seeds 0..2 = {mean:.4}");
    assert!(mean >= 0.55, "mean macro-F1 {mean:.4} below 0.55");
    // The saved model (PyTorch names + config with preprocessing) serves the same predictions.
    let m = last
        .unwrap()
        .with_classes(d.classes.clone())
        .unwrap()
        .with_feature_names(d.feature_names.clone())
        .unwrap()
        .with_preprocessing(Some(serde_json::from_str(&d.pipeline_json).unwrap()));
    let dir = tempfile::tempdir().unwrap();
    let (w, c) = (
        dir.path().join("mlp.safetensors"),
        dir.path().join("mlp.json"),
    );
    m.save(&w, &c).unwrap();
    let back = FittedMlp::load(&w, &c).unwrap();
    assert_eq!(back.predict(d.test.0.view()), m.predict(d.test.0.view()));
    assert_eq!(back.classes(), &d.classes[..]);
    assert!(back.preprocessing().is_some());
    if let Ok(dir) = std::env::var("MLP_EXPORT_DIR") {
        // For benches/peers check: `python crates/mlp-core/tests/fixtures/check_torch_load.py DIR`.
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        m.save(&dir.join("mlp.safetensors"), &dir.join("mlp.json"))
            .unwrap();
        let x = d.test.0.slice(ndarray::s![..64, ..]).to_owned();
        let p = m.predict_proba(x.view());
        let json = serde_json::json!({"x": x.iter().collect::<Vec<_>>(), "proba": p.iter().collect::<Vec<_>>(), "rows": 64});
        std::fs::write(dir.join("probe.json"), json.to_string()).unwrap();
        // The preprocessed split, for crates/mlp-core/tests/fixtures/torch_optimized_reference.py.
        let part = |(x, y): &(Array2<f32>, Array1<usize>)| serde_json::json!({"x": x.iter().collect::<Vec<_>>(), "y": y.to_vec(), "cols": x.ncols()});
        let data = serde_json::json!({"train": part(&d.train), "val": part(&d.val), "test": part(&d.test), "classes": d.classes});
        std::fs::write(dir.join("split.json"), data.to_string()).unwrap();
    }
}

#[test]
fn sklearn_baseline_mlp_on_real_cic_ddos2019() {
    let d = load();
    // Measured: accuracy 0.6202, macro-F1 0.6009 (61 epochs, best 49); with the earlier
    // `log-robust` preprocessing 0.5685 / 0.5534.
    let (acc, f1, _) = evaluate(
        "sklearn-baseline",
        MlpParams::sklearn_baseline().check().unwrap(),
        &d,
        false,
    );
    assert!(f1 >= 0.40, "macro-F1 {f1:.4}");
    assert!(acc >= 0.40, "accuracy {acc:.4}");
}

/// flowxai's default input for the MLPs (`Preset::PiecewiseLinear`: the normal scores above,
/// then 16 quantile bins per feature) against the Random Forest on the normal scores, same split,
/// seeds 0, 1, 2 for both. Measured: MLP macro-F1 mean 0.6100 (0.6148 / 0.6218 / 0.5933), forest
/// 0.6252; on the normal scores alone the MLP has 0.587 (above). On this split the forest stays
/// 1.5 points ahead; over the eight reproduce splits of `Preset::PiecewiseLinear`'s note the gap
/// is 0.2 points. PyTorch on the same split moved alike (normal scores 0.594, torch seeds 0–2;
/// encoded 0.623, seeds 0–4; scikit-learn's forest 0.635).
/// Floors, set from the spread over seeds (not from one measurement): training is bit-identical
/// for any thread count but not across CPU paths (an AVX-512 machine and an AVX2 one sum the
/// GEMMs in other orders), so another CPU moves these numbers like another seed does. Over
/// seeds 0–11 (this machine, AVX-512): MLP macro-F1 mean 0.6182, sd 0.0139; forest 0.6266, sd
/// 0.0034; per-seed MLP − forest mean −0.0085, sd 0.0124. A mean of 3 seeds then has sd
/// σ/√3, and the floors sit 3 of those below the means: MLP ≥ 0.594 → 0.59, and
/// MLP − forest ≥ −0.030 → −0.03 (each fails by chance about once in 700 runs).
#[test]
fn piecewise_linear_input_brings_the_mlp_level_with_the_forest() {
    use flowxai::rf_baseline::linfa::prelude::*;
    use flowxai::rf_baseline::RandomForest;
    use preprocess::PiecewiseLinearParams;

    let d = load();
    let ple = PiecewiseLinearParams::default()
        .fit(d.train.0.view())
        .unwrap();
    let enc = |x: &Array2<f32>| ple.transform(x.view()).unwrap();
    let encoded = Data {
        train: (enc(&d.train.0), d.train.1.clone()),
        val: (enc(&d.val.0), d.val.1.clone()),
        test: (enc(&d.test.0), d.test.1.clone()),
        classes: d.classes.clone(),
        feature_names: Vec::new(),
        pipeline_json: String::new(),
    };
    assert!(encoded.train.0.ncols() > 3 * d.train.0.ncols());
    let seeds = [0u64, 1, 2];
    let mlp = seeds
        .iter()
        .map(|&seed| {
            let params = MlpParams::optimized().seed(seed).check().unwrap();
            evaluate(
                &format!("piecewise-linear seed {seed}"),
                params,
                &encoded,
                true,
            )
            .1
        })
        .sum::<f64>()
        / 3.0;
    let truth = d.test.1.as_slice().unwrap();
    let forest = seeds
        .iter()
        .map(|&seed| {
            let rf = RandomForest::params()
                .n_trees(100)
                .seed(seed)
                .fit(&Dataset::new(d.train.0.clone(), d.train.1.clone()))
                .unwrap();
            let pred = rf.predict_labels(d.test.0.view());
            macro_f1(truth, pred.as_slice().unwrap(), d.classes.len())
        })
        .sum::<f64>()
        / 3.0;
    eprintln!("piecewise-linear MLP mean macro-F1 {mlp:.4}; forest on normal scores {forest:.4}");
    assert!(mlp >= 0.59, "MLP mean macro-F1 {mlp:.4}");
    assert!(mlp >= forest - 0.03, "MLP {mlp:.4} vs forest {forest:.4}");
}
