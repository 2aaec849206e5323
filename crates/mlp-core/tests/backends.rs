//! Every backend operation against a reference, once per backend (the `device_tests!` macro
//! makes `cpu::NAME` and `cuda::NAME` from one `fn NAME(&dyn Backend)`).
//!
//! References: plain f64 loops of the PyTorch formulas for the kernels; the CPU engine
//! (itself checked against PyTorch in `torch_parity.rs`) for the full training step, the
//! epoch trainer and inference. Tolerance: 1e-4 relative to the largest magnitude of the
//! compared vector (1e-3 for whole epochs, where Adam's normalised steps amplify rounding).
//!
//! Three instantiations: `cpu::` (the reference backend), `cuda::` (a real device: without
//! one, or without the `cuda` feature, each test prints "skipped: no CUDA device" and passes;
//! `FLOWXAI_REQUIRE_CUDA=1` turns that into a failure) and `emulated::` (with the `cuda`
//! feature: the CUDA backend's host code driving the same `.cu` kernels compiled for the CPU
//! by `tests/emulator/cuda_emulator.cpp`; checks the kernels' logic, launch grids and
//! arguments without a GPU, but not NVRTC code generation or the driver).
use mlp_core::backend::{self, philox, Backend, CpuBackend, GemmForm};
use mlp_core::cpu::AdamStep;
use mlp_core::engine::{self, MaskSource, Workspace};
use mlp_core::network::BnRunning;
use mlp_core::{Activation, Architecture, HiddenSpec, Init, MlpParams, Network, Schedule};
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
#[cfg(feature = "cuda")]
use std::sync::OnceLock;

#[cfg(feature = "cuda")]
use mlp_core::backend::cuda::{CudaBackend, FusedTile, ServingPrecision};

/// The command that runs the GPU tests (ignored by default: no CI machine has a GPU).
#[cfg(feature = "cuda")]
const GPU_TESTS: &str =
    "FLOWXAI_REQUIRE_CUDA=1 cargo test -p mlp-core --features cuda --test backends -- --include-ignored";

/// The CUDA device for the ignored GPU tests: a test asked to run without one fails.
#[cfg(feature = "cuda")]
fn cuda_device() -> &'static CudaBackend {
    static CUDA: OnceLock<Result<CudaBackend, String>> = OnceLock::new();
    match CUDA.get_or_init(|| CudaBackend::new(0).map_err(|e| e.to_string())) {
        Ok(be) => be,
        Err(e) => panic!("no usable CUDA device ({e}); the GPU tests run with: {GPU_TESTS}"),
    }
}

#[cfg(feature = "cuda")]
fn cuda_backend() -> &'static dyn Backend {
    cuda_device()
}

/// Without the feature, asking for CUDA is a clear error (the path a user without it sees).
#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_is_a_clear_error() {
    let e = backend::cuda()
        .err()
        .expect("no CUDA backend without the feature");
    assert!(e.to_string().contains("--features cuda"), "{e}");
}

/// Under `CI=true` a test whose tool is missing fails (CI installs it); elsewhere it says why
/// it did not run.
#[cfg(feature = "cuda")]
fn require_or_skip(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("CI=true but {what} is unavailable: install it in .ci/run");
    }
    eprintln!("skipped: {what} is unavailable");
}

/// The CUDA backend with its kernels compiled for the host by a C++ compiler (`CXX`, default
/// `g++`) and run by `tests/emulator/cuda_emulator.cpp` on CPU threads.
#[cfg(feature = "cuda")]
fn emulated_device() -> Option<&'static CudaBackend> {
    use std::path::Path;
    static EMU: OnceLock<Option<CudaBackend>> = OnceLock::new();
    EMU.get_or_init(|| {
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let lib = Path::new(env!("CARGO_TARGET_TMPDIR")).join("libflowxai_cuda_emulator.so");
        let status = std::process::Command::new(&cxx)
            .args(["-std=c++20", "-O2", "-fPIC", "-shared", "-pthread"])
            .args(["-Wall", "-Wno-unknown-pragmas", "-Werror"])
            .arg("-I")
            .arg(crate_dir.join("kernels"))
            .arg(crate_dir.join("tests/emulator/cuda_emulator.cpp"))
            .arg("-o")
            .arg(&lib)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("{cxx} failed to build the kernel emulator ({s})"),
            Err(e) => {
                require_or_skip(&format!("a C++20 compiler (`{cxx}`: {e})"));
                return None;
            }
        }
        Some(CudaBackend::emulated(&lib).unwrap())
    })
    .as_ref()
}

#[cfg(feature = "cuda")]
fn emulated_backend() -> Option<&'static dyn Backend> {
    emulated_device().map(|be| be as &dyn Backend)
}

/// One test per backend for each conformance check: `cpu` always; with `--features cuda`,
/// `emulated` (the CUDA backend over the kernel emulator, needs a C++20 compiler) and `cuda`
/// (a real GPU: ignored by default, run by [`GPU_TESTS`]).
macro_rules! device_tests {
    ($($name:ident),* $(,)?) => {
        #[cfg(feature = "cuda")]
        mod emulated {
            $(#[test]
            fn $name() {
                if let Some(be) = super::emulated_backend() {
                    super::$name(be);
                }
            })*
        }
        mod cpu {
            $(#[test]
            fn $name() {
                super::$name(&mlp_core::backend::CpuBackend);
            })*
        }
        #[cfg(feature = "cuda")]
        mod cuda {
            $(#[test]
            #[ignore = "needs a GPU: FLOWXAI_REQUIRE_CUDA=1 cargo test -p mlp-core --features cuda --test backends -- --include-ignored"]
            fn $name() {
                super::$name(super::cuda_backend());
            })*
        }
    };
}

device_tests!(
    gemm_forms,
    bias_activation,
    activation_backward,
    dropout_masks,
    column_sums,
    batchnorm_train_forward,
    batchnorm_eval_forward,
    batchnorm_backward,
    softmax_cross_entropy,
    adam_updates,
    full_training_step,
    philox_training_step,
    epoch_trainer,
    inference_logits,
);

const TOL: f64 = 1e-4;

fn random(len: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..len).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
}

fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-6);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(g) - w).abs() <= tol * scale,
            "{what}[{i}]: {g} vs {w} (scale {scale})"
        );
    }
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

fn act64(v: f64, act: Activation) -> f64 {
    match act {
        Activation::Identity => v,
        Activation::Relu => v.max(0.0),
        Activation::Elu => {
            if v > 0.0 {
                v
            } else {
                v.exp_m1()
            }
        }
    }
}

const ACTS: [Activation; 3] = [Activation::Identity, Activation::Relu, Activation::Elu];

/// Shapes with partial 64×64 tiles, K not a multiple of 16, single rows and columns.
const SHAPES: [(usize, usize, usize); 6] = [
    (1, 1, 1),
    (3, 5, 17),
    (65, 33, 76),
    (128, 64, 64),
    (200, 3, 130),
    (257, 100, 31),
];

fn gemm_forms(be: &dyn Backend) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (m, n, k) in SHAPES {
        let a = random(m * k, &mut rng);
        let b = random(k * n, &mut rng);
        let bias = random(n, &mut rng);
        for form in [GemmForm::NN, GemmForm::NT, GemmForm::TN] {
            // op(A)(i, kk) and op(B)(kk, j) for the form's storage layout.
            let av = |i: usize, kk: usize| match form {
                GemmForm::TN => a[kk * m + i],
                _ => a[i * k + kk],
            };
            let bv = |kk: usize, j: usize| match form {
                GemmForm::NT => b[j * k + kk],
                _ => b[kk * n + j],
            };
            for with_bias in [false, true] {
                let got = be
                    .gemm(form, m, n, k, &a, &b, with_bias.then_some(&bias[..]))
                    .unwrap();
                let want: Vec<f64> = (0..m * n)
                    .map(|e| {
                        let (i, j) = (e / n, e % n);
                        let dot: f64 = (0..k)
                            .map(|kk| f64::from(av(i, kk)) * f64::from(bv(kk, j)))
                            .sum();
                        dot + if with_bias { f64::from(bias[j]) } else { 0.0 }
                    })
                    .collect();
                assert_close(
                    &got,
                    &want,
                    TOL,
                    &format!("{form:?} {m}x{n}x{k} bias={with_bias}"),
                );
            }
        }
    }
}

fn bias_activation(be: &dyn Backend) {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (rows, n) = (37, 19);
    let z: Vec<f32> = random(rows * n, &mut rng).iter().map(|v| v * 4.0).collect();
    let bias = random(n, &mut rng);
    for act in ACTS {
        for with_bias in [false, true] {
            let mut got = z.clone();
            be.bias_act(&mut got, n, with_bias.then_some(&bias[..]), act)
                .unwrap();
            let want: Vec<f64> = (0..rows * n)
                .map(|e| {
                    let b = if with_bias {
                        f64::from(bias[e % n])
                    } else {
                        0.0
                    };
                    act64(f64::from(z[e]) + b, act)
                })
                .collect();
            assert_close(&got, &want, TOL, &format!("{act:?} bias={with_bias}"));
        }
    }
}

fn activation_backward(be: &dyn Backend) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let len = 1000;
    let grad = random(len, &mut rng);
    let pre: Vec<f32> = random(len, &mut rng).iter().map(|v| v * 3.0).collect();
    let mask: Vec<f32> = (0..len)
        .map(|i| if i % 5 == 0 { 0.0 } else { 1.25 })
        .collect();
    for act in ACTS {
        let out: Vec<f32> = pre
            .iter()
            .map(|&v| act64(f64::from(v), act) as f32)
            .collect();
        for with_mask in [false, true] {
            let mut got = grad.clone();
            be.act_backward(&mut got, &out, with_mask.then_some(&mask[..]), act)
                .unwrap();
            let want: Vec<f64> = (0..len)
                .map(|i| {
                    let g = f64::from(grad[i]) * if with_mask { f64::from(mask[i]) } else { 1.0 };
                    let o = f64::from(out[i]);
                    let d = match act {
                        Activation::Identity => 1.0,
                        Activation::Relu => f64::from(u8::from(o > 0.0)),
                        Activation::Elu => {
                            if o > 0.0 {
                                1.0
                            } else {
                                o + 1.0
                            }
                        }
                    };
                    g * d
                })
                .collect();
            assert_close(&got, &want, TOL, &format!("{act:?} mask={with_mask}"));
        }
    }
}

fn dropout_masks(be: &dyn Backend) {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    // 4099: a partial Philox group at the end.
    let src = random(4099, &mut rng);
    for (p, seed, stream) in [
        (0.1f32, 7u64, 0u64),
        (0.5, u64::MAX, 1 << 40),
        (0.25, 42, 3),
    ] {
        let (dst, mask) = be.dropout(&src, p, seed, stream).unwrap();
        // Bit-identical masks on every backend (the same counter-based generator).
        assert_eq!(mask, philox::dropout_mask(src.len(), p, seed, stream));
        let want: Vec<f64> = src
            .iter()
            .zip(&mask)
            .map(|(&s, &m)| f64::from(s * m))
            .collect();
        assert_close(&dst, &want, 0.0, "dropped");
        let kept = mask.iter().filter(|&&m| m != 0.0).count() as f64 / mask.len() as f64;
        // Binomial sd ≤ 0.008 at n = 4099: 0.04 is 5 sd.
        assert!(
            (kept - (1.0 - f64::from(p))).abs() < 0.04,
            "p={p}: kept {kept}"
        );
    }
}

fn column_sums(be: &dyn Backend) {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (rows, n) in [(1, 1), (300, 33), (1024, 64), (7, 100)] {
        let data = random(rows * n, &mut rng);
        let got = be.column_sums(&data, n).unwrap();
        let want: Vec<f64> = (0..n)
            .map(|j| (0..rows).map(|r| f64::from(data[r * n + j])).sum())
            .collect();
        // Scale by the column's magnitude bound (a sum of |values|), not the possibly tiny sum.
        let bound = (rows as f64).sqrt();
        for (j, (&g, &w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (f64::from(g) - w).abs() <= TOL * bound,
                "{rows}x{n} column {j}: {g} vs {w}"
            );
        }
    }
}

struct BnCase {
    rows: usize,
    n: usize,
    z: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    running: BnRunning,
}

fn bn_case(rows: usize, n: usize, seed: u64) -> BnCase {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    BnCase {
        rows,
        n,
        // Offset and scaled columns: the statistics matter.
        z: (0..rows * n)
            .map(|e| rng.gen_range(-1.0f32..1.0) * (1.0 + (e % n) as f32) + (e % n) as f32 * 0.5)
            .collect(),
        gamma: (0..n).map(|_| rng.gen_range(0.5f32..1.5)).collect(),
        beta: random(n, &mut rng),
        running: BnRunning {
            mean: random(n, &mut rng),
            var: (0..n).map(|_| rng.gen_range(0.5f32..2.0)).collect(),
            num_batches_tracked: 3,
        },
    }
}

fn batchnorm_train_forward(be: &dyn Backend) {
    for (rows, n) in [(2, 3), (100, 33), (513, 64)] {
        let c = bn_case(rows, n, 6);
        for act in ACTS {
            let mut z = c.z.clone();
            let mut running = c.running.clone();
            let cache = be
                .bn_train_forward(&mut z, n, &c.gamma, &c.beta, &mut running, act)
                .unwrap();
            let mut mean = vec![0.0f64; n];
            let mut var = vec![0.0f64; n];
            for j in 0..n {
                mean[j] = (0..rows).map(|r| f64::from(c.z[r * n + j])).sum::<f64>() / rows as f64;
                var[j] = (0..rows)
                    .map(|r| (f64::from(c.z[r * n + j]) - mean[j]).powi(2))
                    .sum::<f64>()
                    / rows as f64;
            }
            let xhat: Vec<f64> = (0..rows * n)
                .map(|e| (f64::from(c.z[e]) - mean[e % n]) / (var[e % n] + 1e-5).sqrt())
                .collect();
            let y: Vec<f64> = (0..rows * n)
                .map(|e| {
                    let j = e % n;
                    act64(f64::from(c.gamma[j]) * xhat[e] + f64::from(c.beta[j]), act)
                })
                .collect();
            let inv: Vec<f64> = var.iter().map(|v| 1.0 / (v + 1e-5).sqrt()).collect();
            let rm: Vec<f64> = (0..n)
                .map(|j| 0.1 * mean[j] + 0.9 * f64::from(c.running.mean[j]))
                .collect();
            let rv: Vec<f64> = (0..n)
                .map(|j| {
                    0.1 * var[j] * rows as f64 / (rows - 1) as f64
                        + 0.9 * f64::from(c.running.var[j])
                })
                .collect();
            let what = format!("{rows}x{n} {act:?}");
            assert_close(&z, &y, TOL, &format!("{what} y"));
            assert_close(&cache.xhat, &xhat, TOL, &format!("{what} xhat"));
            assert_close(&cache.mean, &mean, TOL, &format!("{what} mean"));
            assert_close(&cache.inv_std, &inv, TOL, &format!("{what} inv_std"));
            assert_close(&running.mean, &rm, TOL, &format!("{what} running_mean"));
            assert_close(&running.var, &rv, TOL, &format!("{what} running_var"));
            assert_eq!(running.num_batches_tracked, 4);
        }
    }
}

fn batchnorm_eval_forward(be: &dyn Backend) {
    let c = bn_case(77, 21, 7);
    for act in ACTS {
        let mut z = c.z.clone();
        be.bn_eval_forward(&mut z, c.n, &c.gamma, &c.beta, &c.running, act)
            .unwrap();
        let want: Vec<f64> = (0..c.rows * c.n)
            .map(|e| {
                let j = e % c.n;
                let h = (f64::from(c.z[e]) - f64::from(c.running.mean[j]))
                    / (f64::from(c.running.var[j]) + 1e-5).sqrt();
                act64(f64::from(c.gamma[j]) * h + f64::from(c.beta[j]), act)
            })
            .collect();
        assert_close(&z, &want, TOL, &format!("{act:?}"));
    }
}

fn batchnorm_backward(be: &dyn Backend) {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    for (rows, n) in [(2, 3), (300, 40)] {
        let c = bn_case(rows, n, 9);
        let dy = random(rows * n, &mut rng);
        let inv_std: Vec<f32> = (0..n).map(|_| rng.gen_range(0.5f32..2.0)).collect();
        // A normalised-looking x̂ (any values exercise the formula).
        let xhat = random(rows * n, &mut rng);
        let mut got = dy.clone();
        let (dgamma, dbeta) = be
            .bn_backward(&mut got, &xhat, n, &c.gamma, &inv_std)
            .unwrap();
        let sdy: Vec<f64> = (0..n)
            .map(|j| (0..rows).map(|r| f64::from(dy[r * n + j])).sum())
            .collect();
        let sdx: Vec<f64> = (0..n)
            .map(|j| {
                (0..rows)
                    .map(|r| f64::from(dy[r * n + j]) * f64::from(xhat[r * n + j]))
                    .sum()
            })
            .collect();
        let nf = rows as f64;
        let dz: Vec<f64> = (0..rows * n)
            .map(|e| {
                let j = e % n;
                f64::from(c.gamma[j]) * f64::from(inv_std[j]) / nf
                    * (nf * f64::from(dy[e]) - sdy[j] - f64::from(xhat[e]) * sdx[j])
            })
            .collect();
        assert_close(&got, &dz, TOL, &format!("{rows}x{n} dz"));
        assert_close(&dgamma, &sdx, TOL, &format!("{rows}x{n} dgamma"));
        assert_close(&dbeta, &sdy, TOL, &format!("{rows}x{n} dbeta"));
    }
}

fn softmax_cross_entropy(be: &dyn Backend) {
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    for (rows, k) in [(1, 2), (300, 7), (1000, 15)] {
        let logits: Vec<f32> = random(rows * k, &mut rng).iter().map(|v| v * 5.0).collect();
        let labels: Vec<usize> = (0..rows).map(|_| rng.gen_range(0..k)).collect();
        let cw: Vec<f32> = (0..k).map(|_| rng.gen_range(0.2f32..3.0)).collect();
        let w: Vec<f32> = labels.iter().map(|&y| cw[y]).collect();
        let mut got = logits.clone();
        let st = be.softmax_ce(&mut got, k, &labels, &w).unwrap();
        let wsum: f64 = w.iter().map(|&v| f64::from(v)).sum();
        let (mut loss, mut correct) = (0.0f64, 0usize);
        let mut grad = vec![0.0f64; rows * k];
        for r in 0..rows {
            let z = &logits[r * k..(r + 1) * k];
            let mx = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let argmax = z.iter().position(|&v| v == mx).unwrap();
            correct += usize::from(argmax == labels[r]);
            let e: Vec<f64> = z.iter().map(|&v| f64::from(v - mx).exp()).collect();
            let s: f64 = e.iter().sum();
            loss += f64::from(w[r]) * (s.ln() - f64::from(z[labels[r]] - mx));
            for c in 0..k {
                let onehot = f64::from(u8::from(c == labels[r]));
                grad[r * k + c] = f64::from(w[r]) * (e[c] / s - onehot) / wsum;
            }
        }
        let what = format!("{rows}x{k}");
        assert_close(&got, &grad, TOL, &format!("{what} grad"));
        assert!(
            (st.loss_sum - loss).abs() <= TOL * loss.abs(),
            "{what} loss {} vs {loss}",
            st.loss_sum
        );
        assert!(
            (st.weight_sum - wsum).abs() <= 1e-6 * wsum,
            "{what} weight sum"
        );
        assert_eq!(st.correct, correct, "{what} correct");
    }
}

fn adam_updates(be: &dyn Backend) {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let len = 5000;
    for sklearn in [false, true] {
        let mut p = random(len, &mut rng);
        let (mut m, mut v) = (vec![0.0f32; len], vec![0.0f32; len]);
        let mut p64 = to64(&p);
        let (mut m64, mut v64) = (vec![0.0f64; len], vec![0.0f64; len]);
        for t in 1..=4u64 {
            // Gradients bounded away from 0 so m/√v is well conditioned in f32.
            let g: Vec<f32> = (0..len)
                .map(|_| rng.gen_range(0.1f32..1.0) * if rng.gen_bool(0.5) { 1.0 } else { -1.0 })
                .collect();
            let (lr, b1) = Schedule::one_cycle_default().at(t as usize, 10, 1e-2, 0.9);
            let h = AdamStep {
                lr,
                beta1: b1,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: if sklearn { 0.0 } else { 1e-2 },
                t,
                sklearn_form: sklearn,
            };
            be.adam(&mut p, &g, &mut m, &mut v, h).unwrap();
            let (bc1, bc2) = (1.0 - b1.powi(t as i32), 1.0 - 0.999f64.powi(t as i32));
            for i in 0..len {
                let gi = f64::from(g[i]);
                if !sklearn {
                    p64[i] *= 1.0 - lr * 1e-2;
                }
                m64[i] = b1 * m64[i] + (1.0 - b1) * gi;
                v64[i] = 0.999 * v64[i] + 0.001 * gi * gi;
                p64[i] -= if sklearn {
                    lr * bc2.sqrt() / bc1 * m64[i] / (v64[i].sqrt() + 1e-8)
                } else {
                    lr / bc1 * m64[i] / (v64[i].sqrt() / bc2.sqrt() + 1e-8)
                };
            }
            let what = format!("sklearn={sklearn} t={t}");
            assert_close(&p, &p64, TOL, &format!("{what} params"));
            assert_close(&m, &m64, TOL, &format!("{what} m"));
            assert_close(&v, &v64, TOL, &format!("{what} v"));
        }
    }
}

fn test_arch() -> Architecture {
    Architecture {
        n_features: 11,
        hidden: vec![
            HiddenSpec::new(70, true, Activation::Elu, 0.2),
            HiddenSpec::new(33, true, Activation::Relu, 0.1),
            HiddenSpec::new(17, false, Activation::Elu, 0.0),
        ],
        n_classes: 5,
    }
}

fn blobs(rows: usize, f: usize, k: usize, seed: u64) -> (Array2<f32>, Array1<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let y = Array1::from_shape_fn(rows, |i| (i * 7 + i / 3) % k);
    let x = Array2::from_shape_fn((rows, f), |(i, j)| {
        (y[i] as f32) * ((j % 3) as f32 - 1.0) * 0.7 + rng.gen_range(-1.0f32..1.0)
    });
    (x, y)
}

fn full_training_step(be: &dyn Backend) {
    let arch = test_arch();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let net0 = Network::new(arch.clone(), Init::PyTorch, &mut rng).unwrap();
    let rows = 300; // two ROW_CHUNKs on the CPU, partial GEMM tiles on the device
    let (x, y) = blobs(rows, arch.n_features, arch.n_classes, 13);
    let x = x.as_slice().unwrap().to_vec();
    let y = y.to_vec();
    let w: Vec<f32> = y.iter().map(|&c| 0.5 + c as f32 * 0.3).collect();
    let masks: Vec<Vec<f32>> = arch
        .hidden
        .iter()
        .map(|h| {
            (0..rows * h.units)
                .map(|_| f32::from(rng.gen_bool(0.8)))
                .collect()
        })
        .collect();

    // Reference: the CPU engine.
    let mut ref_net = net0.clone();
    let mut ws = Workspace::new(&ref_net, rows);
    let ref_st = engine::train_step(
        &mut ref_net,
        &mut ws,
        &x,
        &y,
        &w,
        MaskSource::Explicit(&masks),
        None,
    );

    let mut net = net0.clone();
    let (st, grads) = be
        .train_step(&mut net, &x, &y, &w, MaskSource::Explicit(&masks))
        .unwrap();
    assert!(
        (st.loss_sum - ref_st.loss_sum).abs() <= TOL * ref_st.loss_sum.abs(),
        "loss {} vs {}",
        st.loss_sum,
        ref_st.loss_sum
    );
    assert!((st.weight_sum - ref_st.weight_sum).abs() <= 1e-6 * ref_st.weight_sum);
    assert!(
        st.correct.abs_diff(ref_st.correct) <= 1,
        "correct {} vs {}",
        st.correct,
        ref_st.correct
    );
    // Per tensor, relative to that tensor's largest gradient.
    for e in net.layout() {
        assert_close(
            &grads[e.range()],
            &to64(&ws.grads[e.range()]),
            TOL,
            &format!("grad {}", e.name),
        );
    }
    for (b, (r, rr)) in net.running.iter().zip(&ref_net.running).enumerate() {
        if let (Some(r), Some(rr)) = (r, rr) {
            assert_close(
                &r.mean,
                &to64(&rr.mean),
                TOL,
                &format!("block {b} running_mean"),
            );
            assert_close(
                &r.var,
                &to64(&rr.var),
                TOL,
                &format!("block {b} running_var"),
            );
            assert_eq!(r.num_batches_tracked, rr.num_batches_tracked);
        }
    }
    assert_eq!(
        net.params, net0.params,
        "train_step must not update parameters"
    );
}

/// A device step with its own Philox dropout masks equals the CPU engine given the same masks
/// (checks the seed/stream wiring of the device trainer). The CPU backend draws ChaCha8 masks
/// for `MaskSource::Random` (the trainer's), so there this only checks the step runs.
fn philox_training_step(be: &dyn Backend) {
    let arch = test_arch();
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let net0 = Network::new(arch.clone(), Init::PyTorch, &mut rng).unwrap();
    let rows = 130;
    let (x, y) = blobs(rows, arch.n_features, arch.n_classes, 18);
    let (x, y) = (x.as_slice().unwrap().to_vec(), y.to_vec());
    let w = vec![1.0f32; rows];
    let (seed, step) = (99u64, 12u64);
    let mut net = net0.clone();
    let (st, grads) = be
        .train_step(&mut net, &x, &y, &w, MaskSource::Random { seed, step })
        .unwrap();
    assert!(st.loss_sum.is_finite() && grads.iter().all(|g| g.is_finite()));
    if be.device() == backend::Device::Cpu {
        return;
    }
    let keep: Vec<Vec<f32>> = arch
        .hidden
        .iter()
        .enumerate()
        .map(|(b, h)| {
            if h.dropout == 0.0 {
                return Vec::new();
            }
            philox::dropout_mask(
                rows * h.units,
                h.dropout,
                seed,
                philox::dropout_stream(step, b),
            )
            .iter()
            .map(|&m| f32::from(m != 0.0))
            .collect()
        })
        .collect();
    let mut ref_net = net0.clone();
    let mut ws = Workspace::new(&ref_net, rows);
    let ref_st = engine::train_step(
        &mut ref_net,
        &mut ws,
        &x,
        &y,
        &w,
        MaskSource::Explicit(&keep),
        None,
    );
    assert!(
        (st.loss_sum - ref_st.loss_sum).abs() <= TOL * ref_st.loss_sum.abs(),
        "loss {} vs {}",
        st.loss_sum,
        ref_st.loss_sum
    );
    for e in net.layout() {
        assert_close(
            &grads[e.range()],
            &to64(&ws.grads[e.range()]),
            TOL,
            &format!("grad {}", e.name),
        );
    }
}

/// Two epochs through `fit_on` against `fit` on the CPU, for the thesis' optimized preset
/// (BatchNorm, AdamW, OneCycle) and the scikit-learn baseline (Adam with L2, constant lr).
/// Without dropout (the CUDA backend draws Philox masks, the CPU ChaCha ones), so both follow
/// the same trajectory; on the CPU backend the result must be bit-identical.
fn epoch_trainer(be: &dyn Backend) {
    let no_dropout = |h: &[HiddenSpec]| -> Vec<HiddenSpec> {
        h.iter()
            .map(|h| HiddenSpec { dropout: 0.0, ..*h })
            .collect()
    };
    let arch = test_arch();
    let (x, y) = blobs(700, arch.n_features, arch.n_classes, 14);
    let presets = [
        MlpParams::optimized().hidden(no_dropout(&arch.hidden)),
        MlpParams::sklearn_baseline().hidden(no_dropout(
            MlpParams::sklearn_baseline().check().unwrap().hidden(),
        )),
    ];
    for preset in presets {
        let p = preset
            .batch_size(128) // 6 batches, the last one partial
            .max_epochs(2)
            .early_stopping(None)
            .seed(5)
            .check()
            .unwrap();
        let what = format!("{:?}", p.optimizer());
        let want = p.fit(x.view(), y.view(), None, None).unwrap();
        let got = p.fit_on(be, x.view(), y.view(), None, None).unwrap();
        if be.device() == backend::Device::Cpu {
            assert_eq!(got.network(), want.network(), "{what}");
            continue;
        }
        for e in want.network().layout() {
            assert_close(
                &got.network().params[e.range()],
                &to64(&want.network().params[e.range()]),
                1e-3,
                &format!("{what} param {}", e.name),
            );
        }
        for (g, w) in got.history().iter().zip(want.history()) {
            assert!(
                (g.train_loss - w.train_loss).abs() <= 1e-3 * w.train_loss,
                "{what}: {g:?} vs {w:?}"
            );
            assert!(
                (g.train_accuracy - w.train_accuracy).abs() <= 2.0 / 700.0,
                "{what}: {g:?} vs {w:?}"
            );
            assert_eq!(g.learning_rate, w.learning_rate);
        }
    }
}

fn inference_logits(be: &dyn Backend) {
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let mut net = Network::new(test_arch(), Init::PyTorch, &mut rng).unwrap();
    for r in net.running.iter_mut().flatten() {
        r.mean
            .iter_mut()
            .for_each(|m| *m = rng.gen_range(-0.5..0.5));
        r.var.iter_mut().for_each(|v| *v = rng.gen_range(0.5..2.0));
    }
    let layers = net.fold();
    let (x, _) = blobs(1000, 11, 5, 16);
    let got = be.logits(&layers, x.view()).unwrap();
    let want = CpuBackend.logits(&layers, x.view()).unwrap();
    assert_eq!(got.dim(), want.dim());
    assert_close(
        got.as_slice().unwrap(),
        &to64(want.as_slice().unwrap()),
        TOL,
        "logits",
    );
}

/// The CUDA-only resident serving path in its three precisions against the CPU's folded
/// forward: fp32 and 3×TF32 within 1e-4 of the largest logit, TF32 within 1e-2 (its operands
/// keep 10 mantissa bits) and measurably less exact than 3×TF32 (so the split is really done).
/// Two networks: the thesis shape (76 → 128 → 256 → 128 → 64 → 17) and odd widths that
/// exercise every padding path; row counts leave a partial last block.
#[cfg(feature = "cuda")]
fn serving_precisions(be: &CudaBackend) {
    let thesis = Architecture {
        n_features: 76,
        hidden: MlpParams::optimized().check().unwrap().hidden().to_vec(),
        n_classes: 17,
    };
    for (arch, rows, seed) in [(thesis, 130, 21), (test_arch(), 70, 22)] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut net = Network::new(arch.clone(), Init::PyTorch, &mut rng).unwrap();
        for r in net.running.iter_mut().flatten() {
            r.mean
                .iter_mut()
                .for_each(|m| *m = rng.gen_range(-0.5..0.5));
            r.var.iter_mut().for_each(|v| *v = rng.gen_range(0.5..2.0));
        }
        let layers = net.fold();
        let (x, _) = blobs(rows, arch.n_features, arch.n_classes, seed + 1);
        let want = to64(
            CpuBackend
                .logits(&layers, x.view())
                .unwrap()
                .as_slice()
                .unwrap(),
        );
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let mut worst = Vec::new();
        for (precision, tol) in [
            (ServingPrecision::Fp32, TOL),
            (ServingPrecision::Tf32x3, TOL),
            (ServingPrecision::Tf32, 1e-2),
        ] {
            let mut err_by_tile = Vec::new();
            for tile in FusedTile::ALL {
                let serving = be.serving_with_tile(&layers, precision, tile).unwrap();
                let got = serving.logits(x.view()).unwrap();
                assert_eq!(got.dim(), (rows, arch.n_classes));
                let what = format!(
                    "{precision:?} {tile:?} logits, {} features",
                    arch.n_features
                );
                assert_close(got.as_slice().unwrap(), &want, tol, &what);
                let err = got
                    .iter()
                    .zip(&want)
                    .fold(0.0f64, |m, (&g, &w)| m.max((f64::from(g) - w).abs()));
                eprintln!("{what}: max error {err:.2e} of {scale:.2e}");
                err_by_tile.push(err);
            }
            worst.push(err_by_tile.into_iter().fold(0.0, f64::max));
        }
        assert!(
            worst[2] > worst[1],
            "TF32 ({:.2e}) should be less exact than 3xTF32 ({:.2e})",
            worst[2],
            worst[1]
        );
    }
}

/// The host path (pinned double-buffered chunks) over several chunks equals the resident path
/// bit for bit: the same kernels on the same rows, only the transfers differ.
#[cfg(feature = "cuda")]
fn host_chunks_match_resident(be: &CudaBackend) {
    use mlp_core::backend::cuda::HOST_CHUNK_ROWS;
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let net = Network::new(test_arch(), Init::PyTorch, &mut rng).unwrap();
    let layers = net.fold();
    let rows = 2 * HOST_CHUNK_ROWS + 5;
    let (x, _) = blobs(rows, 11, 5, 32);
    for precision in [ServingPrecision::Fp32, ServingPrecision::Tf32] {
        let serving = be.serving(&layers, precision).unwrap();
        let host = serving.logits(x.view()).unwrap();
        let dx = be.upload_rows(x.view()).unwrap();
        let mut dout = be.zeros_rows(rows, 5).unwrap();
        serving.logits_into(&dx, &mut dout).unwrap();
        let resident = be.download_rows(&dout).unwrap();
        assert!(
            host == resident,
            "{precision:?}: host path differs from the resident one"
        );
        // Twice through the same staging buffers: still the same.
        assert!(
            serving.logits(x.view()).unwrap() == host,
            "{precision:?}: second call differs"
        );
    }
}

#[cfg(feature = "cuda")]
mod serving {
    #[test]
    #[ignore = "needs a GPU: FLOWXAI_REQUIRE_CUDA=1 cargo test -p mlp-core --features cuda --test backends -- --include-ignored"]
    fn cuda_serving_precisions() {
        super::serving_precisions(super::cuda_device());
    }

    #[test]
    #[ignore = "needs a GPU: FLOWXAI_REQUIRE_CUDA=1 cargo test -p mlp-core --features cuda --test backends -- --include-ignored"]
    fn cuda_host_chunks_match_resident() {
        super::host_chunks_match_resident(super::cuda_device());
    }

    #[test]
    fn emulated_serving_precisions() {
        if let Some(be) = super::emulated_device() {
            super::serving_precisions(be);
        }
    }
}
