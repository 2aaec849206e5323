//! Hyper-parameters: the `MlpParams` builder, checked into `MlpValidParams` (linfa's pattern).
use crate::error::{MlpError, Result};
use crate::inference::Activation;
use crate::network::{HiddenSpec, Init};
use crate::schedule::Schedule;
use serde::{Deserialize, Serialize};

/// Optimizer and its regularisation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Optimizer {
    /// PyTorch `AdamW` (decoupled weight decay on every parameter, BatchNorm included).
    AdamW {
        /// β1 (when the schedule does not cycle it).
        beta1: f64,
        /// β2.
        beta2: f64,
        /// ε.
        eps: f64,
        /// Decoupled weight decay.
        weight_decay: f64,
    },
    /// scikit-learn's Adam with L2 penalty `alpha/2·‖W‖²/batch` on Linear weights only.
    SklearnAdam {
        /// β1.
        beta1: f64,
        /// β2.
        beta2: f64,
        /// ε.
        eps: f64,
        /// L2 strength (`alpha`).
        alpha: f64,
    },
}

/// Class weights of the cross-entropy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClassWeights {
    /// All 1 (plain mean).
    Uniform,
    /// `sqrt(n/(k·count_c))`, normalised to mean 1 over the classes present.
    BalancedSqrt,
    /// Given weights, one per class.
    Explicit(Vec<f32>),
}

impl ClassWeights {
    /// Resolves to one weight per class from training-label counts.
    pub fn resolve(&self, counts: &[usize]) -> Result<Vec<f32>> {
        let k = counts.len();
        match self {
            ClassWeights::Uniform => Ok(vec![1.0; k]),
            ClassWeights::Explicit(w) => {
                if w.len() != k {
                    return Err(MlpError::InvalidParam {
                        name: "class_weights",
                        reason: format!("{} weights for {k} classes", w.len()),
                    });
                }
                Ok(w.clone())
            }
            ClassWeights::BalancedSqrt => Ok(balanced_sqrt_weights(counts)),
        }
    }
}

/// `balanced_sqrt` class weights: `sqrt(n/(k·count))`, normalised to mean 1 over the classes
/// that occur (absent classes get weight 0).
pub fn balanced_sqrt_weights(counts: &[usize]) -> Vec<f32> {
    let n: usize = counts.iter().sum();
    let present = counts.iter().filter(|&&c| c > 0).count().max(1);
    let raw: Vec<f64> = counts
        .iter()
        .map(|&c| {
            if c == 0 {
                0.0
            } else {
                (n as f64 / (present as f64 * c as f64)).sqrt()
            }
        })
        .collect();
    let mean = raw.iter().sum::<f64>() / present as f64;
    raw.iter().map(|&w| (w / mean) as f32).collect()
}

/// Early-stopping criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopMetric {
    /// Lower validation loss is better (PyTorch-style loop).
    ValLoss,
    /// Higher validation accuracy is better (scikit-learn's `early_stopping=True`).
    ValAccuracy,
}

/// Early stopping: stop after `patience` epochs without an improvement larger than `tol`, then
/// restore the best epoch's weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// Minimum improvement that resets the counter.
    pub tol: f64,
    /// What is monitored.
    pub metric: StopMetric,
    /// Fraction of the training set held out (stratified) when `fit` gets no validation set.
    pub holdout_fraction: f64,
}

/// Builder for the MLP's hyper-parameters. Check it with [`MlpParams::check`].
///
/// ```
/// use mlp_core::MlpParams;
/// let p = MlpParams::optimized().max_epochs(5).seed(7).check().unwrap();
/// assert_eq!(p.batch_size(), 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpParams(MlpValidParams);

/// Checked hyper-parameters; `fit` lives here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpValidParams {
    pub(crate) hidden: Vec<HiddenSpec>,
    pub(crate) init: Init,
    pub(crate) optimizer: Optimizer,
    pub(crate) lr: f64,
    pub(crate) schedule: Schedule,
    pub(crate) batch_size: usize,
    pub(crate) max_epochs: usize,
    pub(crate) class_weights: ClassWeights,
    pub(crate) early_stopping: Option<EarlyStopping>,
    pub(crate) seed: u64,
}

impl MlpParams {
    /// The thesis' optimized MLP: in→128→256→128→64→classes, BatchNorm on the first three,
    /// dropout 0.3/0.4/0.2, ReLU/ReLU/ELU/ReLU, AdamW (wd 0.01), OneCycleLR (max_lr 0.004),
    /// batch 1024, ≤ 80 epochs, `balanced_sqrt` weights, early stopping on validation loss
    /// (patience 15).
    pub fn optimized() -> Self {
        Self(MlpValidParams {
            hidden: vec![
                HiddenSpec::new(128, true, Activation::Relu, 0.3),
                HiddenSpec::new(256, true, Activation::Relu, 0.4),
                HiddenSpec::new(128, true, Activation::Elu, 0.2),
                HiddenSpec::new(64, false, Activation::Relu, 0.0),
            ],
            init: Init::PyTorch,
            optimizer: Optimizer::AdamW {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.01,
            },
            lr: 0.004,
            schedule: Schedule::one_cycle_default(),
            batch_size: 1024,
            max_epochs: 80,
            class_weights: ClassWeights::BalancedSqrt,
            early_stopping: Some(EarlyStopping {
                patience: 15,
                tol: 0.0,
                metric: StopMetric::ValLoss,
                holdout_fraction: 0.1,
            }),
            seed: 42,
        })
    }

    /// scikit-learn `MLPClassifier` defaults with early stopping: one hidden layer of 100 ReLU,
    /// Glorot init, Adam lr 1e-3, L2 alpha 1e-4, batch min(200, n), ≤ 200 epochs, 10 %
    /// stratified validation, stop when validation accuracy has not improved by 1e-4 for more
    /// than 10 epochs (`patience` 11 = sklearn's `no_improvement_count > n_iter_no_change`).
    pub fn sklearn_baseline() -> Self {
        Self(MlpValidParams {
            hidden: vec![HiddenSpec::new(100, false, Activation::Relu, 0.0)],
            init: Init::Glorot,
            optimizer: Optimizer::SklearnAdam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                alpha: 1e-4,
            },
            lr: 1e-3,
            schedule: Schedule::Constant,
            batch_size: 200,
            max_epochs: 200,
            class_weights: ClassWeights::Uniform,
            early_stopping: Some(EarlyStopping {
                patience: 11,
                tol: 1e-4,
                metric: StopMetric::ValAccuracy,
                holdout_fraction: 0.1,
            }),
            seed: 0,
        })
    }

    /// Hidden blocks (any number, any widths).
    pub fn hidden(mut self, hidden: Vec<HiddenSpec>) -> Self {
        self.0.hidden = hidden;
        self
    }
    /// Weight initialisation.
    pub fn init(mut self, init: Init) -> Self {
        self.0.init = init;
        self
    }
    /// Optimizer.
    pub fn optimizer(mut self, o: Optimizer) -> Self {
        self.0.optimizer = o;
        self
    }
    /// Learning rate (peak lr for OneCycle).
    pub fn learning_rate(mut self, lr: f64) -> Self {
        self.0.lr = lr;
        self
    }
    /// Schedule.
    pub fn schedule(mut self, s: Schedule) -> Self {
        self.0.schedule = s;
        self
    }
    /// Batch size (capped at the number of training rows, as sklearn does).
    pub fn batch_size(mut self, b: usize) -> Self {
        self.0.batch_size = b;
        self
    }
    /// Maximum epochs.
    pub fn max_epochs(mut self, e: usize) -> Self {
        self.0.max_epochs = e;
        self
    }
    /// Class weights.
    pub fn class_weights(mut self, w: ClassWeights) -> Self {
        self.0.class_weights = w;
        self
    }
    /// Early stopping (None = train all epochs, keep the last weights).
    pub fn early_stopping(mut self, e: Option<EarlyStopping>) -> Self {
        self.0.early_stopping = e;
        self
    }
    /// Seed of initialisation, shuffling, dropout and hold-out split.
    pub fn seed(mut self, s: u64) -> Self {
        self.0.seed = s;
        self
    }

    /// Validates every field.
    pub fn check(self) -> Result<MlpValidParams> {
        let p = self.0;
        let bad = |name, reason: &str| {
            Err(MlpError::InvalidParam {
                name,
                reason: reason.to_string(),
            })
        };
        if !(p.lr > 0.0 && p.lr.is_finite()) {
            return bad("learning_rate", "must be finite and > 0");
        }
        if p.batch_size == 0 {
            return bad("batch_size", "must be > 0");
        }
        if p.max_epochs == 0 {
            return bad("max_epochs", "must be > 0");
        }
        for (i, h) in p.hidden.iter().enumerate() {
            if h.units == 0 || !(0.0..1.0).contains(&h.dropout) {
                return Err(MlpError::InvalidParam {
                    name: "hidden",
                    reason: format!("block {i}: units must be > 0 and dropout in [0, 1)"),
                });
            }
        }
        let (b1, b2, eps) = match p.optimizer {
            Optimizer::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                if weight_decay < 0.0 {
                    return bad("optimizer", "weight_decay must be ≥ 0");
                }
                (beta1, beta2, eps)
            }
            Optimizer::SklearnAdam {
                beta1,
                beta2,
                eps,
                alpha,
            } => {
                if alpha < 0.0 {
                    return bad("optimizer", "alpha must be ≥ 0");
                }
                (beta1, beta2, eps)
            }
        };
        if !((0.0..1.0).contains(&b1) && (0.0..1.0).contains(&b2) && eps > 0.0) {
            return bad("optimizer", "betas must be in [0, 1) and eps > 0");
        }
        if let Schedule::OneCycle {
            pct_start,
            div_factor,
            final_div_factor,
            ..
        } = p.schedule
        {
            if !(pct_start > 0.0 && pct_start < 1.0 && div_factor > 0.0 && final_div_factor > 0.0) {
                return bad(
                    "schedule",
                    "OneCycle needs 0 < pct_start < 1 and positive div factors",
                );
            }
        }
        if let Some(es) = p.early_stopping {
            if es.patience == 0
                || !(es.holdout_fraction > 0.0 && es.holdout_fraction < 1.0)
                || es.tol < 0.0
            {
                return bad(
                    "early_stopping",
                    "patience > 0, 0 < holdout_fraction < 1, tol ≥ 0",
                );
            }
        }
        Ok(p)
    }
}

impl MlpValidParams {
    /// Hidden blocks.
    pub fn hidden(&self) -> &[HiddenSpec] {
        &self.hidden
    }
    /// Batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }
    /// Maximum epochs.
    pub fn max_epochs(&self) -> usize {
        self.max_epochs
    }
    /// Seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Learning rate (peak for OneCycle).
    pub fn learning_rate(&self) -> f64 {
        self.lr
    }
    /// Optimizer.
    pub fn optimizer(&self) -> Optimizer {
        self.optimizer
    }
    /// Schedule.
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }
    /// Initialisation.
    pub fn init(&self) -> Init {
        self.init
    }
    /// Early stopping.
    pub fn early_stopping(&self) -> Option<EarlyStopping> {
        self.early_stopping
    }
    /// Class weights.
    pub fn class_weights(&self) -> &ClassWeights {
        &self.class_weights
    }
}
