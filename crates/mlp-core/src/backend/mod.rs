//! Compute backends: the CPU reference and, behind the `cuda` feature, hand-written CUDA
//! kernels (NVRTC-compiled, launched through cudarc; no cuBLAS).
//!
//! The split follows candle's: one [`Backend`] trait with
//! - kernel-level operations on host slices (each backend runs its own kernel; the CUDA one
//!   uploads, launches, downloads), so tests can compare every kernel with the CPU reference;
//! - model-level operations: one training step, a whole-epoch [`EpochTrainer`] (on CUDA the
//!   training set, parameters and optimizer state stay on the device and only per-step
//!   metrics come back) and the inference forward.
//!
//! [`select`] picks a backend for a [`Device`] request and says which one it picked and why:
//!
//! ```
//! use mlp_core::backend::{self, Device};
//! let (be, message) = backend::select(Device::Auto).unwrap();
//! assert!(!message.is_empty());
//! # let _ = be.name();
//! ```
pub mod kernels;
pub mod philox;

#[cfg(feature = "cuda")]
pub mod cuda;

mod cpu_backend;
pub use cpu_backend::CpuBackend;

use crate::cpu::AdamStep;
use crate::engine::{MaskSource, StepStats};
use crate::inference::{Activation, DenseLayer};
use crate::network::{BnRunning, Network};
use crate::schedule::Schedule;
use crate::Result;
use ndarray::{Array2, ArrayView1, ArrayView2};
use thiserror::Error;

/// Which device a caller asks for (the `--device` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// CUDA when it works here, else the CPU.
    #[default]
    Auto,
    /// The CPU reference backend.
    Cpu,
    /// A CUDA device (an error when none is usable).
    Cuda,
}

impl std::str::FromStr for Device {
    type Err = BackendError;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda),
            other => Err(BackendError::UnknownDevice(other.to_string())),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Device::Auto => "auto",
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
        })
    }
}

/// Why a backend could not be set up or a device operation failed.
#[derive(Debug, Error)]
pub enum BackendError {
    /// `--device` got something other than auto/cpu/cuda.
    #[error("unknown device `{0}` (expected auto, cpu or cuda)")]
    UnknownDevice(String),
    /// The crate was built without the `cuda` feature.
    #[error("CUDA support is not compiled in: rebuild with `--features cuda`")]
    NotCompiled,
    /// `libcuda` (the NVIDIA driver) could not be loaded.
    #[error("the CUDA driver library (libcuda) was not found: is an NVIDIA driver installed?")]
    NoDriver,
    /// `libnvrtc` could not be loaded.
    #[error(
        "the NVRTC library (libnvrtc.so / libnvrtc.so.12) was not found: install the CUDA \
         toolkit or `pip install nvidia-cuda-nvrtc-cu12` and add its lib directory to \
         LD_LIBRARY_PATH"
    )]
    NoNvrtc,
    /// The driver loaded but no device/context could be opened.
    #[error("no usable CUDA device: {0}")]
    NoDevice(String),
    /// NVRTC rejected a kernel source.
    #[error("NVRTC failed to compile kernels/{module}.cu:\n{log}")]
    Compile {
        /// Module (file stem).
        module: &'static str,
        /// NVRTC's log.
        log: String,
    },
    /// A CUDA driver call failed.
    #[error("CUDA driver error during {what}: {message}")]
    Driver {
        /// What was being done.
        what: String,
        /// The driver's error.
        message: String,
    },
}

/// The three operand forms of a dense layer's GEMMs: `C[m,n] = op(A)·op(B)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GemmForm {
    /// `A[m,k]·B[k,n]` (input gradient `dz·W`).
    NN,
    /// `A[m,k]·B[n,k]ᵀ` (forward `x·Wᵀ`).
    NT,
    /// `A[k,m]ᵀ·B[k,n]` (weight gradient `dzᵀ·x`).
    TN,
}

/// BatchNorm train-mode forward results needed by the backward pass.
#[derive(Debug, Clone, PartialEq)]
pub struct BnCache {
    /// Normalised input `(z − mean)·inv_std`, `[rows, n]`.
    pub xhat: Vec<f32>,
    /// Batch mean per column.
    pub mean: Vec<f32>,
    /// `1/sqrt(biased var + eps)` per column.
    pub inv_std: Vec<f32>,
}

/// Optimizer and schedule settings of a training run (resolved from `MlpValidParams`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainHyper {
    /// Seed of the dropout masks.
    pub seed: u64,
    /// Learning-rate (and β1) schedule.
    pub schedule: Schedule,
    /// Peak learning rate.
    pub max_lr: f64,
    /// β1 when not cycled.
    pub beta1: f64,
    /// β2.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Decoupled weight decay (AdamW).
    pub weight_decay: f64,
    /// scikit-learn's L2 `alpha` (with `sklearn`).
    pub alpha: f64,
    /// scikit-learn's Adam form instead of PyTorch's AdamW.
    pub sklearn: bool,
    /// Total optimizer steps of the run (for the schedule).
    pub total_steps: usize,
}

/// Everything a backend needs to train: initial network, training data and settings.
#[derive(Debug, Clone)]
pub struct TrainerSetup<'a> {
    /// Initial trainable state.
    pub network: Network,
    /// All training rows (`order` passed to [`EpochTrainer::run_epoch`] indexes them).
    pub x: ArrayView2<'a, f32>,
    /// Labels of `x`.
    pub y: ArrayView1<'a, usize>,
    /// Loss weight per class.
    pub class_weights: &'a [f32],
    /// Rows per batch.
    pub batch: usize,
    /// Optimizer and schedule.
    pub hyper: TrainHyper,
}

/// Sums over one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EpochStats {
    /// `Σ_batches (batch weighted-mean loss × batch rows)`.
    pub loss_sum: f64,
    /// Rows trained on (batches skipped for BatchNorm excluded).
    pub rows: usize,
    /// Train-mode correct predictions.
    pub correct: usize,
    /// Learning rate of the epoch's last optimizer step.
    pub lr_last: f64,
    /// Global step counter after the epoch.
    pub next_step: usize,
}

/// A training run in progress on one backend.
pub trait EpochTrainer {
    /// One pass over `order` (row indices into the setup's `x`) in batches, optimizer steps
    /// numbered from `first_step`. A non-finite batch loss is [`crate::MlpError::Diverged`].
    fn run_epoch(&mut self, epoch: usize, order: &[usize], first_step: usize)
        -> Result<EpochStats>;
    /// The current trainable state (parameters and BatchNorm running statistics).
    fn network(&mut self) -> Result<Network>;
}

/// A compute backend. Kernel-level methods take and return host data; see the module docs.
pub trait Backend: Send + Sync {
    /// Which device this is.
    fn device(&self) -> Device;
    /// Human-readable name (e.g. the GPU model).
    fn name(&self) -> String;

    /// `op(A)·op(B)` (+ `bias[n]` per row), `[m, n]` row-major.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        &self,
        form: GemmForm,
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        b: &[f32],
        bias: Option<&[f32]>,
    ) -> Result<Vec<f32>>;
    /// `z ← act(z + bias)` in place over `[rows, n]`.
    fn bias_act(
        &self,
        z: &mut [f32],
        n: usize,
        bias: Option<&[f32]>,
        act: Activation,
    ) -> Result<()>;
    /// `grad ← grad·mask·act'(out)` (`act'` from the activation's output; mask optional).
    fn act_backward(
        &self,
        grad: &mut [f32],
        out: &[f32],
        mask: Option<&[f32]>,
        act: Activation,
    ) -> Result<()>;
    /// Inverted dropout with Philox masks ([`philox::dropout_mask`]): `(src·mask, mask)`.
    fn dropout(&self, src: &[f32], p: f32, seed: u64, stream: u64) -> Result<(Vec<f32>, Vec<f32>)>;
    /// Column sums of `[rows, n]`.
    fn column_sums(&self, data: &[f32], n: usize) -> Result<Vec<f32>>;
    /// Train-mode BatchNorm1d fused with the activation, in place; updates `running`
    /// (momentum 0.1, unbiased variance) and returns what the backward pass needs.
    #[allow(clippy::too_many_arguments)]
    fn bn_train_forward(
        &self,
        z: &mut [f32],
        n: usize,
        gamma: &[f32],
        beta: &[f32],
        running: &mut BnRunning,
        act: Activation,
    ) -> Result<BnCache>;
    /// Eval-mode BatchNorm1d (running statistics) fused with the activation, in place.
    fn bn_eval_forward(
        &self,
        z: &mut [f32],
        n: usize,
        gamma: &[f32],
        beta: &[f32],
        running: &BnRunning,
        act: Activation,
    ) -> Result<()>;
    /// BatchNorm backward: `dy` becomes `dz` in place; returns `(dgamma, dbeta)`.
    fn bn_backward(
        &self,
        dy: &mut [f32],
        xhat: &[f32],
        n: usize,
        gamma: &[f32],
        inv_std: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>)>;
    /// Weighted softmax cross-entropy: `logits[rows, k]` becomes the gradient of the weighted
    /// mean loss; returns the loss/weight sums and correct count.
    fn softmax_ce(
        &self,
        logits: &mut [f32],
        k: usize,
        labels: &[usize],
        row_weights: &[f32],
    ) -> Result<StepStats>;
    /// One Adam(W) update in place.
    fn adam(
        &self,
        params: &mut [f32],
        grads: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        h: AdamStep,
    ) -> Result<()>;

    /// One training step (train-mode forward, loss, backward; no optimizer update). Updates
    /// `net`'s BatchNorm running statistics; returns the stats and the parameter gradient.
    /// `MaskSource::Random` masks are the CPU trainer's ChaCha8 masks on the CPU and Philox
    /// masks ([`philox::dropout_mask`] with [`philox::dropout_stream`]`(step, block)`) on CUDA.
    fn train_step(
        &self,
        net: &mut Network,
        x: &[f32],
        labels: &[usize],
        row_weights: &[f32],
        masks: MaskSource<'_>,
    ) -> Result<(StepStats, Vec<f32>)>;
    /// Starts a training run.
    fn trainer<'a>(&'a self, setup: TrainerSetup<'a>) -> Result<Box<dyn EpochTrainer + 'a>>;
    /// Inference forward of folded layers: logits `[rows, classes]`.
    fn logits(&self, layers: &[DenseLayer], x: ArrayView2<f32>) -> Result<Array2<f32>>;
}

/// The row count of a training step, after checking that `x`, `labels` and `row_weights` agree
/// with each other and with the network's input width (shared by every backend's `train_step`).
pub(crate) fn check_step_shapes(
    net: &Network,
    x: &[f32],
    labels: &[usize],
    row_weights: &[f32],
) -> Result<usize> {
    let rows = labels.len();
    if rows == 0 || x.len() != rows * net.arch.n_features || row_weights.len() != rows {
        return Err(crate::MlpError::Shape(format!(
            "train_step: {} values, {rows} labels, {} weights for {} features",
            x.len(),
            row_weights.len(),
            net.arch.n_features
        )));
    }
    Ok(rows)
}

/// Integer code of an activation inside the kernels.
pub fn act_code(act: Activation) -> i32 {
    match act {
        Activation::Identity => 0,
        Activation::Relu => 1,
        Activation::Elu => 2,
    }
}

/// Opens the first CUDA device (ordinal 0) with its kernels compiled.
pub fn cuda() -> std::result::Result<Box<dyn Backend>, BackendError> {
    #[cfg(feature = "cuda")]
    {
        Ok(Box::new(cuda::CudaBackend::new(0)?))
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err(BackendError::NotCompiled)
    }
}

/// The backend for a device request, and a one-line message saying what was picked and why
/// (for `--device`). `Auto` falls back to the CPU with the reason; `Cuda` fails with a typed
/// error when no CUDA device works. Never panics.
pub fn select(device: Device) -> std::result::Result<(Box<dyn Backend>, String), BackendError> {
    match device {
        Device::Cpu => Ok((Box::new(CpuBackend), "device: cpu (requested)".into())),
        Device::Cuda => {
            let be = cuda()?;
            let msg = format!("device: cuda ({})", be.name());
            Ok((be, msg))
        }
        Device::Auto => match cuda() {
            Ok(be) => {
                let msg = format!("device: cuda ({}), picked by auto", be.name());
                Ok((be, msg))
            }
            Err(e) => Ok((
                Box::new(CpuBackend),
                format!("device: cpu (auto: CUDA unavailable: {e})"),
            )),
        },
    }
}
