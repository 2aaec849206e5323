//! GPU benches of the thesis `optimized` MLP (76→128→256→128→64→16, BatchNorm, dropout, AdamW,
//! OneCycle) on the CUDA backend, beside the CPU backend on the same machine:
//!
//! - `gpu/train_epoch_cuda`: one training epoch of 1,354,553 rows (the thesis' training-set
//!   size) at batch 1024 with the training set resident on the device (the epoch time that
//!   `fit_on` records: shuffle on the host, 1,323 optimizer steps, parameters back once).
//! - `gpu/infer_resident_*`: logits of all 1,354,553 rows resident on the device, per
//!   precision ([`ServingPrecision`]) and, for the fused TF32 kernels, per warp tile
//!   ([`FusedTile`]); nothing crosses the bus.
//! - `gpu/infer_host_{fp32,tf32,3xtf32}`: host rows in, host logits out (pinned,
//!   double-buffered chunks: host copy, bus and kernels overlap).
//! - `cpu/train_epoch` and `cpu/infer_fp32`: the CPU backend on the same rows and machine.
//!
//! Data: synthetic (resampled) — 1,354,553 rows drawn with replacement from the real balanced
//! CIC-DDoS2019 sample with ±1 % jitter (`flowdata::resample_synthetic`, seed 42), then the
//! default `preprocess` pipeline fitted on the real rows. Speed only; never quote accuracy from it.
//!
//! The same rows and labels are written to `target/gpu_bench/` (`x.f32`, `y.u32`, `meta.json`,
//! relative to the working directory: the repository root under `cargo bench` and under
//! `benches/gpu/run.sh`) for the peer.
//!
//! Run (needs a CUDA device; without one it says so and measures nothing):
//! `cargo bench --bench gpu --features cuda`, then the peer
//! `python3 benches/peers/mlp_gpu_peers.py` (PyTorch on the same GPU and rows). On a machine
//! without Rust, `benches/gpu/prepare.sh` builds this bench here and `benches/gpu/run.sh` runs
//! it there. Numbers: docs/BENCHMARKS.md, section GPU. `GPU_BENCH_QUICK=1` times fewer samples.
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mlp_core::backend::cuda::{CudaBackend, FusedTile, ServingPrecision};
use mlp_core::backend::{Backend, CpuBackend};
use mlp_core::{Architecture, Init, MlpParams, Network, ServingMlp};
use ndarray::{Array1, Array2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The thesis' training-set size (70 % of its 1,935,076 balanced rows).
mod common;

const ROWS: usize = 1_354_553;
const CPU_INFER_BATCH: usize = 8192;

/// Mean seconds of the training pass of one epoch (`EpochRecord::seconds`) over `iters` fits.
fn epoch_seconds(
    be: &dyn Backend,
    x: &Array2<f32>,
    y: &Array1<usize>,
    k: usize,
    iters: u64,
) -> Duration {
    let one_epoch = MlpParams::optimized()
        .max_epochs(1)
        .early_stopping(None)
        .check()
        .expect("preset");
    (0..iters)
        .map(|_| {
            let fit = one_epoch
                .fit_on(be, x.view(), y.view(), None, Some(k))
                .expect("fit");
            Duration::from_secs_f64(fit.history()[0].seconds)
        })
        .sum()
}

fn benches(c: &mut Criterion) {
    let gpu = match CudaBackend::new(0) {
        Ok(be) => be,
        Err(e) => {
            eprintln!("gpu bench: no CUDA device ({e}); nothing measured");
            return;
        }
    };
    let (x, y, k) = common::resampled_preprocessed(ROWS);
    eprintln!(
        "data: synthetic (resampled) {} x {}, {k} classes; device {}; {} CPU cores",
        x.nrows(),
        x.ncols(),
        gpu.name(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    // For benches/peers/mlp_gpu_peers.py. Relative, not under CARGO_MANIFEST_DIR: the binary
    // built by benches/gpu/prepare.sh runs from another checkout's root (benches/gpu/run.sh).
    common::export_rows(std::path::Path::new("target/gpu_bench"), &x, &y, k);
    let quick = std::env::var("GPU_BENCH_QUICK").is_ok_and(|v| v == "1");
    let p = MlpParams::optimized().check().expect("preset");
    let arch = Architecture {
        n_features: x.ncols(),
        hidden: p.hidden().to_vec(),
        n_classes: k,
    };
    let net =
        Network::new(arch, Init::PyTorch, &mut ChaCha8Rng::seed_from_u64(42)).expect("network");
    let layers = net.fold();

    let mut g = c.benchmark_group("gpu");
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(if quick { 3 } else { 8 }));
    g.throughput(Throughput::Elements(ROWS as u64));
    g.bench_function("train_epoch_cuda", |b| {
        b.iter_custom(|iters| epoch_seconds(&gpu, &x, &y, k, iters))
    });
    let rows = gpu.upload_rows(x.view()).expect("upload");
    let mut resident = vec![(
        "infer_resident_fp32".to_string(),
        ServingPrecision::Fp32,
        FusedTile::default(),
    )];
    for (p, tag) in [
        (ServingPrecision::Tf32, "tf32"),
        (ServingPrecision::Tf32x3, "3xtf32"),
    ] {
        for tile in FusedTile::ALL {
            resident.push((format!("infer_resident_{tag}_{tile:?}"), p, tile));
        }
    }
    for (name, precision, tile) in resident {
        let serving = gpu
            .serving_with_tile(&layers, precision, tile)
            .expect("serving");
        let mut out = gpu.zeros_rows(ROWS, k).expect("logits buffer");
        g.bench_function(name.as_str(), |b| {
            b.iter_custom(|iters| {
                gpu.synchronize().expect("sync");
                let t = std::time::Instant::now();
                for _ in 0..iters {
                    serving.logits_into(&rows, &mut out).expect("logits");
                }
                gpu.synchronize().expect("sync");
                t.elapsed()
            })
        });
    }
    for (name, precision) in [
        ("infer_host_fp32", ServingPrecision::Fp32),
        ("infer_host_tf32", ServingPrecision::Tf32),
        ("infer_host_3xtf32", ServingPrecision::Tf32x3),
    ] {
        let serving = gpu.serving(&layers, precision).expect("serving");
        g.bench_function(name, |b| {
            b.iter(|| serving.logits(x.view()).expect("logits")[[0, 0]])
        });
    }
    g.finish();

    let mut g = c.benchmark_group("cpu");
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(if quick { 3 } else { 10 }));
    g.throughput(Throughput::Elements(ROWS as u64));
    g.bench_function("train_epoch", |b| {
        b.iter_custom(|iters| epoch_seconds(&CpuBackend, &x, &y, k, iters))
    });
    let serving = ServingMlp::new(layers).expect("fold");
    let mut out = Array2::<f32>::zeros((CPU_INFER_BATCH, k));
    g.bench_function("infer_fp32", |b| {
        b.iter(|| {
            for xb in x.axis_chunks_iter(Axis(0), CPU_INFER_BATCH) {
                let r = xb.nrows();
                serving.predict_proba_into(xb, out.slice_mut(ndarray::s![..r, ..]));
            }
            out[[0, 0]]
        })
    });
    g.finish();
}

criterion_group!(gpu, benches);
criterion_main!(gpu);
