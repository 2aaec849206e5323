//! Pipeline behaviour that has no scikit-learn counterpart: persistence, errors, layouts,
//! blocked parallel transform, column bookkeeping.

use ndarray::{array, s, Array2, ShapeBuilder};
use preprocess::{
    class_weights, ClassWeighting, FittedStep, PercentileClipperParams, Pipeline, PipelineParams,
    PreprocessError, Preset, RobustScalerParams, SignedLog1p, StepParams, ZeroIqrScale,
};

/// Deterministic heavy-tailed test matrix (synthetic): rows x 5 columns, one constant column.
fn synthetic(rows: usize) -> Array2<f32> {
    let mut state = 0x9E3779B97F4A7C15u64;
    Array2::from_shape_fn((rows, 5), |(_, j)| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let u = ((state >> 11) as f64 / (1u64 << 53) as f64) as f32;
        match j {
            0 => u * 10.0,
            1 => (u * 20.0).exp(), // spans nine decades
            2 => 3.0,              // constant
            3 => {
                if u < 0.9 {
                    0.0
                } else {
                    u
                }
            } // IQR 0, not constant
            _ => -u * 1e9,
        }
    })
}

#[test]
fn json_round_trip_is_exact_through_a_file() {
    let x = synthetic(1000);
    for preset in [Preset::Thesis, Preset::LogRobust, Preset::Default] {
        let pipe = preset.params().fit(x.view()).unwrap();
        let path = std::env::temp_dir().join(format!(
            "preprocess-test-{preset:?}-{}.json",
            std::process::id()
        ));
        pipe.save(&path).unwrap();
        let back = Pipeline::load(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(back, pipe);
        assert_eq!(
            back.transform(x.view()).unwrap(),
            pipe.transform(x.view()).unwrap()
        );
    }
}

#[test]
fn loading_rejects_inconsistent_or_foreign_json() {
    let pipe = Preset::Thesis.params().fit(synthetic(100).view()).unwrap();
    let json = pipe.to_json().unwrap();
    let foreign = json.replace("flowxai-preprocess/1", "something-else/9");
    assert!(matches!(
        Pipeline::from_json(&foreign),
        Err(PreprocessError::InvalidPipeline(_))
    ));
    let wrong_width = json.replace("\"n_features_in\": 5", "\"n_features_in\": 6");
    assert!(matches!(
        Pipeline::from_json(&wrong_width),
        Err(PreprocessError::InvalidPipeline(_))
    ));
    assert!(matches!(
        Pipeline::from_json("{"),
        Err(PreprocessError::Json(_))
    ));
    let missing = std::env::temp_dir().join("preprocess-no-such-file.json");
    assert!(matches!(
        Pipeline::load(&missing),
        Err(PreprocessError::Io { .. })
    ));
}

#[test]
fn bad_input_is_a_typed_error() {
    let x = synthetic(50);
    let pipe = Preset::Default.params().fit(x.view()).unwrap();
    let narrow = x.slice(s![.., ..4]);
    assert!(matches!(
        pipe.transform(narrow),
        Err(PreprocessError::ShapeMismatch {
            expected: 5,
            got: 4
        })
    ));
    assert!(matches!(
        PercentileClipperParams::new(99.0, 1.0).fit(x.view()),
        Err(PreprocessError::InvalidParameter { .. })
    ));
    assert!(matches!(
        RobustScalerParams::default()
            .quantile_range(-1.0, 50.0)
            .check(),
        Err(PreprocessError::InvalidParameter { .. })
    ));
    let empty = Array2::<f32>::zeros((0, 5));
    assert!(matches!(
        Preset::Thesis.params().fit(empty.view()),
        Err(PreprocessError::EmptyInput { rows: 0, cols: 5 })
    ));
    let nan_col = array![[1.0f32, f32::NAN], [2.0, f32::NAN]];
    assert!(matches!(
        RobustScalerParams::default().fit(nan_col.view()),
        Err(PreprocessError::AllNanColumn { column: 1 })
    ));
    let inf_col = array![[1.0f32, f32::INFINITY], [2.0, f32::INFINITY], [3.0, 1.0]];
    assert!(matches!(
        RobustScalerParams::default().fit(inf_col.view()),
        Err(PreprocessError::NonFiniteStatistic {
            column: 1,
            what: "median"
        })
    ));
    assert!(matches!(
        PercentileClipperParams::new(1.0, 99.0).fit(inf_col.view()),
        Err(PreprocessError::NonFiniteStatistic { column: 1, .. })
    ));
    assert!(matches!(
        class_weights(&[0, 3], 2, ClassWeighting::Balanced),
        Err(PreprocessError::LabelOutOfRange {
            label: 3,
            position: 1,
            n_classes: 2
        })
    ));
    assert!("median".parse::<Preset>().is_err());
    assert_eq!("thesis".parse::<Preset>().unwrap(), Preset::Thesis);
    assert_eq!("log-robust".parse::<Preset>().unwrap(), Preset::LogRobust);
    assert_eq!(
        "piecewise-linear".parse::<Preset>().unwrap(),
        Preset::PiecewiseLinear
    );
}

#[test]
fn blocked_parallel_transform_equals_row_by_row_and_any_layout() {
    // 10_000 rows span several row blocks.
    let x = synthetic(10_000);
    for preset in [
        Preset::Thesis,
        Preset::LogRobust,
        Preset::Default,
        Preset::PiecewiseLinear,
    ] {
        let pipe = preset.params().fit(x.view()).unwrap();
        let whole = pipe.transform(x.view()).unwrap();
        for i in [0, 2047, 2048, 9999] {
            let one = pipe.transform(x.slice(s![i..i + 1, ..])).unwrap();
            assert_eq!(one.row(0), whole.row(i), "{preset:?}");
        }
        // Fortran-order input: rows are not contiguous, the scratch-row path runs.
        let mut f = Array2::<f32>::zeros((x.nrows(), x.ncols()).f());
        f.assign(&x);
        let mut g = f.clone();
        for step in pipe.steps() {
            match step {
                FittedStep::SignedLog1p => SignedLog1p.transform_inplace(g.view_mut()),
                FittedStep::PercentileClipper(c) => c.transform_inplace(g.view_mut()).unwrap(),
                FittedStep::RobustScaler(r) => r.transform_inplace(g.view_mut()).unwrap(),
                FittedStep::NormalScores(n) => n.transform_inplace(g.view_mut()).unwrap(),
                FittedStep::PiecewiseLinear(p) => g = p.transform(g.view()).unwrap(),
                FittedStep::ConstantFeatureFilter(_) => unreachable!(),
            }
        }
        assert_eq!(g, whole, "{preset:?}");
    }
}

#[test]
fn zero_iqr_fallback_bounds_training_values() {
    let x = synthetic(2000);
    let one = RobustScalerParams::default().fit(x.view()).unwrap();
    let range = RobustScalerParams::default()
        .zero_iqr(ZeroIqrScale::Range)
        .fit(x.view())
        .unwrap();
    assert_eq!(one.zero_iqr(), &[false, false, true, true, false]);
    assert_eq!(one.scale()[3], 1.0);
    // column 3: 90% zeros, else in (0.9, 1): scale = max - min
    assert!(range.scale()[3] > 0.9 && range.scale()[3] < 1.0);
    assert_eq!(
        range.scale()[2],
        1.0,
        "constant column: range 0 falls back to 1"
    );
    let out = range.transform(x.view()).unwrap();
    assert!(out.column(3).iter().all(|v| v.abs() <= 1.0));
}

#[test]
fn constant_filter_in_a_pipeline_tracks_columns() {
    let x = synthetic(500);
    let params = PipelineParams::new(vec![
        StepParams::ConstantFeatureFilter,
        StepParams::SignedLog1p,
        StepParams::RobustScaler(RobustScalerParams::default()),
    ]);
    let pipe = params.fit(x.view()).unwrap();
    assert_eq!(pipe.output_features(), vec![0, 1, 3, 4]);
    assert_eq!(pipe.n_features_out(), 4);
    let out = pipe.transform(x.view()).unwrap();
    assert_eq!(out.ncols(), 4);
    let back = Pipeline::from_json(&pipe.to_json().unwrap()).unwrap();
    assert_eq!(back.transform(x.view()).unwrap(), out);
}

#[test]
fn signed_log1p_is_odd_monotone_and_invertible() {
    let xs = [-2.1e11f32, -1.0, -0.0, 0.0, 1e-3, 1.0, 5e7];
    let ys: Vec<f32> = xs.iter().map(|&v| SignedLog1p::apply(v)).collect();
    assert!(ys.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(SignedLog1p::apply(0.0), 0.0);
    assert!(SignedLog1p::apply(f32::NAN).is_nan());
    for (&x, &y) in xs.iter().zip(&ys) {
        assert_eq!(SignedLog1p::apply(-x), -y);
        let back = SignedLog1p::inverse(y);
        assert!(
            (back - x).abs() <= 1e-5 * x.abs() + 1e-7,
            "{x} -> {y} -> {back}"
        );
    }
}

#[test]
fn clipper_keeps_nan_and_uniform_weights_are_one() {
    let train = array![[0.0f32], [10.0]];
    let clip = PercentileClipperParams::new(10.0, 90.0)
        .fit(train.view())
        .unwrap();
    let out = clip
        .transform(array![[f32::NAN], [-5.0], [50.0]].view())
        .unwrap();
    assert!(out[[0, 0]].is_nan());
    assert_eq!((out[[1, 0]], out[[2, 0]]), (1.0, 9.0));
    assert_eq!(
        class_weights(&[0, 0, 2], 3, ClassWeighting::Uniform).unwrap(),
        vec![1.0; 3]
    );
    // absent class 1 gets weight 0; k counts present classes only
    assert_eq!(
        class_weights(&[0, 0, 2], 3, ClassWeighting::Balanced).unwrap(),
        vec![0.75, 0.0, 1.5]
    );
}
