//! Shared by the root end-to-end tests: the real balanced CIC-DDoS2019 sample, split and
//! preprocessed the same way everywhere, and scikit-learn's macro-F1 (from `report::metrics`).
#![allow(dead_code)]
use std::path::PathBuf;

use flowdata::{read_csv, stratified_split, LabelLevel, ReadOptions, SplitFractions};
use ndarray::{Array1, Array2, Axis};
use preprocess::Preset;

/// Preprocessed parts of the real sample.
pub struct RealSample {
    pub train: (Array2<f32>, Array1<usize>),
    pub val: (Array2<f32>, Array1<usize>),
    pub test: (Array2<f32>, Array1<usize>),
    pub classes: Vec<String>,
    pub feature_names: Vec<String>,
    pub pipeline_json: String,
}

/// `flowdata::read_csv` (non-finite rows dropped) → `task_rows` → stratified 70/20/10 split
/// (seed 42) → the default `preprocess` preset fitted on the training rows.
pub fn balanced_sample() -> RealSample {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let csv = root.join("../shared/datasets/cic-ddos2019/balanced-sample/combined_data.csv");
    let (frame, report) = read_csv(&[&csv], &ReadOptions::default()).unwrap();
    let frame = frame.task_rows();
    eprintln!("read: {}", report.summary());
    let t = frame.targets(LabelLevel::Fine);
    let split = stratified_split(&t.y, SplitFractions::default(), 42).unwrap();
    let part = |idx: &[usize]| {
        let x = frame.x.select(Axis(0), idx);
        let y: Array1<usize> = idx.iter().map(|&i| t.y[i] as usize).collect();
        (x, y)
    };
    let (xtr, ytr) = part(&split.train);
    let pipeline = Preset::Default.params().fit(xtr.view()).unwrap();
    let tf = |(x, y): (Array2<f32>, Array1<usize>)| (pipeline.transform(x.view()).unwrap(), y);
    RealSample {
        train: tf((xtr, ytr)),
        val: tf(part(&split.valid)),
        test: tf(part(&split.test)),
        classes: t.classes.clone(),
        feature_names: frame.feature_names.clone(),
        pipeline_json: pipeline.to_json().unwrap(),
    }
}

/// scikit-learn's `f1_score(average="macro")` over the `k` classes.
pub fn macro_f1(truth: &[usize], pred: &[usize], k: usize) -> f64 {
    let names: Vec<String> = (0..k).map(|c| c.to_string()).collect();
    report::metrics::ConfusionMatrix::from_indices(truth, pred, &names)
        .unwrap()
        .report()
        .macro_avg
        .f1
}
