//! `preprocess` equals numpy/scikit-learn (float32 input) on 320 real CIC-DDoS2019 flows.
//!
//! Fixture: `fixtures/preprocess_cases.json`, written by `fixtures/gen_fixtures.py` (versions and
//! seed inside). Tolerance: 1e-6 relative (plus 1e-12 absolute for exact zeros) on every value;
//! fitted parameters (bounds, centres, scales) must be bit-exact, because the crate reproduces
//! numpy's selection and interpolation arithmetic exactly.

use ndarray::Array2;
use preprocess::{
    class_weights, ClassWeighting, ConstantFeatureFilterParams, FittedStep, NormalScoresParams,
    PercentileClipperParams, Pipeline, Preset, RobustScalerParams, SignedLog1p,
};
use serde_json::Value;

mod common;
use common::{fixture, matrix};

const REL: f64 = 1e-6;
const ABS: f64 = 1e-12;

fn cases() -> Value {
    fixture("preprocess_cases.json")
}

fn vector(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn assert_close(what: &str, got: &Array2<f32>, want: &Array2<f32>) {
    assert_close_floor(what, got, want, &vec![0.0; got.ncols()]);
}

/// 1e-6 relative, plus `floor[j]` absolute in column `j`.
fn assert_close_floor(what: &str, got: &Array2<f32>, want: &Array2<f32>, floor: &[f64]) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let mut worst = 0.0f64;
    for ((idx, &g), &w) in got.indexed_iter().zip(want.iter()) {
        let (g, w) = (f64::from(g), f64::from(w));
        let err = (g - w).abs();
        assert!(
            err <= REL * g.abs().max(w.abs()) + ABS + floor[idx.1],
            "{what}: at {idx:?} got {g}, scikit-learn {w}"
        );
        worst = worst.max(err / w.abs().max(1e-30));
    }
    eprintln!("{what}: worst relative error {worst:.2e}");
}

#[test]
fn percentile_clipper_matches_numpy() {
    let c = cases();
    let (train, test) = (matrix(&c["train"]), matrix(&c["test"]));
    let clip = PercentileClipperParams::new(1.0, 99.0)
        .fit(train.view())
        .unwrap();
    assert_eq!(clip.lower(), vector(&c["clip_1_99"]["lower"]).as_slice());
    assert_eq!(clip.upper(), vector(&c["clip_1_99"]["upper"]).as_slice());
    let out = clip.transform(test.view()).unwrap();
    assert_close("clip 1/99", &out, &matrix(&c["clip_1_99"]["test"]));
}

#[test]
fn robust_scaler_default_matches_sklearn() {
    let c = cases();
    let (train, test) = (matrix(&c["train"]), matrix(&c["test"]));
    let rs = RobustScalerParams::default().fit(train.view()).unwrap();
    let want_center: Vec<f32> = vector(&c["robust_default"]["center"])
        .iter()
        .map(|&v| v as f32)
        .collect();
    assert_eq!(rs.center(), want_center.as_slice());
    assert_eq!(rs.scale(), vector(&c["robust_default"]["scale"]).as_slice());
    let out = rs.transform(test.view()).unwrap();
    assert_close(
        "RobustScaler()",
        &out,
        &matrix(&c["robust_default"]["test"]),
    );
}

#[test]
fn robust_scaler_custom_range_odd_rows_matches_sklearn() {
    let c = cases();
    let (train, test) = (matrix(&c["train"]), matrix(&c["test"]));
    let fit_rows = train.slice(ndarray::s![..239, ..]);
    let rs = RobustScalerParams::default()
        .quantile_range(10.0, 90.0)
        .fit(fit_rows)
        .unwrap();
    let want_center: Vec<f32> = vector(&c["robust_10_90_odd"]["center"])
        .iter()
        .map(|&v| v as f32)
        .collect();
    assert_eq!(rs.center(), want_center.as_slice());
    assert_eq!(
        rs.scale(),
        vector(&c["robust_10_90_odd"]["scale"]).as_slice()
    );
    let out = rs.transform(test.view()).unwrap();
    assert_close(
        "RobustScaler((10, 90))",
        &out,
        &matrix(&c["robust_10_90_odd"]["test"]),
    );
}

#[test]
fn constant_filter_matches_variance_threshold() {
    let c = cases();
    let train = matrix(&c["train"]);
    let f = ConstantFeatureFilterParams.fit(train.view()).unwrap();
    let want: Vec<usize> = vector(&c["constant_filter"]["kept"])
        .iter()
        .map(|&v| v as usize)
        .collect();
    assert_eq!(f.kept(), want.as_slice());
    assert!(
        f.n_features_out() < f.n_features_in(),
        "the real sample has constant columns"
    );
}

#[test]
fn thesis_pipeline_matches_sklearn() {
    let c = cases();
    let (train, test) = (matrix(&c["train"]), matrix(&c["test"]));
    let pipe = Preset::Thesis.params().fit(train.view()).unwrap();
    let rs = pipe.robust_scaler().unwrap();
    assert_eq!(
        rs.n_zero_iqr() as u64,
        c["thesis_pipeline"]["n_zero_iqr"].as_u64().unwrap()
    );
    assert_eq!(
        rs.scale(),
        vector(&c["thesis_pipeline"]["scale"]).as_slice()
    );
    let out = pipe.transform(test.view()).unwrap();
    assert_close(
        "thesis pipeline",
        &out,
        &matrix(&c["thesis_pipeline"]["test"]),
    );
    // and after a JSON round trip
    let back = Pipeline::from_json(&pipe.to_json().unwrap()).unwrap();
    assert_eq!(back.transform(test.view()).unwrap(), out);
}

#[test]
fn signed_log1p_matches_numpy() {
    let c = cases();
    let test = matrix(&c["test"]);
    let out = SignedLog1p.transform(test.view()).unwrap();
    assert_close("signed log1p", &out, &matrix(&c["signed_log1p"]["test"]));
}

#[test]
fn log_robust_pipeline_matches_numpy_reference() {
    let c = cases();
    let (train, test) = (matrix(&c["train"]), matrix(&c["test"]));
    let pipe = Preset::LogRobust.params().fit(train.view()).unwrap();
    assert!(matches!(pipe.steps()[0], FittedStep::SignedLog1p));
    let rs = pipe.robust_scaler().unwrap();
    // log1p results may differ by an ulp between libm and numpy, so compare parameters with
    // the same tolerance as values.
    let want_center = vector(&c["log_robust_pipeline"]["center"]);
    let want_scale = vector(&c["log_robust_pipeline"]["scale"]);
    for j in 0..want_center.len() {
        let (g, w) = (f64::from(rs.center()[j]), want_center[j]);
        assert!(
            (g - w).abs() <= REL * w.abs() + ABS,
            "center {j}: {g} vs {w}"
        );
        let (g, w) = (rs.scale()[j], want_scale[j]);
        assert!(
            (g - w).abs() <= REL * w.abs() + ABS,
            "scale {j}: {g} vs {w}"
        );
    }
    let out = pipe.transform(test.view()).unwrap();
    // libm's and numpy's log1p may differ by an ulp; where the value is close to the centre
    // `c` that input error (~1e-6 |c| at most) is divided by the scale `s`, not by the result,
    // so each column also gets an absolute floor of 1e-6 |c| / s.
    let floor: Vec<f64> = want_center
        .iter()
        .zip(&want_scale)
        .map(|(c, s)| REL * c.abs() / s)
        .collect();
    assert_close_floor(
        "log-robust pipeline",
        &out,
        &matrix(&c["log_robust_pipeline"]["test"]),
        &floor,
    );
}

/// Normal scores against scipy (`rankdata(method="average")`, `special.ndtri`) and numpy
/// (`interp`): knot values bit-exact, knot scores to 1e-12 relative (AS 241 against scipy's
/// Cephes `ndtri`), transformed values to 1e-6 relative. With 1,000 knots every distinct
/// training value is a knot, so the training rows must equal the midrank definition itself;
/// with 16 knots the knot choice is checked.
#[test]
fn normal_scores_match_scipy() {
    let c = cases();
    let (train, test) = (matrix(&c["train"]), matrix(&c["test"]));
    for knots in [1000usize, 16] {
        let case = &c["normal_scores"][knots.to_string()];
        let ns = NormalScoresParams::default()
            .max_knots(knots)
            .fit(train.view())
            .unwrap();
        for (j, want) in case["knots"].as_array().unwrap().iter().enumerate() {
            let values: Vec<f32> = vector(&want["values"]).iter().map(|&v| v as f32).collect();
            assert_eq!(
                ns.knot_values(j).unwrap(),
                values.as_slice(),
                "{knots} knots, column {j}"
            );
            for (g, w) in ns
                .knot_scores(j)
                .unwrap()
                .iter()
                .zip(vector(&want["scores"]))
            {
                assert!(
                    (g - w).abs() <= 1e-12 * w.abs().max(1.0),
                    "column {j}: {g} vs {w}"
                );
            }
        }
        let what = format!("normal scores ({knots} knots), test rows");
        assert_close(
            &what,
            &ns.transform(test.view()).unwrap(),
            &matrix(&case["test"]),
        );
        if let Some(want) = case.get("train") {
            let what = format!("normal scores ({knots} knots), training rows");
            assert_close(&what, &ns.transform(train.view()).unwrap(), &matrix(want));
        }
    }
    // The default preset is exactly this step with 1,000 knots.
    let pipe = Preset::Default.params().fit(train.view()).unwrap();
    assert!(matches!(pipe.steps(), [FittedStep::NormalScores(s)] if s.max_knots() == 1000));
    assert_close(
        "default pipeline",
        &pipe.transform(test.view()).unwrap(),
        &matrix(&c["normal_scores"]["1000"]["test"]),
    );
}

#[test]
fn class_weights_match_sklearn() {
    let c = cases();
    let cw = &c["class_weights"];
    let y: Vec<usize> = vector(&cw["y_train"]).iter().map(|&v| v as usize).collect();
    let k = cw["n_classes"].as_u64().unwrap() as usize;
    for (kind, key) in [
        (ClassWeighting::Balanced, "balanced"),
        (ClassWeighting::BalancedSqrt, "balanced_sqrt"),
    ] {
        let got = class_weights(&y, k, kind).unwrap();
        let want = vector(&cw[key]);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (f64::from(*g) - w).abs() <= REL * w.abs(),
                "{key}: {g} vs {w}"
            );
        }
    }
}
