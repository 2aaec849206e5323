//! The CUDA C sources of the device backend (`crates/mlp-core/kernels/*.cu`), embedded with
//! `include_str!` and compiled at run time by NVRTC (one module per file, cached per backend).
//!
//! The sources are plain data and available without the `cuda` feature; compiling them needs
//! the feature and `libnvrtc` (no GPU).

/// One `.cu` file and the `extern "C"` kernels it must define.
#[derive(Debug, Clone, Copy)]
pub struct KernelModule {
    /// Module name (the file stem).
    pub name: &'static str,
    /// CUDA C source.
    pub source: &'static str,
    /// Entry points the host code launches.
    pub functions: &'static [&'static str],
    /// NVRTC `--gpu-architecture` when the source needs more than NVRTC's default virtual
    /// architecture (e.g. `compute_80` for TF32 tensor-core instructions). Such a module is
    /// loaded on first use, so older devices can still run every other module.
    pub arch: Option<&'static str>,
}

/// Tiled shared-memory SGEMM in the three operand forms of a dense layer.
pub const GEMM: KernelModule = KernelModule {
    name: "gemm",
    source: include_str!("../../kernels/gemm.cu"),
    functions: &["sgemm_nn", "sgemm_nt", "sgemm_tn"],
    arch: None,
};

/// Bias + activation, activation/dropout backward, Philox dropout, batch gather, AXPY.
pub const ELEMENTWISE: KernelModule = KernelModule {
    name: "elementwise",
    source: include_str!("../../kernels/elementwise.cu"),
    functions: &[
        "bias_act_forward",
        "act_backward",
        "mul_into",
        "axpy",
        "dropout_philox",
        "gather_batch",
    ],
    arch: None,
};

/// Column sums (bias gradients) and sums + dot products (BatchNorm backward).
pub const REDUCE: KernelModule = KernelModule {
    name: "reduce",
    source: include_str!("../../kernels/reduce.cu"),
    functions: &["column_sums", "column_sums_and_dots"],
    arch: None,
};

/// BatchNorm1d statistics, train/eval normalisation fused with the activation, backward.
pub const BATCHNORM: KernelModule = KernelModule {
    name: "batchnorm",
    source: include_str!("../../kernels/batchnorm.cu"),
    functions: &[
        "bn_stats",
        "bn_normalize_act",
        "bn_eval_act",
        "bn_backward_input",
    ],
    arch: None,
};

/// Weighted softmax cross-entropy and per-step metrics.
pub const LOSS: KernelModule = KernelModule {
    name: "loss",
    source: include_str!("../../kernels/loss.cu"),
    functions: &["weight_sum", "softmax_ce", "step_metrics"],
    arch: None,
};

/// AdamW (PyTorch) and scikit-learn Adam updates.
pub const ADAMW: KernelModule = KernelModule {
    name: "adamw",
    source: include_str!("../../kernels/adamw.cu"),
    functions: &["adamw_step", "adam_sklearn_step"],
    arch: None,
};

/// Whole-network inference forward on tensor cores (TF32 and 3×TF32), activations in shared
/// memory. Needs compute capability 8.0.
pub const FUSED: KernelModule = KernelModule {
    name: "fused",
    source: include_str!("../../kernels/fused.cu"),
    functions: &[
        "mlp_forward_tf32_m2n4",
        "mlp_forward_tf32_m4n2",
        "mlp_forward_tf32_m4n4",
        "mlp_forward_3xtf32_m2n4",
        "mlp_forward_3xtf32_m4n2",
        "mlp_forward_3xtf32_m4n4",
    ],
    arch: Some("compute_80"),
};

/// Every kernel module.
pub const MODULES: &[KernelModule] = &[GEMM, ELEMENTWISE, REDUCE, BATCHNORM, LOSS, ADAMW, FUSED];

/// Whether `libnvrtc` can be loaded (cudarc's dynamic loading: `libnvrtc.so`, `libnvrtc.so.12`,
/// … on the loader path, e.g. `LD_LIBRARY_PATH`).
#[cfg(feature = "cuda")]
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to dlopen the library by its candidate names.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// The PTX of one module, compiled by NVRTC once per process and cached (every backend and
/// device loads the same text).
#[cfg(feature = "cuda")]
pub fn cached_ptx(module: &KernelModule) -> Result<cudarc::nvrtc::Ptx, super::BackendError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<&'static str, String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(src) = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(module.name)
    {
        return Ok(cudarc::nvrtc::Ptx::from_src(src.clone()));
    }
    let text = compile_ptx(module)?.to_src();
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(module.name, text.clone());
    Ok(cudarc::nvrtc::Ptx::from_src(text))
}

/// Compiles one module to PTX with NVRTC (uncached; see [`cached_ptx`]). Returns
/// [`super::BackendError::NoNvrtc`] when the library is missing.
#[cfg(feature = "cuda")]
pub fn compile_ptx(module: &KernelModule) -> Result<cudarc::nvrtc::Ptx, super::BackendError> {
    if !nvrtc_present() {
        return Err(super::BackendError::NoNvrtc);
    }
    let opts = cudarc::nvrtc::CompileOptions {
        name: Some(format!("{}.cu", module.name)),
        arch: module.arch,
        ..Default::default()
    };
    // cudarc panics when the loaded libnvrtc lacks a symbol it binds (an NVRTC older than
    // 12.8): report that as a compile error instead.
    let compiled =
        std::panic::catch_unwind(|| cudarc::nvrtc::compile_ptx_with_opts(module.source, opts))
            .map_err(|_| super::BackendError::Compile {
                module: module.name,
                log: "libnvrtc lacks a CUDA 12.8 symbol (install NVRTC 12.8 or newer)".into(),
            })?;
    compiled.map_err(|e| {
        let log = match &e {
            cudarc::nvrtc::CompileError::CompileError { log, .. } => {
                log.to_string_lossy().into_owned()
            }
            other => format!("{other:?}"),
        };
        super::BackendError::Compile {
            module: module.name,
            log,
        }
    })
}
