//! KernelSHAP and TreeSHAP throughput beside the Python shap library (benches/peers/shap_peers.py).
//!
//! Run the peer first (it trains/exports the models and data under target/shap_bench/):
//!     benches/run_pairs.sh shap
//! or by hand (venv: see the peer's docstring):
//!     .venv-peers/bin/python benches/peers/shap_peers.py
//!     cargo bench --bench shap
//! Both sides explain the same models on the same real CIC-DDoS2019 rows:
//! - KernelSHAP: MLP 76→128→256→128→64→17 (ReLU, ELU, ReLU, ELU, softmax; fixed random weights
//!   from the peer) served by mlp-core's `ServingMlp` (the peer: float32 numpy), 100 background
//!   rows, nsamples auto (2M+2048), l1_reg num_features(10).
//! - TreeSHAP: the peer's 100-tree scikit-learn RandomForestClassifier, path-dependent.
//!
//! Besides criterion's numbers, a plain timed pass prints s/flow of both sides and the ratio.
use std::path::PathBuf;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mlp_core::inference::{Activation, DenseLayer, ServingMlp};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde_json::Value;
use shap::{Background, KernelExplainer, KernelParams, TreeArrays, TreeEnsemble, TreeExplainer};

/// CPU seconds (user + system) this process has used, from /proc/self/stat (Linux; 0 elsewhere).
/// Reported beside wall time because the bench machine is shared: CPU time is what the work
/// costs, whatever else runs.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the ") state" split.
    (ticks(11) + ticks(12)) / 100.0
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/shap_bench")
}

fn read(name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(dir().join(name)).ok()?;
    serde_json::from_str(&text).ok()
}

fn mat(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

fn arr32(v: &Value) -> Array2<f32> {
    let m = mat(v);
    Array2::from_shape_fn((m.len(), m[0].len()), |(i, j)| m[i][j] as f32)
}

/// exp for f32 in [-87, 88]: Cephes' range reduction and degree-6 polynomial, branch-free.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest with the 1.5·2^23 trick: SSE2-only, so the loop vectorises (f32::round
    // is a libm call on the baseline x86-64 target).
    let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = 1.987_569_1e-4f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

struct Mlp {
    w: Vec<Array2<f32>>,
    b: Vec<Array1<f32>>,
    acts: Vec<String>,
}

impl Mlp {
    fn load(v: &Value) -> Self {
        let w = v["w"].as_array().unwrap().iter().map(arr32).collect();
        let b = v["b"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                b.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect()
            })
            .collect();
        let acts = v["activations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        Self { w, b, acts }
    }

    fn forward(&self, x: ArrayView2<f32>) -> Array2<f32> {
        let mut h = x.dot(&self.w[0]);
        for l in 0..self.w.len() {
            if l > 0 {
                h = h.dot(&self.w[l]);
            }
            h += &self.b[l];
            match self.acts[l].as_str() {
                "relu" => h.mapv_inplace(|v| v.max(0.0)),
                "elu" => {
                    // Branch-free so it vectorises; exp error ≤ 2 ulp (like numpy's SIMD exp).
                    if let Some(sl) = h.as_slice_mut() {
                        for v in sl.iter_mut() {
                            let e = exp_f32(v.min(0.0)) - 1.0;
                            *v = if *v > 0.0 { *v } else { e };
                        }
                    } else {
                        h.mapv_inplace(|v| if v > 0.0 { v } else { v.exp_m1() });
                    }
                }
                _ => {
                    for mut r in h.rows_mut() {
                        let m = r.fold(f32::MIN, |a, &b| a.max(b));
                        r.mapv_inplace(|v| (v - m).exp());
                        let s = r.sum();
                        r.mapv_inplace(|v| v / s);
                    }
                }
            }
        }
        h
    }
}

/// The same weights as mlp-core's serving model (`ServingMlp`: packed AVX-512/AVX2 kernels,
/// BatchNorm folded — there is none here — and the softmax of `predict_proba`): the path
/// flowxai serves and explains with.
fn serving_mlp(v: &Value) -> ServingMlp {
    let mlp = Mlp::load(v);
    let n = mlp.w.len();
    let layers = (0..n)
        .map(|l| DenseLayer {
            weight: mlp.w[l].t().as_standard_layout().to_owned(),
            bias: mlp.b[l].clone(),
            activation: match mlp.acts[l].as_str() {
                "relu" => Activation::Relu,
                "elu" => Activation::Elu,
                _ => Activation::Identity, // the softmax head: predict_proba applies it
            },
        })
        .collect();
    ServingMlp::new(layers).unwrap()
}

fn forest(v: &Value) -> TreeEnsemble {
    let trees = v["trees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let ints = |k: &str| -> Vec<i64> {
                t[k].as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap())
                    .collect()
            };
            let value = mat(&t["value"]);
            TreeArrays {
                children_left: ints("children_left").iter().map(|&x| x as i32).collect(),
                children_right: ints("children_right").iter().map(|&x| x as i32).collect(),
                feature: ints("feature").iter().map(|&x| x as u32).collect(),
                threshold: t["threshold"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| shap::threshold_from_f64(x.as_f64().unwrap()))
                    .collect(),
                value: Array2::from_shape_fn((value.len(), value[0].len()), |(i, j)| value[i][j]),
                cover: t["cover"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect(),
            }
        })
        .collect();
    TreeEnsemble {
        trees,
        scale: v["scale"].as_f64().unwrap(),
    }
}

const KERNEL_FLOWS: usize = 4;
const TREE_FLOWS: usize = 200;

fn bench(c: &mut Criterion) {
    let (Some(mlp_v), Some(data_v), Some(forest_v)) =
        (read("mlp.json"), read("data.json"), read("forest.json"))
    else {
        eprintln!(
            "target/shap_bench/*.json missing: run `.venv-peers/bin/python benches/peers/shap_peers.py` first; skipping"
        );
        return;
    };
    let peer = read("peer_results.json");
    let mlp = Mlp::load(&mlp_v);
    let serving = serving_mlp(&mlp_v);
    let model = shap::InfallibleModel(|x: ArrayView2<f32>| serving.predict_proba(x));
    let background = Background::new(arr32(&data_v["background"])).unwrap();
    let explained = arr32(&data_v["explained"]);

    // ---- KernelSHAP ----
    let params = KernelParams::new().seed(0).check().unwrap(); // auto nsamples, num_features(10)
    let kernel = KernelExplainer::new(&model, background, params).unwrap();
    let xk = explained.slice(ndarray::s![..KERNEL_FLOWS, ..]).to_owned();
    let rows = explained.select(
        Axis(0),
        &(0..220_000)
            .map(|i| i % explained.nrows())
            .collect::<Vec<_>>(),
    );
    let t0 = Instant::now();
    for c in rows.axis_chunks_iter(Axis(0), 8192) {
        std::hint::black_box(mlp.forward(c));
    }
    let t_ndarray = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    for c in rows.axis_chunks_iter(Axis(0), 8192) {
        std::hint::black_box(serving.predict_proba(c));
    }
    let t_serving = t0.elapsed().as_secs_f64();
    let serving_gflops = 220_000.0 * 2.0 * 84_544.0 / t_serving / 1e9;
    eprintln!(
        "MLP forward alone, 220k rows (one flow's worth) in 8192-row calls: ndarray {t_ndarray:.3} s, mlp-core ServingMlp {t_serving:.3} s ({serving_gflops:.1} GFLOP/s)"
    );
    if let Some((peak, threads)) = fma_peak_gflops() {
        eprintln!(
            "FP32 FMA peak ({threads} threads, AVX-512): {peak:.1} GFLOP/s; ServingMlp reaches {:.0} % of it",
            100.0 * serving_gflops / peak
        );
    }
    let d = (&mlp.forward(rows.slice(ndarray::s![..4096, ..]))
        - &serving.predict_proba(rows.slice(ndarray::s![..4096, ..])))
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()));
    eprintln!("max |ServingMlp − ndarray forward| over 4096 rows: {d:.1e}");
    let p_none = KernelParams::new()
        .seed(0)
        .l1_reg(shap::L1Reg::None)
        .check()
        .unwrap();
    let k_none = KernelExplainer::new(
        &model,
        Background::new(arr32(&data_v["background"])).unwrap(),
        p_none,
    )
    .unwrap();
    let t0 = Instant::now();
    k_none.explain(xk.view()).unwrap();
    eprintln!(
        "KernelSHAP with l1_reg none: {:.4} s/flow",
        t0.elapsed().as_secs_f64() / KERNEL_FLOWS as f64
    );
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let ex = kernel.explain(xk.view()).unwrap();
    let ours = t0.elapsed().as_secs_f64() / KERNEL_FLOWS as f64;
    let ours_cpu = (cpu_seconds() - c0) / KERNEL_FLOWS as f64;
    let add = ex.additivity_error().into_iter().fold(0.0, f64::max);
    report(
        "KernelSHAP (MLP 76-128-256-128-64-17, 100 bg, auto nsamples)",
        ours,
        peer.as_ref(),
        "kernel_s_per_flow",
        add,
    );
    report(
        "KernelSHAP CPU-seconds",
        ours_cpu,
        peer.as_ref(),
        "kernel_cpu_s_per_flow",
        add,
    );

    let mut g = c.benchmark_group("shap_kernel_mlp");
    g.sample_size(10);
    g.throughput(Throughput::Elements(KERNEL_FLOWS as u64));
    g.bench_function("flowxai", |b| b.iter(|| kernel.explain(xk.view()).unwrap()));
    g.finish();

    // ---- TreeSHAP ----
    let ens = forest(&forest_v);
    let tree = TreeExplainer::new(&ens).unwrap();
    let xt = explained.slice(ndarray::s![..TREE_FLOWS, ..]).to_owned();
    tree.explain(xt.slice(ndarray::s![..4, ..])).unwrap();
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let ex = tree.explain(xt.view()).unwrap();
    let ours = t0.elapsed().as_secs_f64() / TREE_FLOWS as f64;
    let ours_cpu = (cpu_seconds() - c0) / TREE_FLOWS as f64;
    let add = ex.additivity_error().into_iter().fold(0.0, f64::max);
    report(
        "TreeSHAP (100-tree sklearn forest, 16 classes)",
        ours,
        peer.as_ref(),
        "tree_s_per_flow",
        add,
    );
    report(
        "TreeSHAP CPU-seconds",
        ours_cpu,
        peer.as_ref(),
        "tree_cpu_s_per_flow",
        add,
    );
    if let Some(want) = read("tree_shap_values_peer.json") {
        let mut worst = 0.0f64;
        for (i, flow) in want.as_array().unwrap().iter().enumerate() {
            for (j, feat) in mat(flow).iter().enumerate() {
                for (c, v) in feat.iter().enumerate() {
                    worst = worst.max((ex.values[[i, j, c]] - v).abs());
                }
            }
        }
        eprintln!("TreeSHAP vs shap on the first 5 flows: max |Δ| = {worst:.1e}");
    }

    let mut g = c.benchmark_group("shap_tree_forest100");
    g.sample_size(10);
    g.throughput(Throughput::Elements(TREE_FLOWS as u64));
    g.bench_function("flowxai", |b| b.iter(|| tree.explain(xt.view()).unwrap()));
    g.finish();
}

/// FP32 FMA peak of this machine in GFLOP/s over all hardware threads, and that thread count:
/// each thread runs 16 independent AVX-512 FMA chains (enough to cover the FMA latency on both
/// pipes) for a fixed count. The ceiling the MLP's GEMM is compared with; `None` without
/// AVX-512.
fn fma_peak_gflops() -> Option<(f64, usize)> {
    #[cfg(target_arch = "x86_64")]
    {
        if !std::is_x86_feature_detected!("avx512f") {
            return None;
        }
        #[target_feature(enable = "avx512f")]
        unsafe fn chains(n: u64) -> f32 {
            use std::arch::x86_64::*;
            // Opaque inputs, so the chains cannot be folded at compile time.
            let (x, y) = (
                _mm512_set1_ps(std::hint::black_box(0.999_999_9)),
                _mm512_set1_ps(std::hint::black_box(1e-7)),
            );
            let a0 = _mm512_set1_ps(std::hint::black_box(1.0));
            let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = [a0; 8];
            let [mut i, mut j, mut k, mut l, mut m, mut o, mut p, mut q] = [a0; 8];
            for _ in 0..std::hint::black_box(n) {
                // Written out: sixteen chains held in registers (an array loop kept them in
                // memory and measured half the rate).
                a = _mm512_fmadd_ps(a, x, y);
                b = _mm512_fmadd_ps(b, x, y);
                c = _mm512_fmadd_ps(c, x, y);
                d = _mm512_fmadd_ps(d, x, y);
                e = _mm512_fmadd_ps(e, x, y);
                f = _mm512_fmadd_ps(f, x, y);
                g = _mm512_fmadd_ps(g, x, y);
                h = _mm512_fmadd_ps(h, x, y);
                i = _mm512_fmadd_ps(i, x, y);
                j = _mm512_fmadd_ps(j, x, y);
                k = _mm512_fmadd_ps(k, x, y);
                l = _mm512_fmadd_ps(l, x, y);
                m = _mm512_fmadd_ps(m, x, y);
                o = _mm512_fmadd_ps(o, x, y);
                p = _mm512_fmadd_ps(p, x, y);
                q = _mm512_fmadd_ps(q, x, y);
            }
            let a = [a, b, c, d, e, f, g, h, i, j, k, l, m, o, p, q];
            a.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
        }
        const N: u64 = 50_000_000;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let t0 = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                // SAFETY: avx512f detected above.
                scope.spawn(|| std::hint::black_box(unsafe { chains(N) }));
            }
        });
        let flop = threads as f64 * N as f64 * 16.0 * 16.0 * 2.0;
        Some((flop / t0.elapsed().as_secs_f64() / 1e9, threads))
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

fn report(what: &str, ours: f64, peer: Option<&Value>, key: &str, additivity: f64) {
    match peer.and_then(|p| p[key].as_f64()) {
        Some(theirs) => eprintln!(
            "{what}: flowxai {:.4} s/flow ({:.2} flows/s), shap {:.4} s/flow ({:.2} flows/s), speed-up {:.1}x; max additivity error {additivity:.1e}",
            ours,
            1.0 / ours,
            theirs,
            1.0 / theirs,
            theirs / ours
        ),
        None => eprintln!("{what}: flowxai {ours:.4} s/flow (no peer_results.json); max additivity error {additivity:.1e}"),
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
