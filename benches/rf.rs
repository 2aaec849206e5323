//! `rf_train` (flows/s of training rows) and `rf_predict` (flows/s, `predict_proba`) for the
//! histogram Random Forest of `rf-baseline`.
//!
//! Data: synthetic (resampled) — 1,048,576 rows drawn with replacement from the real balanced
//! CIC-DDoS2019 sample with ±1 % jitter (`flowdata::resample_synthetic`, seed 42), raw features
//! (76), 16 classes. Speed only; never quote accuracy from it. The same rows are written to
//! `target/rf_bench/{x,y}.npy` for the peer.
//!
//! Model: 100 trees (`RF_BENCH_TREES` overrides), otherwise scikit-learn's defaults (gini,
//! √features per node, bootstrap, `max_depth` None), seed 42.
//!
//! * `rf_predict`: `predict_proba` on all 1,048,576 rows with the forest fitted (once, outside
//!   the measurement) on those same rows; 10 samples of one call each.
//! * `rf_train`: fitting 100 trees on the first 131,072 of those rows (`RF_BENCH_TRAIN_ROWS`
//!   overrides; fitting 100 fully grown trees on all 1M rows takes minutes per fit, too long for
//!   criterion's minimum of 10 samples plus warm-up); 10 samples of one fit each. Throughput is
//!   training rows per second.
//!
//! Run: `benches/run_pairs.sh rf` (idle machine, same threads on both sides, raw results in
//! `benches/results/`), or by hand `cargo bench --bench rf` then
//! `.venv-peers/bin/python benches/peers/rf_peers.py` (venv: see the script's docstring):
//! scikit-learn RandomForestClassifier, n_jobs = `FLOWXAI_BENCH_THREADS`, the same rows, tree
//! count and training rows; it prints the ratios against criterion's means.
use std::io::Write;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use ndarray::{Array1, Array2};
use rf_baseline::linfa::prelude::*;
use rf_baseline::RandomForest;

const ROWS: usize = 1 << 20;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn n_trees() -> usize {
    env_usize("RF_BENCH_TREES", 100)
}

/// Rows of the `rf_train` fits (a prefix of the resampled rows, which are in random order).
fn train_rows() -> usize {
    env_usize("RF_BENCH_TRAIN_ROWS", 1 << 17).min(ROWS)
}

/// Synthetic (resampled) rows with their fine-class labels.
fn data() -> (Array2<f32>, Array1<usize>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let csv = root.join("../shared/datasets/cic-ddos2019/balanced-sample/combined_data.csv");
    let (frame, _) = flowdata::read_csv(&[&csv], &flowdata::ReadOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
    let frame = frame.task_rows();
    let big = flowdata::resample_synthetic(&frame, ROWS, 42).expect("resample");
    let y: Array1<usize> = big
        .targets(flowdata::LabelLevel::Fine)
        .y
        .iter()
        .map(|&c| c as usize)
        .collect();
    (big.x, y)
}

/// Minimal `.npy` (v1.0) writer for a C-order array.
fn write_npy(path: &Path, descr: &str, shape: &[usize], bytes: &[u8]) {
    let shape_s = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_s}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut f = std::fs::File::create(path).expect("create npy");
    f.write_all(b"\x93NUMPY\x01\x00").unwrap();
    f.write_all(&(header.len() as u16).to_le_bytes()).unwrap();
    f.write_all(header.as_bytes()).unwrap();
    f.write_all(bytes).unwrap();
}

fn export(x: &Array2<f32>, y: &Array1<usize>) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/rf_bench");
    std::fs::create_dir_all(&dir).expect("target/rf_bench");
    let xb: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(&dir.join("x.npy"), "<f4", &[x.nrows(), x.ncols()], &xb);
    let yb: Vec<u8> = y.iter().flat_map(|&v| (v as i32).to_le_bytes()).collect();
    write_npy(&dir.join("y.npy"), "<i4", &[y.len()], &yb);
    std::fs::write(
        dir.join("meta.json"),
        format!(
            "{{\"data\": \"synthetic (resampled)\", \"rows\": {}, \"features\": {}, \"trees\": {}, \"train_rows\": {}, \"seed\": 42}}\n",
            x.nrows(),
            x.ncols(),
            n_trees(),
            train_rows()
        ),
    )
    .unwrap();
    dir
}

fn benches(c: &mut Criterion) {
    let (x, y) = data();
    let dir = export(&x, &y);
    let trees = n_trees();
    eprintln!(
        "data: synthetic (resampled) {} x {}, {trees} trees, {} cores, npy in {}",
        x.nrows(),
        x.ncols(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        dir.display()
    );
    let params = RandomForest::params().n_trees(trees).seed(42);
    let n_train = train_rows();
    let train = Dataset::new(
        x.slice(ndarray::s![..n_train, ..]).to_owned(),
        y.slice(ndarray::s![..n_train]).to_owned(),
    );

    let mut g = c.benchmark_group("rf");
    g.sample_size(10);
    // Seconds per iteration: one iteration per sample.
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(n_train as u64));
    g.bench_function("rf_train", |b| {
        b.iter(|| params.fit(&train).expect("fit").trees().len())
    });
    drop(train);
    let t0 = std::time::Instant::now();
    let forest = params.fit(&Dataset::new(x.clone(), y)).expect("fit");
    let nodes: usize = forest.trees().iter().map(|t| t.n_nodes()).sum();
    let depth = forest.trees().iter().map(|t| t.depth()).max().unwrap_or(0);
    eprintln!(
        "forest on all rows: {trees} trees, {nodes} nodes, max depth {depth}, fitted in {:.1} s (once, not measured)",
        t0.elapsed().as_secs_f64()
    );
    g.throughput(Throughput::Elements(ROWS as u64));
    g.bench_function("rf_predict", |b| {
        b.iter(|| forest.predict_proba(x.view())[[0, 0]])
    });
    g.finish();
}

criterion_group! {
    name = rf;
    // No plots: the plotters backend needs system fonts this machine lacks.
    config = Criterion::default().without_plots();
    targets = benches
}
criterion_main!(rf);
