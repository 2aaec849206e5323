//! Quick timing of fit / predict_proba on the bench rows written by `benches/rf.rs`
//! (`target/rf_bench/{x,y}.npy`, synthetic (resampled)). The criterion bench is the reference;
//! this is for profiling: `cargo run --release -p rf-baseline --example time_forest -- 10 [rows]`.
use std::time::Instant;

use linfa::prelude::*;
use ndarray::{Array1, Array2};
use rf_baseline::RandomForest;

fn npy(path: &str) -> (Vec<usize>, Vec<u8>) {
    let b = std::fs::read(path).expect("run `cargo bench --bench rf` first");
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    let h = std::str::from_utf8(&b[10..10 + hl]).unwrap();
    let s = &h[h.find("'shape': (").unwrap() + 10..];
    let shape = s[..s.find(')').unwrap()]
        .split(',')
        .filter_map(|t| t.trim().parse().ok())
        .collect();
    (shape, b[10 + hl..].to_vec())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let trees: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let (xs, xb) = npy("target/rf_bench/x.npy");
    let (_, yb) = npy("target/rf_bench/y.npy");
    let rows: usize = args
        .get(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(xs[0])
        .min(xs[0]);
    let x: Vec<f32> = xb
        .chunks(4)
        .take(rows * xs[1])
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let y: Array1<usize> = yb
        .chunks(4)
        .take(rows)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let x = Array2::from_shape_vec((rows, xs[1]), x).unwrap();
    let ds = Dataset::new(x.clone(), y);
    let t0 = Instant::now();
    let rf = RandomForest::params()
        .n_trees(trees)
        .seed(42)
        .fit(&ds)
        .unwrap();
    let fit_s = t0.elapsed().as_secs_f64();
    let nodes: usize = rf.trees().iter().map(|t| t.n_nodes()).sum();
    let depth = rf.trees().iter().map(|t| t.depth()).max().unwrap();
    // Best of 3: the machine is shared.
    let mut pred_s = f64::INFINITY;
    let mut p = rf.predict_proba(x.slice(ndarray::s![..1, ..]));
    for _ in 0..3 {
        let t0 = Instant::now();
        p = rf.predict_proba(x.view());
        pred_s = pred_s.min(t0.elapsed().as_secs_f64());
    }
    // FNV-1a over every output bit: layout changes must leave it unchanged.
    let bits_hash = p.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, v| {
        (h ^ u64::from(v.to_bits())).wrapping_mul(0x0100_0000_01b3)
    });
    println!(
        "synthetic (resampled) {rows} rows, {trees} trees: fit {fit_s:.2} s ({:.0} flows/s), predict_proba {pred_s:.3} s ({:.0} flows/s); {nodes} nodes, max depth {depth}, p00 {}, output hash {bits_hash:016x}",
        rows as f64 / fit_s,
        rows as f64 / pred_s,
        p[[0, 0]]
    );
}
