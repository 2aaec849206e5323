//! `preprocess` fit and transform throughput (flows/s) for the `thesis`, `log-robust` and
//! `default` (normal scores) presets.
//!
//! Data: synthetic (resampled) — 1,048,576 rows drawn with replacement from the real balanced
//! CIC-DDoS2019 sample with ±1 % jitter (`flowdata::resample_synthetic`, seed 42), 76 raw
//! features, non-finite cells set to -1 (thesis). Speed only. The same rows are written to
//! `target/preprocess_bench/x.npy` for the peer.
//!
//! Run: `benches/run_pairs.sh preprocess` (idle machine, same threads on both sides, raw results
//! in `benches/results/`), or by hand `cargo bench --bench preprocess` then
//! `.venv-peers/bin/python benches/peers/preprocess_peers.py` (venv: see the script's
//! docstring): numpy + scikit-learn `RobustScaler`, numpy/scipy normal scores and scikit-learn's
//! `QuantileTransformer` on the same rows; prints flows/s and the ratios to criterion's means.
use std::io::Write;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ndarray::Array2;
use preprocess::Preset;

const ROWS: usize = 1 << 20;

/// Synthetic (resampled) rows.
fn data() -> Array2<f32> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let csv = root.join("../shared/datasets/cic-ddos2019/balanced-sample/combined_data.csv");
    let opts = flowdata::ReadOptions {
        invalid: flowdata::InvalidPolicy::Keep,
        ..flowdata::ReadOptions::default()
    };
    let (frame, _) =
        flowdata::read_csv(&[&csv], &opts).unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
    let big = flowdata::resample_synthetic(&frame.task_rows(), ROWS, 42).expect("resample");
    let mut x = big.x;
    x.mapv_inplace(|v| if v.is_finite() { v } else { -1.0 });
    x
}

/// Minimal `.npy` (v1.0) writer for a C-order float32 matrix.
fn write_npy(path: &Path, x: &Array2<f32>) {
    let header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
        x.nrows(),
        x.ncols()
    );
    let pad = 64 - (10 + header.len() + 1) % 64;
    let mut h = header.into_bytes();
    h.extend(std::iter::repeat_n(b' ', pad));
    h.push(b'\n');
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create npy"));
    f.write_all(b"\x93NUMPY\x01\x00").unwrap();
    f.write_all(&(h.len() as u16).to_le_bytes()).unwrap();
    f.write_all(&h).unwrap();
    let std_x = x.as_standard_layout();
    for v in std_x.iter() {
        f.write_all(&v.to_le_bytes()).unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let x = data();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/preprocess_bench");
    std::fs::create_dir_all(&dir).unwrap();
    write_npy(&dir.join("x.npy"), &x);

    let mut g = c.benchmark_group("preprocess");
    g.sample_size(10);
    g.throughput(Throughput::Elements(x.nrows() as u64));
    for (name, preset) in [
        ("thesis", Preset::Thesis),
        ("log_robust", Preset::LogRobust),
        ("default", Preset::Default),
    ] {
        let params = preset.params();
        g.bench_function(format!("fit_{name}"), |b| {
            b.iter(|| params.fit(x.view()).unwrap())
        });
        let pipe = params.fit(x.view()).unwrap();
        let mut work = x.clone();
        g.bench_function(format!("transform_{name}"), |b| {
            b.iter(|| {
                // in place on a fresh copy each time: the copy is part of the measured time
                work.assign(&x);
                pipe.transform_inplace(&mut work).unwrap();
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    // no plots: the plotters backend finds no font on the CI machines
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
