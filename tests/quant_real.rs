//! quant on the real balanced CIC-DDoS2019 sample: int8 (dynamic and static) versus fp32.
//!
//! Protocol (the same as `tests/mlp_real.rs`): `flowdata::read_csv` → `task_rows` →
//! `stratified_split` 70/20/10 (seed 42) → `preprocess` default preset fitted on the training rows →
//! `MlpParams::optimized()` (76→128→256→128→64→16, seed 42)
//! trained with early stopping on the validation part → BatchNorm folded (`FittedMlp::layers`) →
//! quantized by this crate → accuracy and macro-F1 on the held-out rows (test + validation parts).
//! Static models are calibrated on 2,000 training rows.
//!
//! Reproduce: `cargo test -p flowxai --test quant_real -- --nocapture` (all numbers printed).
use std::time::Instant;

use mlp_core::MlpParams;
use ndarray::{s, Array1, Array2, Axis};
use quant::{
    fp32_logits, DynamicQuantParams, Observer, QuantMlp, Scratch, StaticQuantParams,
    WeightGranularity,
};

mod common;
use common::{balanced_sample as load, macro_f1};

fn argmax(logits: &Array2<f32>) -> Vec<usize> {
    logits
        .rows()
        .into_iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (j, &v)| if v > b.1 { (j, v) } else { b },
                )
                .0
        })
        .collect()
}

fn scores(pred: &[usize], truth: &Array1<usize>, k: usize) -> (f64, f64) {
    let truth = truth.as_slice().unwrap();
    let acc = pred.iter().zip(truth).filter(|(a, b)| a == b).count() as f64 / truth.len() as f64;
    (acc, macro_f1(truth, pred, k))
}

/// Median single-flow latency in microseconds (reused scratch, one row at a time).
fn single_flow_us(model: &QuantMlp, x: &Array2<f32>) -> f64 {
    let mut scratch = Scratch::new();
    let mut out = Array2::zeros((1, model.n_outputs()));
    let mut times: Vec<f64> = (0..x.nrows().min(500))
        .map(|i| {
            let row = x.slice(s![i..i + 1, ..]);
            let t = Instant::now();
            model
                .logits_into(row, &mut scratch, out.view_mut())
                .unwrap();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

#[test]
fn int8_matches_fp32_on_real_cic_ddos2019() {
    let d = load();
    let k = d.classes.len();
    let params = MlpParams::optimized().seed(42).check().unwrap();
    let t0 = Instant::now();
    let fitted = params
        .fit(
            d.train.0.view(),
            d.train.1.view(),
            Some((d.val.0.view(), d.val.1.view())),
            Some(k),
        )
        .unwrap();
    eprintln!(
        "trained optimized MLP in {:.1} s ({} epochs)",
        t0.elapsed().as_secs_f64(),
        fitted.history().len()
    );
    let layers = fitted.layers();
    // Quantization fidelity is judged on every held-out row (test + validation, ~2,300 flows):
    // on the test part alone one flow is 0.065 points, and the comparison is int8 against fp32
    // of the same model, not a generalisation estimate.
    let xt = &ndarray::concatenate(Axis(0), &[d.test.0.view(), d.val.0.view()]).unwrap();
    let yt = &ndarray::concatenate(Axis(0), &[d.test.1.view(), d.val.1.view()]).unwrap();

    // fp32 reference: the folded layers must reproduce mlp-core's own predictions.
    let fp32 = fp32_logits(layers, xt.view()).unwrap();
    let fp32_pred = argmax(&fp32);
    assert_eq!(fp32_pred, fitted.predict(xt.view()).to_vec());
    let (acc32, f132) = scores(&fp32_pred, yt, k);
    eprintln!(
        "fp32          : accuracy {acc32:.4}, macro-F1 {f132:.4} ({} held-out rows)",
        yt.len()
    );

    let calib = d.train.0.slice(s![..2000.min(d.train.0.nrows()), ..]);
    let candidates: Vec<(String, QuantMlp)> = vec![
        (
            "dynamic per-tensor".into(),
            DynamicQuantParams::new().quantize(layers).unwrap(),
        ),
        (
            "dynamic per-channel".into(),
            DynamicQuantParams::new()
                .weight_granularity(WeightGranularity::PerChannel)
                .quantize(layers)
                .unwrap(),
        ),
        (
            "static minmax".into(),
            StaticQuantParams::new()
                .observer(Observer::MinMax)
                .calibrate(layers, calib)
                .unwrap(),
        ),
        (
            "static p99.99".into(),
            StaticQuantParams::new()
                .observer(Observer::Percentile(99.99))
                .calibrate(layers, calib)
                .unwrap(),
        ),
        (
            "static hist-MSE".into(),
            StaticQuantParams::new()
                .observer(Observer::HistogramMse { bins: 2048 })
                .calibrate(layers, calib)
                .unwrap(),
        ),
        (
            "static entropy".into(),
            StaticQuantParams::new()
                .observer(Observer::HistogramEntropy { bins: 2048 })
                .calibrate(layers, calib)
                .unwrap(),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (name, model) in &candidates {
        // Whole test set as one batch (the dynamic range is per batch, as in PyTorch).
        let pred = argmax(&model.logits(xt.view()).unwrap());
        let (acc, f1) = scores(&pred, yt, k);
        let agree =
            pred.iter().zip(&fp32_pred).filter(|(a, b)| a == b).count() as f64 / pred.len() as f64;
        let file = model.save(dir.path().join("m.safetensors")).unwrap();
        let size = model.size_report();
        let lat = single_flow_us(model, xt);
        eprintln!(
            "{name:<20}: accuracy {acc:.4} ({:+.2} pt), macro-F1 {f1:.4} ({:+.2} pt); params {} B int8 vs {} B fp32 \
             ({:.2}×), file {file} B; single-flow median {lat:.1} µs ({:?}); argmax agreement with fp32 {agree:.4}",
            100.0 * (acc - acc32),
            100.0 * (f1 - f132),
            size.int8_bytes,
            size.fp32_bytes,
            size.reduction,
            model.kernel()
        );
        assert!(size.reduction > 3.5, "{name}: {size:?}");
        // The goal is within 1 point. Held by per-channel dynamic and the static observers other
        // than entropy. PyTorch's default per-tensor weight scale suffers from the folded
        // BatchNorm (it rescales each row differently, so one scale fits the rows badly): it gets
        // 2 points. KL/entropy calibration clips these peaked, long-tailed activations to ~1/8 of
        // their range and loses ~11 points here; it is kept as an option and only checked to stay
        // far above chance (1/16).
        let tol = match name.as_str() {
            "dynamic per-tensor" => 0.02,
            "static entropy" => 0.20,
            _ => 0.01,
        };
        // Fidelity: the int8 model predicts what the fp32 one does (entropy excepted, see above).
        let min_agree = if name.contains("entropy") { 0.5 } else { 0.94 };
        if (acc - acc32).abs() > tol || (f1 - f132).abs() > tol || agree < min_agree {
            failures.push(format!(
                "{name}: accuracy {acc:.4}, macro-F1 {f1:.4} vs fp32 {acc32:.4}, {f132:.4}; agreement {agree:.4}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
