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
    // `RF_TIME_MODEL=path`: load that model if present, else fit and save it there (profiling
    // predict_proba without re-fitting).
    let cached = std::env::var("RF_TIME_MODEL").ok();
    let rf = match cached.as_deref().map(RandomForest::load) {
        Some(Ok(rf)) => rf,
        _ => {
            let rf = RandomForest::params()
                .n_trees(trees)
                .seed(42)
                .fit(&ds)
                .unwrap();
            if let Some(path) = &cached {
                rf.save(path).unwrap();
            }
            rf
        }
    };
    let fit_s = t0.elapsed().as_secs_f64();
    {
        // Mean path length (training-weight-weighted leaf depth) and one-class leaf share.
        let (mut steps, mut w, mut pure, mut leaves) = (0f64, 0f64, 0usize, 0usize);
        for t in rf.trees() {
            let mut depth = vec![0usize; t.n_nodes()];
            for n in 0..t.n_nodes() {
                match t.children(n) {
                    Some((l, r)) => {
                        depth[l] = depth[n] + 1;
                        depth[r] = depth[n] + 1;
                    }
                    None => {
                        steps += t.cover[n] * depth[n] as f64;
                        w += t.cover[n];
                        leaves += 1;
                        if t.leaf_distribution(n).unwrap().contains(&1.0) {
                            pure += 1;
                        }
                    }
                }
            }
        }
        println!(
            "mean path length {:.1}, one-class leaves {pure}/{leaves}",
            steps / w
        );
    }
    let nodes: usize = rf.trees().iter().map(|t| t.n_nodes()).sum();
    let depth = rf.trees().iter().map(|t| t.depth()).max().unwrap();
    // Best of 3: the machine is shared.
    let mut pred_s = f64::INFINITY;
    let mut cpu_s = f64::INFINITY;
    let mut p = rf.predict_proba(x.slice(ndarray::s![..1, ..]));
    for _ in 0..3 {
        let (t0, c0) = (Instant::now(), cpu_seconds());
        p = rf.predict_proba(x.view());
        pred_s = pred_s.min(t0.elapsed().as_secs_f64());
        cpu_s = cpu_s.min(cpu_seconds() - c0);
    }
    println!("predict_proba CPU time (all threads, best of 3): {cpu_s:.3} s");
    // The same rows through the previous layout (12-byte nodes in fit order, 8 lanes in
    // lock-step), interleaved with the current one so both see the same machine load.
    // `RF_TIME_AB=1` enables it (it is slow with many trees).
    let old = OldLayout::new(&rf);
    let (mut old_s, mut new_s) = (f64::INFINITY, f64::INFINITY);
    let ab_rounds = if std::env::var("RF_TIME_AB").is_ok() {
        3
    } else {
        0
    };
    for _ in 0..ab_rounds {
        let t0 = Instant::now();
        let q = old.predict_proba(x.view());
        old_s = old_s.min(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        let r = rf.predict_proba(x.view());
        new_s = new_s.min(t0.elapsed().as_secs_f64());
        assert!(q
            .iter()
            .zip(r.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
    if ab_rounds > 0 {
        println!(
            "A/B best of 3: previous layout {old_s:.3} s, current {new_s:.3} s, speed-up {:.2}x (bit-identical)",
            old_s / new_s
        );
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

/// User + system CPU seconds of this process (Linux `/proc/self/stat`, 100 ticks/s); 0 elsewhere.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|t| t.parse().unwrap_or(0.0))
        .collect();
    f.get(11)
        .zip(f.get(12))
        .map_or(0.0, |(u, s)| (u + s) / 100.0)
}

/// The previous inference layout, rebuilt from the public trees (for A/B timing only).
struct OldLayout {
    packed: Vec<(f32, u32, u32)>,
    roots: Vec<u32>,
    leaf_values: Vec<f32>,
    nf: usize,
    nc: usize,
}

impl OldLayout {
    fn new(rf: &RandomForest) -> Self {
        let (mut packed, mut roots, mut leaf_values) = (Vec::new(), Vec::new(), Vec::new());
        let nc = rf.n_classes();
        for t in rf.trees() {
            let node_base = packed.len() as u32;
            let leaf_base = (leaf_values.len() / nc) as u32;
            roots.push(node_base);
            for n in 0..t.n_nodes() {
                let (f, next) = (t.feature[n], t.child_or_leaf[n]);
                packed.push(if f == rf_baseline::LEAF_FEATURE {
                    (0.0, f, leaf_base + next)
                } else {
                    (t.threshold[n], f, node_base + next)
                });
            }
            leaf_values.extend_from_slice(&t.leaf_values);
        }
        OldLayout {
            packed,
            roots,
            leaf_values,
            nf: rf.n_features(),
            nc,
        }
    }

    fn predict_proba(&self, x: ndarray::ArrayView2<'_, f32>) -> Array2<f32> {
        use rayon::prelude::*;
        const ROW_BLOCK: usize = 256;
        const LANES: usize = 8;
        let (nf, nc) = (self.nf, self.nc);
        let xs = x.as_slice().unwrap();
        let mut out = Array2::<f32>::zeros((x.nrows(), nc));
        let scale = 1.0 / self.roots.len() as f32;
        out.as_slice_mut()
            .unwrap()
            .par_chunks_mut(ROW_BLOCK * nc)
            .zip(xs.par_chunks(ROW_BLOCK * nf))
            .for_each(|(o, xb)| {
                let rows = xb.len() / nf;
                for &root in &self.roots {
                    let mut r0 = 0;
                    while r0 < rows {
                        let lanes = LANES.min(rows - r0);
                        let mut idx = [root; LANES];
                        loop {
                            let mut active = false;
                            for (k, id) in idx.iter_mut().enumerate().take(lanes) {
                                let (t, f, next) = self.packed[*id as usize];
                                if f != rf_baseline::LEAF_FEATURE {
                                    let v = xb[(r0 + k) * nf + f as usize];
                                    *id = next + u32::from(v > t || v.is_nan());
                                    active = true;
                                }
                            }
                            if !active {
                                break;
                            }
                        }
                        for (k, id) in idx.iter().enumerate().take(lanes) {
                            let leaf = self.packed[*id as usize].2 as usize;
                            let src = &self.leaf_values[leaf * nc..(leaf + 1) * nc];
                            let dst = &mut o[(r0 + k) * nc..(r0 + k + 1) * nc];
                            for (d, s) in dst.iter_mut().zip(src) {
                                *d += *s;
                            }
                        }
                        r0 += lanes;
                    }
                }
                o.iter_mut().for_each(|v| *v *= scale);
            });
        out
    }
}
