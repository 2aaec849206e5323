//! Data shared by the MLP benches (`mlp.rs`, `gpu.rs`).
use std::path::Path;

use ndarray::{Array1, Array2};

/// `rows` synthetic (resampled) rows — drawn with replacement from the real balanced
/// CIC-DDoS2019 sample with ±1 % jitter (`flowdata::resample_synthetic`, seed 42) — through the
/// default `preprocess` pipeline fitted on the real rows, with their fine-class labels and the
/// class count. Speed only; never quote accuracy from them.
pub fn resampled_preprocessed(rows: usize) -> (Array2<f32>, Array1<usize>, usize) {
    let csv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/datasets/cic-ddos2019/balanced-sample/combined_data.csv");
    let (frame, _) = flowdata::read_csv(&[&csv], &flowdata::ReadOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
    let frame = frame.task_rows();
    let pipeline = preprocess::Preset::Default
        .params()
        .fit(frame.x.view())
        .expect("fit preprocessing");
    let k = frame.targets(flowdata::LabelLevel::Fine).classes.len();
    let big = flowdata::resample_synthetic(&frame, rows, 42).expect("resample");
    let x = pipeline.transform(big.x.view()).expect("transform");
    let y = big
        .targets(flowdata::LabelLevel::Fine)
        .y
        .iter()
        .map(|&c| c as usize)
        .collect();
    (x, y, k)
}
