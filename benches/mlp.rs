//! `mlp_infer_fp32` (flows/s, batches of 8192) and `mlp_train_epoch` (samples/s, batch 1024) for
//! the thesis `optimized` MLP (76→128→256→128→64→16, BatchNorm, dropout, AdamW, OneCycle).
//!
//! Data: synthetic (resampled) — 1,048,576 rows drawn with replacement from the real balanced
//! CIC-DDoS2019 sample with ±1 % jitter (`flowdata::resample_synthetic`, seed 42), then the
//! default `preprocess` pipeline fitted on the real rows. Speed only; never quote accuracy from it.
//!
//! The same rows and labels are written to `target/mlp_bench/` (`x.f32`, `y.u32`, `meta.json`)
//! for the peer.
//!
//! Run: `benches/run_pairs.sh mlp` (waits for an idle machine, then this bench with
//! `RAYON_NUM_THREADS` and `MATMUL_NUM_THREADS` set to `$FLOWXAI_BENCH_THREADS` and, right after,
//! `benches/peers/mlp_peers.py`: PyTorch and ONNX Runtime on the same rows and thread count;
//! raw results in `benches/results/`). By hand: `cargo bench --bench mlp` then
//! `.venv-peers/bin/python benches/peers/mlp_peers.py` (venv: see that script's docstring).
//!
//! Measured numbers and ratios live in docs/BENCHMARKS.md (regenerate the criterion table with
//! `cargo xtask bench`). In short, on 2 shared AMD EPYC cores: training 156–159 K samples/s on one
//! thread vs PyTorch 51–52 K (≈ 3×); inference on one thread roughly at par with ONNX Runtime,
//! 2–3× ahead on two threads, where the peers collapse under contention. On the idle machine
//! (2026-11-26, four back-to-back pairs): 2.39–2.64M flows/s against ONNX Runtime's 1.48–1.91M
//! (1.36–1.61×).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mlp_core::{Architecture, Init, MlpParams, Network, ServingMlp};
use ndarray::{Array2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

mod common;

const ROWS: usize = 1 << 20;
const INFER_BATCH: usize = 8192;
const TRAIN_ROWS: usize = 1 << 17;

fn benches(c: &mut Criterion) {
    let (x, y, k) = common::resampled_preprocessed(ROWS);
    eprintln!(
        "data: synthetic (resampled) {} x {}, {k} classes, available cores {}",
        x.nrows(),
        x.ncols(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    // The peer (benches/peers/mlp_peers.py) reads these: the same rows on both sides.
    let export = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/mlp_bench");
    common::export_rows(&export, &x, &y, k);
    let p = MlpParams::optimized().check().expect("preset");
    let arch = Architecture {
        n_features: x.ncols(),
        hidden: p.hidden().to_vec(),
        n_classes: k,
    };
    let net =
        Network::new(arch, Init::PyTorch, &mut ChaCha8Rng::seed_from_u64(42)).expect("network");
    let serving = ServingMlp::new(net.fold()).expect("fold");

    let mut g = c.benchmark_group("mlp");
    g.sample_size(10);
    g.throughput(Throughput::Elements(ROWS as u64));
    let mut out = Array2::<f32>::zeros((INFER_BATCH, k));
    g.bench_function("mlp_infer_fp32", |b| {
        b.iter(|| {
            for xb in x.axis_chunks_iter(Axis(0), INFER_BATCH) {
                let rows = xb.nrows();
                serving.predict_proba_into(xb, out.slice_mut(ndarray::s![..rows, ..]));
            }
            out[[0, 0]]
        })
    });
    // One training epoch over the first TRAIN_ROWS rows of the resampled set: init + 128
    // optimizer steps at batch 1024 (dropout, BatchNorm, weighted CE, AdamW, OneCycle), no
    // validation, no early stopping. A full 1M-row epoch per criterion sample would take minutes
    // on the shared 2 cores; throughput per sample is the same.
    let one_epoch = MlpParams::optimized()
        .max_epochs(1)
        .early_stopping(None)
        .check()
        .expect("preset");
    let (xt, yt) = (
        x.slice(ndarray::s![..TRAIN_ROWS, ..]),
        y.slice(ndarray::s![..TRAIN_ROWS]),
    );
    g.throughput(Throughput::Elements(TRAIN_ROWS as u64));
    g.bench_function("mlp_train_epoch", |b| {
        b.iter(|| one_epoch.fit(xt, yt, None, Some(k)).expect("fit").history()[0].train_loss)
    });
    g.finish();
}

criterion_group!(mlp, benches);
criterion_main!(mlp);
