//! Manual speed probe for `predict_proba` (ignored; timings are never asserted):
//! `cargo test --release -p rf-baseline --test predict_probe -- --ignored --nocapture`.
//!
//! Needs `target/rf_bench/{x,y}.npy`, written by `cargo bench --bench rf` (1,048,576 synthetic
//! (resampled) rows and labels). Fits 100 trees on the first `PROBE_FIT_ROWS` rows (default: all,
//! as `rf_predict` does; minutes), then times `predict_proba` on `PROBE_ROWS` rows per row-block
//! size, in one process so the variants see the same forest and machine state.
use std::path::Path;

use ndarray::{Array1, Array2};
use rf_baseline::linfa::prelude::*;
use rf_baseline::RandomForest;

/// Reads a C-order `.npy` of 4-byte little-endian values (`<f4` or `<i4`).
fn read_npy4(path: &Path) -> (Vec<usize>, Vec<[u8; 4]>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    let shape: Vec<usize> = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let data = bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|c| [c[0], c[1], c[2], c[3]])
        .collect();
    (shape, data)
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore = "manual timing probe: cargo test --release -p rf-baseline --test predict_probe -- --ignored --nocapture"]
fn predict_probe() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/rf_bench");
    let (shape, xv) = read_npy4(&dir.join("x.npy"));
    let x = Array2::from_shape_vec(
        (shape[0], shape[1]),
        xv.into_iter().map(f32::from_le_bytes).collect(),
    )
    .unwrap();
    let (_, yv) = read_npy4(&dir.join("y.npy"));
    let y: Array1<usize> = yv
        .into_iter()
        .map(|b| i32::from_le_bytes(b) as usize)
        .collect();
    let fit_rows = env("PROBE_FIT_ROWS", x.nrows()).min(x.nrows());
    let t = std::time::Instant::now();
    let forest = RandomForest::params()
        .n_trees(100)
        .seed(42)
        .fit(&Dataset::new(
            x.slice(ndarray::s![..fit_rows, ..]).to_owned(),
            y.slice(ndarray::s![..fit_rows]).to_owned(),
        ))
        .unwrap();
    let nodes: usize = forest.trees().iter().map(|t| t.n_nodes()).sum();
    eprintln!(
        "fit {fit_rows} rows: {:.1} s, {nodes} nodes",
        t.elapsed().as_secs_f64()
    );
    let rows = env("PROBE_ROWS", 1 << 18).min(x.nrows());
    let xs = x.slice(ndarray::s![..rows, ..]);
    let reference = forest.predict_proba(xs);
    for round in 0..2 {
        for block in [8192usize, 16384, 24576, 32768] {
            let t = std::time::Instant::now();
            let p = forest.predict_proba_row_block(xs, block);
            let s = t.elapsed().as_secs_f64();
            assert!(p == reference, "block {block}: different probabilities");
            eprintln!(
                "round {round} block {block}: {rows} rows in {s:.3} s = {:.0} flows/s",
                rows as f64 / s
            );
        }
    }
}
