//! quant on real CIC-DDoS2019 data: int8 (dynamic and static) versus fp32.
//!
//! `int8_within_one_point_on_the_reproduce_split` rebuilds the 17-class split of
//! `cargo xtask reproduce` (balanced sample ∪ raw heads, ≤ 500 flows per class, stratified
//! 70/15/15, seed 42, default preprocessing, optimized MLP for ≤ 80 epochs) and checks the
//! int8 models that reproduce serves against fp32 on its 1,262 test flows (and, with the
//! `log-robust` preprocessing, that they fix what the earlier models got wrong).
//!
//! `int8_matches_fp32_on_real_cic_ddos2019` (the same protocol as `tests/mlp_real.rs`):
//! `flowdata::read_csv` → `task_rows` →
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
    fp32_logits, ActivationRange, DynamicQuantParams, InputGranularity, Observer, QuantMlp,
    Scratch, StaticQuantParams, WeightGranularity,
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
            "dynamic per-row".into(),
            DynamicQuantParams::new()
                .weight_granularity(WeightGranularity::PerChannel)
                .activation_range(ActivationRange::PerRow)
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
            "static p99.99 tensor".into(),
            StaticQuantParams::new()
                .input_granularity(InputGranularity::PerTensor)
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
        // The goal is within 1 point. Held by the per-row dynamic model and the static
        // observers with per-feature input ranges. The per-tensor input ranges are coarser on
        // normal-score inputs (one step of 3.75/127 for every feature): PyTorch's default
        // per-tensor weight scale, which also suffers from the folded BatchNorm (it rescales each
        // row differently, so one scale fits the rows badly), lost 1.6 points when measured,
        // per-channel weights with the batch-wide input range 1.2, min-max static +1.2 (the
        // test rows are 2,323: 1.2 points is 28 flows). With the earlier `log-robust` inputs
        // these were 2 / < 1 / < 1 points, and entropy calibration lost 11 points (it clipped
        // the long-tailed activations to 1/8 of their range); on normal scores it is within 0.4.
        let tol = match name.as_str() {
            "dynamic per-tensor" => 0.02,
            "dynamic per-channel" | "static minmax" => 0.015,
            _ => 0.01,
        };
        // Fidelity: the int8 model predicts what the fp32 one does (0.939–0.992 measured).
        let min_agree = 0.93;
        if (acc - acc32).abs() > tol || (f1 - f132).abs() > tol || agree < min_agree {
            failures.push(format!(
                "{name}: accuracy {acc:.4}, macro-F1 {f1:.4} vs fp32 {acc32:.4}, {f132:.4}; agreement {agree:.4}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// What `cargo xtask reproduce` trains on for its 17-class table (see `xtask/src/reproduce.rs`:
/// `cic_frame`, `THESIS_SPLIT`, `prepare`, `fit_optimized`): returns fp32 model layers,
/// calibration rows (the first 2,048 training rows), test rows and labels.
fn reproduce_split(
    preset: preprocess::Preset,
) -> (
    Vec<mlp_core::inference::DenseLayer>,
    Array2<f32>,
    Array2<f32>,
    Array1<usize>,
    usize,
) {
    use flowdata::{read_csv, stratified_split, FlowFrame, LabelLevel, ReadOptions};
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/datasets/cic-ddos2019");
    let read = |p: std::path::PathBuf| read_csv(&[p], &ReadOptions::default()).unwrap().0;
    let all = FlowFrame::concat(&[
        read(root.join("balanced-sample/combined_data.csv")),
        read(root.join("raw-heads")),
    ])
    .unwrap()
    .task_rows();
    let rows = flowdata::cap_per_class(&all.targets(LabelLevel::Fine).y, 500, &[], 42);
    let cic = all.select(&rows);
    let t = cic.targets(LabelLevel::Fine);
    let fractions = flowdata::SplitFractions {
        train: 0.70,
        test: 0.15,
        valid: 0.15,
    };
    let split = stratified_split(&t.y, fractions, 42).unwrap();
    let part = |idx: &[usize]| {
        let y: Array1<usize> = idx.iter().map(|&i| t.y[i] as usize).collect();
        (cic.x.select(Axis(0), idx), y)
    };
    let ((xtr, ytr), (xva, yva), (xte, yte)) =
        (part(&split.train), part(&split.valid), part(&split.test));
    let pipe = preset.params().fit(xtr.view()).unwrap();
    let tf = |x: &Array2<f32>| pipe.transform(x.view()).unwrap();
    let (xtr, xva, xte) = (tf(&xtr), tf(&xva), tf(&xte));
    let k = t.classes.len();
    let fitted = MlpParams::optimized()
        .max_epochs(80)
        .seed(42)
        .check()
        .unwrap()
        .fit(
            xtr.view(),
            ytr.view(),
            Some((xva.view(), yva.view())),
            Some(k),
        )
        .unwrap();
    let calib = xtr.slice(s![..2048.min(xtr.nrows()), ..]).to_owned();
    (fitted.layers().to_vec(), calib, xte, yte, k)
}

/// Agreement with fp32 of reproduce's int8 models before and after the per-row / per-feature
/// fix, on the reproduce split with `preset`: `[dynamic per-batch, static per-tensor input,
/// dynamic per-row, static per-feature input]`. Asserts the served ones (the last two) are
/// within one point of fp32 and agree on ≥ 98 % of the flows.
fn reproduce_int8_agreement(preset: preprocess::Preset) -> Vec<f64> {
    let (layers, calib, xte, yte, k) = reproduce_split(preset);
    let fp32_pred = argmax(&fp32_logits(&layers, xte.view()).unwrap());
    let (acc32, f132) = scores(&fp32_pred, &yte, k);
    eprintln!(
        "{preset:?} preprocessing, fp32: accuracy {acc32:.4}, macro-F1 {f132:.4} ({} test flows, {k} classes)",
        yte.len()
    );
    let per_channel = DynamicQuantParams::new().weight_granularity(WeightGranularity::PerChannel);
    let models = [
        // Reproduce's models before the fix: kept to show what the fix fixes.
        (
            "dynamic per-batch",
            per_channel.clone().quantize(&layers).unwrap(),
        ),
        (
            "static per-tensor input",
            StaticQuantParams::new()
                .input_granularity(InputGranularity::PerTensor)
                .calibrate(&layers, calib.view())
                .unwrap(),
        ),
        // What reproduce serves.
        (
            "dynamic per-row",
            per_channel
                .activation_range(ActivationRange::PerRow)
                .quantize(&layers)
                .unwrap(),
        ),
        (
            "static per-feature input",
            StaticQuantParams::new()
                .calibrate(&layers, calib.view())
                .unwrap(),
        ),
    ];
    let mut agreement = Vec::new();
    for (name, model) in &models {
        // The whole test set as one batch, as reproduce scores it.
        let pred = argmax(&model.logits(xte.view()).unwrap());
        let (acc, f1) = scores(&pred, &yte, k);
        let agree =
            pred.iter().zip(&fp32_pred).filter(|(a, b)| a == b).count() as f64 / pred.len() as f64;
        eprintln!(
            "{name:<25}: accuracy {acc:.4} ({:+.2} pt), macro-F1 {f1:.4} ({:+.2} pt), argmax agreement with fp32 {agree:.4}",
            100.0 * (acc - acc32),
            100.0 * (f1 - f132)
        );
        agreement.push(agree);
        if !name.starts_with("dynamic per-batch") && !name.starts_with("static per-tensor") {
            assert!(
                (acc - acc32).abs() <= 0.01 && (f1 - f132).abs() <= 0.01 && agree >= 0.98,
                "{preset:?} {name}: accuracy {acc:.4} vs {acc32:.4}, macro-F1 {f1:.4} vs {f132:.4}, agreement {agree:.4}"
            );
        }
    }
    agreement
}

#[test]
fn int8_within_one_point_on_the_reproduce_split() {
    // What reproduce runs: default preprocessing. Measured: the served models agree with fp32
    // on 0.995 and 0.989 of the test flows, the pre-fix ones on 0.972 and 0.989: normal-score
    // inputs are bounded, so a batch-wide range costs little.
    let default = reproduce_int8_agreement(preprocess::Preset::Default);
    assert!(
        default[2] >= default[0] && default[3] >= default[1],
        "{default:?}"
    );
    // The fix matters where inputs are long-tailed, as with the `log-robust` preprocessing
    // reproduce used when it was made: each served model keeps clearly more of fp32's
    // predictions than the model it replaced (0.857 → 0.992 and 0.958 → 0.991 when measured).
    let log_robust = reproduce_int8_agreement(preprocess::Preset::LogRobust);
    assert!(log_robust[2] > log_robust[0] + 0.05, "{log_robust:?}");
    assert!(log_robust[3] > log_robust[1] + 0.015, "{log_robust:?}");
}
