//! `PiecewiseLinear` equals the numpy reference bit for bit on 300 real CIC-DDoS2019 flows.
//!
//! Fixture: `fixtures/piecewise_cases.json`, written by `fixtures/gen_piecewise.py` (numpy
//! version and seed inside): 240 training and 62 test flows (two beyond every column's training
//! range), NaN in a few cells, 1, 3 and 16 bins. Tolerance: none. Edges are numpy's
//! `nanpercentile` arithmetic, which the crate reproduces exactly, and the encoding is the same
//! float64 expression rounded once to float32.

use ndarray::Array2;
use preprocess::{FittedStep, PiecewiseLinearParams, Pipeline, PipelineParams, StepParams};
use serde_json::Value;

mod common;
use common::matrix;

fn fixture() -> Value {
    common::fixture("piecewise_cases.json")
}

fn assert_bits(what: &str, got: &Array2<f32>, want: &Array2<f32>) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for ((idx, g), w) in got.indexed_iter().zip(want.iter()) {
        assert!(
            g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
            "{what} {idx:?}: got {g:e}, numpy {w:e}"
        );
    }
}

#[test]
fn piecewise_linear_equals_numpy() {
    let f = fixture();
    let train = matrix(&f["train"]);
    let test = matrix(&f["test"]);
    for case in f["cases"].as_array().unwrap() {
        let bins = case["bins"].as_u64().unwrap() as usize;
        let ple = PiecewiseLinearParams::new(bins).fit(train.view()).unwrap();
        let want_edges: Vec<Vec<f64>> = case["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect()
            })
            .collect();
        for (j, (got, want)) in ple.edges().iter().zip(&want_edges).enumerate() {
            let same = got.len() == want.len()
                && got
                    .iter()
                    .zip(want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same,
                "bins {bins}, column {j}: edges {got:?}, numpy {want:?}"
            );
        }
        let train_out = ple.transform(train.view()).unwrap();
        assert_bits(
            &format!("bins {bins}, train"),
            &train_out,
            &matrix(&case["train_out"]),
        );
        let test_out = ple.transform(test.view()).unwrap();
        assert_bits(
            &format!("bins {bins}, test"),
            &test_out,
            &matrix(&case["test_out"]),
        );

        // The same step inside a pipeline, saved and loaded, gives the same numbers.
        let pipe = PipelineParams::new(vec![StepParams::PiecewiseLinear(
            PiecewiseLinearParams::new(bins),
        )])
        .fit(train.view())
        .unwrap();
        let back = Pipeline::from_json(&pipe.to_json().unwrap()).unwrap();
        assert_bits(
            &format!("bins {bins}, pipeline"),
            &back.transform(test.view()).unwrap(),
            &test_out,
        );
        assert_eq!(back.n_features_out(), ple.n_features_out());
    }
}

#[test]
fn encoded_columns_name_their_feature_and_bin() {
    let f = fixture();
    let train = matrix(&f["train"]);
    let names: Vec<String> = f["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let pipe = PipelineParams::new(vec![StepParams::PiecewiseLinear(
        PiecewiseLinearParams::new(3),
    )])
    .fit(train.view())
    .unwrap();
    let out = pipe.output_feature_names(&names).unwrap();
    assert_eq!(out.len(), pipe.n_features_out());
    let sources = pipe.output_features();
    for (name, &j) in out.iter().zip(&sources) {
        assert!(
            name.starts_with(&names[j]),
            "{name} is not from {}",
            names[j]
        );
    }
    // A column with three bins is named `… [bin 1]` to `… [bin 3]`; a one-column feature keeps its name.
    let first3 = (0..names.len())
        .find(|&j| sources.iter().filter(|&&s| s == j).count() == 3)
        .unwrap();
    assert!(out.contains(&format!("{} [bin 3]", names[first3])));
    let single = (0..names.len())
        .find(|&j| sources.iter().filter(|&&s| s == j).count() == 1)
        .unwrap();
    assert!(out.contains(&names[single]));
    let (front, ple) = pipe.split_piecewise_linear().unwrap();
    assert_eq!(front.n_features_out(), names.len());
    assert_eq!(ple.n_features_out(), out.len());
    // Appending the encoding again gives back the pipeline; appending it twice cannot fit.
    let again = front
        .then(FittedStep::PiecewiseLinear(ple.clone()))
        .unwrap();
    assert_eq!(again, pipe);
    assert!(again
        .then(FittedStep::PiecewiseLinear(ple.clone()))
        .is_err());
}
