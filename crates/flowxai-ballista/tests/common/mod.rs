//! Real-data fixtures shared by the engine tests: the balanced CIC-DDoS2019 sample written as
//! three flowdata Parquet files, and two bundles trained on it (a forest and an MLP).
#![allow(dead_code)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float32Type, UInt64Type};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use ndarray::Array1;

use flowxai::bundle::{BundleModel, ModelBundle};
use flowxai::flowdata::{read_csv, write_parquet, FlowFrame, LabelLevel, ReadOptions};
use flowxai::mlp_core::MlpParams;
use flowxai::preprocess::Preset;
use flowxai::rf_baseline::linfa::{traits::Fit, Dataset};
use flowxai::rf_baseline::RandomForest;
use flowxai_datafusion::ScoringModel;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub inputs: Vec<PathBuf>,
    pub forest_dir: PathBuf,
    pub mlp_dir: PathBuf,
    pub frame: FlowFrame,
}

pub fn real_frame() -> FlowFrame {
    let csv = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/datasets/cic-ddos2019/balanced-sample/combined_data.csv");
    let (frame, _) = read_csv(&[&csv], &ReadOptions::default()).unwrap();
    frame.task_rows()
}

/// Bundles trained on every task row (the tests check engines agree, not accuracy), inputs
/// split into three Parquet files so engines see several partitions.
pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let frame = real_frame();
    let n = frame.n_rows();
    let mut inputs = Vec::new();
    for part in 0..3 {
        let idx: Vec<usize> = (0..n).filter(|i| i % 3 == part).collect();
        let path = dir.path().join(format!("flows-{part}.parquet"));
        write_parquet(&frame.select(&idx), &path).unwrap();
        inputs.push(path);
    }
    let t = frame.targets(LabelLevel::Fine);
    let pipeline = Preset::Default.params().fit(frame.x.view()).unwrap();
    let x = pipeline.transform(frame.x.view()).unwrap();
    let y: Array1<usize> = t.y.iter().map(|&c| c as usize).collect();
    let forest = RandomForest::params()
        .n_trees(20)
        .seed(7)
        .fit(&Dataset::new(x.clone(), y.clone()))
        .unwrap();
    let mlp = MlpParams::optimized()
        .max_epochs(3)
        .seed(7)
        .check()
        .unwrap()
        .fit(x.view(), y.view(), None, Some(t.classes.len()))
        .unwrap();
    let save = |name: &str, model: BundleModel| {
        let path = dir.path().join(name);
        ModelBundle {
            preprocessing: pipeline.clone(),
            model,
            feature_names: frame.feature_names.clone(),
            classes: t.classes.clone(),
            label_level: "fine".into(),
        }
        .save(&path)
        .unwrap();
        path
    };
    let forest_dir = save("forest", BundleModel::Forest(forest));
    let mlp_dir = save("mlp", BundleModel::Mlp(mlp));
    Fixture {
        dir,
        inputs,
        forest_dir,
        mlp_dir,
        frame,
    }
}

pub fn load(dir: &Path) -> Arc<ScoringModel> {
    Arc::new(ScoringModel::load(dir).unwrap())
}

/// One scored flow, keyed by (source_file, source_line).
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub label: String,
    pub predicted: String,
    pub proba: Vec<f32>,
    pub explanation: Option<String>,
}

fn strings(batch: &RecordBatch, name: &str) -> Option<Vec<String>> {
    let col = batch.column_by_name(name)?;
    let col = cast(col, &DataType::Utf8).unwrap();
    let col = col.as_string::<i32>();
    Some((0..col.len()).map(|i| col.value(i).to_string()).collect())
}

/// Reads a score output (a Parquet file, or a directory of them) into a map keyed by
/// (source_file, source_line).
pub fn read_scores(path: &Path) -> BTreeMap<(String, u64), Scored> {
    if path.is_dir() {
        let mut out = BTreeMap::new();
        let mut files = 0;
        for entry in std::fs::read_dir(path).unwrap() {
            let file = entry.unwrap().path();
            for (key, row) in read_scores(&file) {
                assert!(
                    out.insert(key, row).is_none(),
                    "duplicate flow in {}",
                    path.display()
                );
            }
            files += 1;
        }
        assert!(files > 0, "no output file in {}", path.display());
        return out;
    }
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut out = BTreeMap::new();
    for batch in reader {
        let batch = batch.unwrap();
        let files = strings(&batch, "source_file").unwrap();
        let lines = batch.column_by_name("source_line").unwrap();
        let lines = lines.as_primitive::<UInt64Type>();
        let labels = strings(&batch, "label").unwrap();
        let predicted = strings(&batch, "predicted").unwrap();
        let explanation = strings(&batch, "explanation");
        for i in 0..batch.num_rows() {
            let proba = probabilities(&batch, i);
            let key = (files[i].clone(), lines.value(i));
            let row = Scored {
                label: labels[i].clone(),
                predicted: predicted[i].clone(),
                proba,
                explanation: explanation.as_ref().map(|e| e[i].clone()),
            };
            assert!(
                out.insert(key, row).is_none(),
                "duplicate flow in {}",
                path.display()
            );
        }
    }
    out
}

/// Asserts two score outputs hold the same flows with the same answers (probabilities within
/// 1e-6: engines batch rows differently, and the MLP's GEMM may round a row differently
/// depending on its position in a batch).
pub fn assert_same_scores(a: &Path, b: &Path) -> usize {
    let a = read_scores(a);
    let b = read_scores(b);
    assert_eq!(a.len(), b.len(), "different row counts");
    for ((key, ra), (kb, rb)) in a.iter().zip(&b) {
        assert_eq!(key, kb);
        assert_eq!(ra.label, rb.label, "label of {key:?}");
        assert_eq!(ra.proba.len(), rb.proba.len());
        for (pa, pb) in ra.proba.iter().zip(&rb.proba) {
            assert!((pa - pb).abs() <= 1e-6, "{key:?}: p {pa} vs {pb}");
        }
        assert_eq!(ra.predicted, rb.predicted, "prediction of {key:?}");
        assert_eq!(ra.explanation, rb.explanation, "explanation of {key:?}");
    }
    a.len()
}

/// A free TCP port on 127.0.0.1 (the listener is dropped; a race with another process is
/// possible but unlikely on a test machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `p_<class>` values of row `i` of a score output batch, in column order.
pub fn probabilities(batch: &RecordBatch, i: usize) -> Vec<f32> {
    batch
        .schema()
        .fields()
        .iter()
        .filter(|f| f.name().starts_with("p_"))
        .map(|f| {
            batch
                .column_by_name(f.name())
                .unwrap()
                .as_primitive::<Float32Type>()
                .value(i)
        })
        .collect()
}

/// Every row of a score output file as (predicted, probabilities' bits), sorted: for files
/// without the source columns that key rows.
pub fn sorted_scores(path: &Path) -> Vec<(String, Vec<u32>)> {
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let predicted = strings(&batch, "predicted").unwrap();
        for (i, p) in predicted.into_iter().enumerate() {
            let bits = probabilities(&batch, i)
                .iter()
                .map(|v| v.to_bits())
                .collect();
            out.push((p, bits));
        }
    }
    out.sort();
    out
}
