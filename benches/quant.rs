//! `mlp_infer_int8`: int8 inference throughput of the thesis `optimized` MLP shape
//! 76→128→256→128→64→17 (ReLU, ReLU, ELU, ReLU; random He-uniform weights, seed 42) on a batch of
//! 8192 flows, plus single-flow latency. Variants: `dynamic/<kernel>` (PyTorch `quantize_dynamic`
//! semantics: per-tensor weights, per-batch input ranges), `dynamic_per_row/<kernel>` (what
//! `cargo xtask reproduce` should serve: per-channel weights, per-row input ranges) and
//! `static/<kernel>` (99.99th-percentile calibration, per-feature first-layer input).
//!
//! Inputs: synthetic (resampled) — 8192 rows drawn with replacement from the real balanced
//! CIC-DDoS2019 sample (`flowdata::resample_synthetic`, seed 42), then signed-log1p and
//! standardized. Speed only; never quote accuracy from these rows.
//!
//! The weights and inputs are also written to `target/quant-bench/` so that
//! `benches/peers/quant_peers.py` times ONNX Runtime and PyTorch on exactly the same numbers.
//!
//! Run: `benches/run_pairs.sh quant` (idle machine, same threads on both sides, raw results in
//! `benches/results/`), or by hand `cargo bench --bench quant` then
//! `.venv-peers/bin/python benches/peers/quant_peers.py` (venv: see the script's docstring). With
//! `QUANT_CPU_TIME=1` it also prints flows per CPU-second (load-independent; use
//! `RAYON_NUM_THREADS=1` and compare with `quant_peers.py --ort-only --threads 1 --cpu-time`).
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mlp_core::inference::{Activation, DenseLayer};
use ndarray::{Array1, Array2, Axis};
use quant::{
    ActivationRange, DynamicQuantParams, KernelKind, Observer, Scratch, StaticQuantParams,
    WeightGranularity,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const BATCH: usize = 8192;
const DIMS: [usize; 6] = [76, 128, 256, 128, 64, 17];
const ACTS: [Activation; 5] = [
    Activation::Relu,
    Activation::Relu,
    Activation::Elu,
    Activation::Relu,
    Activation::Identity,
];

fn layers() -> Vec<DenseLayer> {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    DIMS.windows(2)
        .zip(ACTS)
        .map(|(d, activation)| {
            let bound = (6.0 / d[0] as f32).sqrt();
            DenseLayer {
                weight: Array2::from_shape_fn((d[1], d[0]), |_| rng.gen_range(-bound..bound)),
                bias: Array1::from_shape_fn(d[1], |_| rng.gen_range(-0.05..0.05)),
                activation,
            }
        })
        .collect()
}

/// Synthetic (resampled) inputs: real CIC-DDoS2019 rows drawn with replacement, signed log1p,
/// standardized with the sample's own mean and deviation.
fn inputs() -> Array2<f32> {
    let csv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/datasets/cic-ddos2019/balanced-sample/combined_data.csv");
    let (frame, _) = flowdata::read_csv(&[&csv], &flowdata::ReadOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
    assert_eq!(
        frame.n_features(),
        DIMS[0],
        "expected the 76 CIC-DDoS2019 features"
    );
    let frame = flowdata::resample_synthetic(&frame, BATCH, 42).expect("resample");
    let mut x = frame.x.mapv(|v| v.signum() * v.abs().ln_1p());
    let mean = x.mean_axis(Axis(0)).expect("rows");
    let std = x
        .std_axis(Axis(0), 0.0)
        .mapv(|s| if s > 0.0 { s } else { 1.0 });
    x -= &mean;
    x /= &std;
    x
}

fn write_f32(path: &Path, values: impl Iterator<Item = f32>) {
    let bytes: Vec<u8> = values.flat_map(f32::to_le_bytes).collect();
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Raw little-endian f32 files + a JSON index, for the Python peers.
fn export(layers: &[DenseLayer], x: &Array2<f32>) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/quant-bench");
    std::fs::create_dir_all(&dir).expect("create target/quant-bench");
    write_f32(&dir.join("x.f32"), x.iter().copied());
    let mut meta = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        write_f32(&dir.join(format!("w{i}.f32")), l.weight.iter().copied());
        write_f32(&dir.join(format!("b{i}.f32")), l.bias.iter().copied());
        meta.push(serde_json::json!({
            "out": l.weight.nrows(), "in": l.weight.ncols(), "activation": format!("{:?}", l.activation)
        }));
    }
    let index = serde_json::json!({
        "data": "synthetic (resampled) CIC-DDoS2019 balanced sample, signed log1p + standardized",
        "rows": x.nrows(), "cols": x.ncols(), "layers": meta,
    });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("write index.json");
    dir
}

/// CPU seconds used so far by all threads of this process (Linux `schedstat`, nanoseconds), or
/// `None` where it cannot be read.
fn process_cpu_seconds() -> Option<f64> {
    let mut total = 0u64;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(entry.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total as f64 * 1e-9)
}

/// Flows per CPU-second of `infer` on one batch (best of 15 rounds of 10 batches). Unlike wall
/// time this hardly moves with the load of a shared machine; compare it with
/// `quant_peers.py --ort-only --threads 1 --cpu-time` under `RAYON_NUM_THREADS=1`.
fn flows_per_cpu_second(mut infer: impl FnMut()) -> Option<f64> {
    infer();
    let mut best = f64::INFINITY;
    for _ in 0..15 {
        let t0 = process_cpu_seconds()?;
        for _ in 0..10 {
            infer();
        }
        best = best.min((process_cpu_seconds()? - t0) / 10.0);
    }
    Some(BATCH as f64 / best)
}

fn bench(c: &mut Criterion) {
    let layers = layers();
    let x = inputs();
    let dir = export(&layers, &x);
    eprintln!(
        "quant bench: data synthetic (resampled); exported to {}; kernels available {:?}; cores {}",
        dir.display(),
        KernelKind::available(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let calib = x.slice(ndarray::s![..2048, ..]);
    let stat = StaticQuantParams::new()
        .observer(Observer::Percentile(99.99))
        .calibrate(&layers, calib)
        .expect("calibrate");
    let dynamic = DynamicQuantParams::new()
        .quantize(&layers)
        .expect("quantize");
    // What `cargo xtask reproduce` serves: per-row input ranges, per-channel weights.
    let per_row = DynamicQuantParams::new()
        .weight_granularity(WeightGranularity::PerChannel)
        .activation_range(ActivationRange::PerRow)
        .quantize(&layers)
        .expect("quantize");

    if std::env::var_os("QUANT_CPU_TIME").is_some() {
        let mut out = Array2::zeros((BATCH, DIMS[5]));
        let mut scratch = Scratch::new();
        let kind = KernelKind::detect();
        for (name, m) in [
            ("dynamic", &dynamic),
            ("dynamic_per_row", &per_row),
            ("static", &stat),
        ] {
            let m = m.clone().with_kernel(kind).expect("kernel");
            let rate = flows_per_cpu_second(|| {
                m.logits_into(x.view(), &mut scratch, out.view_mut())
                    .expect("infer")
            });
            if let Some(rate) = rate {
                eprintln!(
                    "cpu-time {name}/{kind:?}: {:.3}M flows per CPU-second",
                    rate / 1e6
                );
            }
        }
    }

    let mut group = c.benchmark_group("mlp_infer_int8");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(30);
    let mut out = Array2::zeros((BATCH, DIMS[5]));
    let mut scratch = Scratch::new();
    for kind in KernelKind::available() {
        let m = dynamic.clone().with_kernel(kind).expect("kernel");
        group.bench_with_input(
            BenchmarkId::new("dynamic", format!("{kind:?}")),
            &x,
            |b, x| {
                b.iter(|| {
                    m.logits_into(x.view(), &mut scratch, out.view_mut())
                        .expect("infer")
                })
            },
        );
    }
    for kind in [KernelKind::detect(), KernelKind::Scalar] {
        let m = per_row.clone().with_kernel(kind).expect("kernel");
        group.bench_with_input(
            BenchmarkId::new("dynamic_per_row", format!("{kind:?}")),
            &x,
            |b, x| {
                b.iter(|| {
                    m.logits_into(x.view(), &mut scratch, out.view_mut())
                        .expect("infer")
                })
            },
        );
    }
    for kind in [KernelKind::detect(), KernelKind::Scalar] {
        let m = stat.clone().with_kernel(kind).expect("kernel");
        group.bench_with_input(
            BenchmarkId::new("static", format!("{kind:?}")),
            &x,
            |b, x| {
                b.iter(|| {
                    m.logits_into(x.view(), &mut scratch, out.view_mut())
                        .expect("infer")
                })
            },
        );
    }
    group.finish();

    let mut group = c.benchmark_group("mlp_infer_int8_single_flow");
    group.throughput(Throughput::Elements(1));
    let one = x.slice(ndarray::s![..1, ..]).to_owned();
    let mut out1 = Array2::zeros((1, DIMS[5]));
    for (name, m) in [
        ("dynamic", &dynamic),
        ("dynamic_per_row", &per_row),
        ("static", &stat),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                m.logits_into(one.view(), &mut scratch, out1.view_mut())
                    .expect("infer")
            })
        });
    }
    group.finish();
}

// Plots off: the SVG backend panics in this environment and the numbers are what we report.
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
