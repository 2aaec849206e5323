//! `mlp-core`: the thesis MLP trained and served on CPU; a CUDA backend behind the `cuda` feature.
//!
//! - [`MlpParams`] → [`MlpValidParams`] → [`MlpValidParams::fit`] → [`FittedMlp`]
//!   (PyTorch semantics: `nn.Linear` init, BatchNorm1d, Dropout, weighted cross-entropy,
//!   AdamW, OneCycleLR per batch, early stopping restoring the best weights).
//! - [`ServingMlp`]: BatchNorm folded into the Linear layers, batched `predict_proba`.
//! - [`io`]: safetensors with PyTorch `state_dict` names plus a JSON config.
//! - [`cpu`]: every math kernel of the CPU reference.
//! - [`backend`]: the [`backend::Backend`] trait (CPU reference; hand-written CUDA kernels
//!   compiled by NVRTC behind the `cuda` feature) and [`backend::select`] for `--device`.
//!
//! Determinism: the same seed gives bit-identical weights for any rayon thread count, because
//! every batch is split into fixed [`cpu::ROW_CHUNK`]-row chunks whose partial sums are added in
//! chunk order.
//!
//! See `docs/ARCHITECTURE.md` for where this crate sits in flowxai.
pub mod backend;
pub mod cpu;
pub mod engine;
pub mod error;
pub mod inference;
pub mod io;
pub mod network;
pub mod params;
pub mod schedule;
pub mod train;

pub use backend::{Backend, BackendError, Device};
pub use error::{MlpError, Result};
pub use inference::{Activation, DenseLayer, ServingMlp};
pub use io::ModelConfig;
pub use network::{Architecture, HiddenSpec, Init, Network};
pub use params::{
    balanced_sqrt_weights, ClassWeights, EarlyStopping, MlpParams, MlpValidParams, Optimizer,
    StopMetric,
};
pub use schedule::Schedule;
pub use train::{EpochRecord, FittedMlp};
