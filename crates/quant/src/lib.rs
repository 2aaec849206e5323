//! `quant`: int8 inference for the flowxai MLP.
//!
//! - [`DynamicQuantParams`]: PyTorch `quantize_dynamic` semantics (qint8, fbgemm): int8 weights
//!   (per-tensor symmetric by default, per-channel as an option), each layer's input quantized at
//!   run time onto 7-bit unsigned (`reduce_range=True`), exact i32 accumulation, then dequantize,
//!   bias and activation in fp32. The input range is the whole batch's min/max by default (PyTorch) or
//!   each row's own ([`ActivationRange::PerRow`]: PyTorch's numbers for one flow at a time, so a
//!   flow's prediction no longer depends on its batch). **For serving use per-channel weights
//!   and per-row ranges**: on the 17-class split of `cargo xtask reproduce` they keep 99.2 % of
//!   fp32's predictions (accuracy +0.3 pt) where per-batch ranges keep 85.7 % (−1.5 pt), and
//!   this path runs fastest (each block of rows goes through all layers in cache, with the
//!   dequantization applied to the GEMM's registers on AVX-512 VNNI).
//! - [`StaticQuantParams`]: activation ranges calibrated with an [`Observer`] (min/max,
//!   percentile, histogram MSE, histogram entropy); activations stay 7-bit between layers, with an
//!   fp32-multiplier requantization (see [`QuantScheme::Static`]). The first layer's input gets
//!   one range per feature by default ([`InputGranularity::PerFeature`], scales folded into the
//!   weights): on the reproduce split that raises agreement with fp32 from 95.8 % to 99.1 %.
//! - [`kernels`]: the int8 GEMM on AVX-512 VNNI, AVX-VNNI, AVX2 or scalar code, picked at run time;
//!   every path gives the same integers.
//! - [`QuantMlp::save`] / [`QuantMlp::load`]: safetensors files (int8 weights, scales, zero points).
//!
//! See `docs/ARCHITECTURE.md` for where this crate sits in flowxai.
//!
//! ```
//! use mlp_core::inference::{Activation, DenseLayer};
//! use ndarray::{array, Array1};
//! use quant::{Observer, StaticQuantParams};
//!
//! let layers = vec![DenseLayer { weight: array![[1.0, -1.0], [0.5, 0.5]], bias: Array1::zeros(2), activation: Activation::Identity }];
//! let calib = array![[0.0f32, 1.0], [1.0, 0.0], [0.5, 0.5]];
//! let model = StaticQuantParams::new().observer(Observer::MinMax).calibrate(&layers, calib.view()).unwrap();
//! let y = model.logits(calib.view()).unwrap();
//! assert!((y[[1, 0]] - 1.0).abs() < 0.02);
//! assert_eq!(model.size_report().fp32_bytes, 4 * (4 + 2));
//! ```

mod io;
pub mod kernels;
mod model;
pub mod observer;
pub mod qparams;

pub use kernels::KernelKind;
pub use model::{
    activate, fp32_layer_inputs, fp32_logits, ActivationRange, DynamicQuantParams,
    DynamicQuantValidParams, InputGranularity, QuantMlp, QuantScheme, Scratch, SizeReport,
    StaticQuantParams, StaticQuantValidParams, WeightGranularity,
};
pub use observer::Observer;
pub use qparams::QParams;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    /// Shapes that do not fit together.
    #[error("shape error: {0}")]
    Shape(String),
    /// A parameter out of its range.
    #[error("invalid parameter: {0}")]
    InvalidParam(String),
    /// NaN or infinity in a layer's weights or bias.
    #[error("layer {layer} has a non-finite weight or bias")]
    NonFinite {
        /// Layer index.
        layer: usize,
    },
    /// The requested instruction path does not run on this CPU.
    #[error("kernel {0:?} is not available on this CPU")]
    KernelUnavailable(KernelKind),
    /// Reading or writing a model file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A model file that is not a valid quantized model.
    #[error("invalid quantized model: {0}")]
    Format(String),
}
