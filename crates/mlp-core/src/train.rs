//! The training loop: shuffling, batching, optimizer and schedule, early stopping, history.
use crate::backend::{Backend, CpuBackend, TrainHyper, TrainerSetup};
use crate::error::{MlpError, Result};
use crate::inference::ServingMlp;
use crate::network::{Architecture, Network};
use crate::params::{MlpValidParams, Optimizer, StopMetric};
use ndarray::{ArrayView1, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// One epoch of the training history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 0-based epoch.
    pub epoch: usize,
    /// Weighted train-mode loss averaged over the epoch's batches (dropout active).
    pub train_loss: f64,
    /// Train-mode accuracy over the epoch's batches.
    pub train_accuracy: f64,
    /// Weighted eval-mode validation loss (None without validation data).
    pub val_loss: Option<f64>,
    /// Eval-mode validation accuracy.
    pub val_accuracy: Option<f64>,
    /// Learning rate of the epoch's last optimizer step.
    pub learning_rate: f64,
    /// Wall-clock seconds of the epoch (training + validation).
    pub seconds: f64,
}

/// A trained MLP: the trainable state (for saving in PyTorch format) and its folded serving form.
#[derive(Debug, Clone)]
pub struct FittedMlp {
    pub(crate) network: Network,
    pub(crate) serving: ServingMlp,
    pub(crate) history: Vec<EpochRecord>,
    pub(crate) best_epoch: Option<usize>,
    pub(crate) class_weights: Vec<f32>,
    pub(crate) classes: Vec<String>,
    pub(crate) feature_names: Vec<String>,
    pub(crate) preprocessing: Option<serde_json::Value>,
}

impl FittedMlp {
    /// Wraps a trained network (folds it for serving).
    pub fn from_network(network: Network) -> Result<Self> {
        let serving = ServingMlp::new(network.fold())?;
        let k = network.arch.n_classes;
        let f = network.arch.n_features;
        Ok(Self {
            network,
            serving,
            history: Vec::new(),
            best_epoch: None,
            class_weights: vec![1.0; k],
            classes: (0..k).map(|i| i.to_string()).collect(),
            feature_names: (0..f).map(|i| format!("f{i}")).collect(),
            preprocessing: None,
        })
    }
    /// Class probabilities (`rows × classes`; column j is `classes()[j]`).
    pub fn predict_proba(&self, x: ArrayView2<f32>) -> ndarray::Array2<f32> {
        self.serving.predict_proba(x)
    }
    /// Predicted class index per row.
    pub fn predict(&self, x: ArrayView2<f32>) -> ndarray::Array1<usize> {
        self.serving.predict(x)
    }
    /// The serving model (folded layers).
    pub fn serving(&self) -> &ServingMlp {
        &self.serving
    }
    /// The folded layers.
    pub fn layers(&self) -> &[crate::DenseLayer] {
        self.serving.layers()
    }
    /// Trainable state (PyTorch layout).
    pub fn network(&self) -> &Network {
        &self.network
    }
    /// Per-epoch history.
    pub fn history(&self) -> &[EpochRecord] {
        &self.history
    }
    /// Epoch whose weights were kept (early stopping), if any.
    pub fn best_epoch(&self) -> Option<usize> {
        self.best_epoch
    }
    /// Class weights used by the loss.
    pub fn class_weights(&self) -> &[f32] {
        &self.class_weights
    }
    /// Class names (column order of `predict_proba`).
    pub fn classes(&self) -> &[String] {
        &self.classes
    }
    /// Feature names (input column order).
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }
    /// Preprocessing blob stored with the model.
    pub fn preprocessing(&self) -> Option<&serde_json::Value> {
        self.preprocessing.as_ref()
    }
    /// Sets class names (must match the number of classes).
    pub fn with_classes(mut self, classes: Vec<String>) -> Result<Self> {
        if classes.len() != self.network.arch.n_classes {
            return Err(MlpError::Shape(format!(
                "{} class names for {} classes",
                classes.len(),
                self.network.arch.n_classes
            )));
        }
        self.classes = classes;
        Ok(self)
    }
    /// Sets feature names (must match the number of inputs).
    pub fn with_feature_names(mut self, names: Vec<String>) -> Result<Self> {
        if names.len() != self.network.arch.n_features {
            return Err(MlpError::Shape(format!(
                "{} feature names for {} features",
                names.len(),
                self.network.arch.n_features
            )));
        }
        self.feature_names = names;
        Ok(self)
    }
    /// Attaches a preprocessing description (stored in the JSON config).
    pub fn with_preprocessing(mut self, p: Option<serde_json::Value>) -> Self {
        self.preprocessing = p;
        self
    }
}

fn check_xy(
    x: &ArrayView2<f32>,
    y: &ArrayView1<usize>,
    n_classes: usize,
    what: &str,
) -> Result<()> {
    if x.nrows() != y.len() {
        return Err(MlpError::Shape(format!(
            "{what}: {} rows but {} labels",
            x.nrows(),
            y.len()
        )));
    }
    for (row, &label) in y.iter().enumerate() {
        if label >= n_classes {
            return Err(MlpError::Label {
                row,
                label,
                n_classes,
            });
        }
    }
    for (row, r) in x.rows().into_iter().enumerate() {
        if let Some(column) = r.iter().position(|v| !v.is_finite()) {
            return Err(MlpError::NonFinite { row, column });
        }
    }
    Ok(())
}

/// Stratified hold-out: per class, shuffle its rows and take `round(fraction·count)` (≥ 1 when
/// the class has ≥ 2 rows) for validation.
fn stratified_holdout(
    y: &ArrayView1<usize>,
    n_classes: usize,
    fraction: f64,
    rng: &mut ChaCha8Rng,
) -> (Vec<usize>, Vec<usize>) {
    let mut by_class = vec![Vec::new(); n_classes];
    for (i, &c) in y.iter().enumerate() {
        by_class[c].push(i);
    }
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for mut rows in by_class {
        rows.shuffle(rng);
        let mut take = (fraction * rows.len() as f64).round() as usize;
        if rows.len() >= 2 {
            take = take.clamp(1, rows.len() - 1);
        } else {
            take = 0;
        }
        val.extend_from_slice(&rows[..take]);
        train.extend_from_slice(&rows[take..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

/// Weighted mean cross-entropy and accuracy of eval-mode logits.
fn eval_loss(serving: &ServingMlp, x: ArrayView2<f32>, y: &[usize], w: &[f32]) -> (f64, f64) {
    let logits = serving.logits(x);
    let k = logits.ncols();
    let (mut num, mut den, mut correct) = (0.0f64, 0.0f64, 0usize);
    for (r, &label) in logits.rows().into_iter().zip(y) {
        let max = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = f64::from(max)
            + r.iter()
                .map(|&v| f64::from(v - max).exp())
                .sum::<f64>()
                .ln();
        let wy = f64::from(w[label]);
        num += wy * (lse - f64::from(r[label]));
        den += wy;
        let argmax = r
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                if v > bv {
                    (i, v)
                } else {
                    (bi, bv)
                }
            })
            .0;
        correct += usize::from(argmax == label);
    }
    debug_assert_eq!(k, w.len());
    (
        num / den.max(f64::MIN_POSITIVE),
        correct as f64 / y.len().max(1) as f64,
    )
}

impl MlpValidParams {
    /// Trains on `x_train`/`y_train` (labels `0..n_classes`). `validation` drives early stopping;
    /// without it a stratified `holdout_fraction` of the training rows is held out when early
    /// stopping is configured. `n_classes` defaults to `max(label)+1` when `None`.
    ///
    /// ```
    /// use mlp_core::MlpParams;
    /// use ndarray::{Array1, Array2};
    /// let x = Array2::from_shape_fn((64, 3), |(i, j)| ((i * 7 + j * 3) % 11) as f32 / 11.0);
    /// let y = Array1::from_shape_fn(64, |i| usize::from(x[[i, 0]] > 0.5));
    /// let p = MlpParams::optimized().batch_size(16).max_epochs(3).check().unwrap();
    /// let model = p.fit(x.view(), y.view(), None, None).unwrap();
    /// assert_eq!(model.predict_proba(x.view()).dim(), (64, 2));
    /// assert_eq!(model.history().len(), 3);
    /// ```
    pub fn fit(
        &self,
        x_train: ArrayView2<f32>,
        y_train: ArrayView1<usize>,
        validation: Option<(ArrayView2<f32>, ArrayView1<usize>)>,
        n_classes: Option<usize>,
    ) -> Result<FittedMlp> {
        self.fit_on(&CpuBackend, x_train, y_train, validation, n_classes)
    }

    /// [`MlpValidParams::fit`] with the training epochs run by `backend` (see
    /// [`crate::backend::select`]). Shuffling, validation and early stopping stay on the host;
    /// on CUDA only per-step metrics and, once per epoch, the parameters come back.
    /// The CPU backend gives exactly `fit`'s model; CUDA draws other dropout masks (Philox).
    pub fn fit_on(
        &self,
        backend: &dyn Backend,
        x_train: ArrayView2<f32>,
        y_train: ArrayView1<usize>,
        validation: Option<(ArrayView2<f32>, ArrayView1<usize>)>,
        n_classes: Option<usize>,
    ) -> Result<FittedMlp> {
        if x_train.nrows() < 2 {
            return Err(MlpError::Shape("need at least 2 training rows".into()));
        }
        let k = n_classes.unwrap_or_else(|| y_train.iter().copied().max().unwrap_or(0) + 1);
        check_xy(&x_train, &y_train, k, "train")?;
        if let Some((xv, yv)) = &validation {
            check_xy(xv, yv, k, "validation")?;
            if xv.ncols() != x_train.ncols() {
                return Err(MlpError::Shape(format!(
                    "validation has {} columns, train {}",
                    xv.ncols(),
                    x_train.ncols()
                )));
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let arch = Architecture {
            n_features: x_train.ncols(),
            hidden: self.hidden.clone(),
            n_classes: k,
        };
        let net = Network::new(arch, self.init, &mut rng)?;

        // Training rows and validation set.
        let (train_idx, val_owned) = match (&validation, self.early_stopping) {
            (None, Some(es)) => {
                let (t, v) = stratified_holdout(&y_train, k, es.holdout_fraction, &mut rng);
                let xv = x_train.select(Axis(0), &v);
                let yv: Vec<usize> = v.iter().map(|&i| y_train[i]).collect();
                (t, Some((xv, yv)))
            }
            _ => ((0..x_train.nrows()).collect::<Vec<_>>(), None),
        };
        let val: Option<(ArrayView2<f32>, Vec<usize>)> = match (&validation, &val_owned) {
            (Some((xv, yv)), _) => Some((xv.view(), yv.to_vec())),
            (None, Some((xv, yv))) => Some((xv.view(), yv.clone())),
            _ => None,
        };
        let n = train_idx.len();
        let mut counts = vec![0usize; k];
        train_idx.iter().for_each(|&i| counts[y_train[i]] += 1);
        let cw = self.class_weights.resolve(&counts)?;

        let batch = self.batch_size.min(n);
        let steps_per_epoch = n.div_ceil(batch);
        let total_steps = steps_per_epoch * self.max_epochs;
        let (beta1, beta2, eps, wd, alpha, sklearn) = match self.optimizer {
            Optimizer::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => (beta1, beta2, eps, weight_decay, 0.0, false),
            Optimizer::SklearnAdam {
                beta1,
                beta2,
                eps,
                alpha,
            } => (beta1, beta2, eps, 0.0, alpha, true),
        };
        let mut trainer = backend.trainer(TrainerSetup {
            network: net,
            x: x_train.reborrow(),
            y: y_train.reborrow(),
            class_weights: &cw,
            batch,
            hyper: TrainHyper {
                seed: self.seed,
                schedule: self.schedule,
                max_lr: self.lr,
                beta1,
                beta2,
                eps,
                weight_decay: wd,
                alpha,
                sklearn,
                total_steps,
            },
        })?;

        let mut order = train_idx.clone();
        let mut history = Vec::new();
        let mut step: usize = 0;
        let mut best: Option<(f64, usize, Network)> = None;
        let mut since_improved = 0usize;
        for epoch in 0..self.max_epochs {
            let t0 = Instant::now();
            order.shuffle(&mut rng);
            let stats = trainer.run_epoch(epoch, &order, step)?;
            step = stats.next_step;
            let (loss_sum, weight_sum, correct, seen, lr_last) = (
                stats.loss_sum,
                stats.rows as f64,
                stats.correct,
                stats.rows,
                stats.lr_last,
            );
            let net = trainer.network()?;
            let serving = ServingMlp::new(net.fold())?;
            let (val_loss, val_acc) = match &val {
                Some((xv, yv)) => {
                    let (l, a) = eval_loss(&serving, *xv, yv, &cw);
                    (Some(l), Some(a))
                }
                None => (None, None),
            };
            history.push(EpochRecord {
                epoch,
                train_loss: loss_sum / weight_sum.max(1.0),
                train_accuracy: correct as f64 / seen.max(1) as f64,
                val_loss,
                val_accuracy: val_acc,
                learning_rate: lr_last,
                seconds: t0.elapsed().as_secs_f64(),
            });
            if let (Some(es), Some(vl), Some(va)) = (self.early_stopping, val_loss, val_acc) {
                // Score where higher is better.
                let score = match es.metric {
                    StopMetric::ValLoss => -vl,
                    StopMetric::ValAccuracy => va,
                };
                let best_score = best.as_ref().map_or(f64::NEG_INFINITY, |b| b.0);
                if score > best_score + es.tol {
                    since_improved = 0;
                } else {
                    since_improved += 1;
                }
                if score > best_score {
                    best = Some((score, epoch, net.clone()));
                }
                if since_improved >= es.patience {
                    break;
                }
            }
        }
        let best_epoch = best.as_ref().map(|b| b.1);
        let net = match best {
            Some((_, _, b)) => b,
            None => trainer.network()?,
        };
        drop(trainer);
        let mut fitted = FittedMlp::from_network(net)?;
        fitted.history = history;
        fitted.best_epoch = best_epoch;
        fitted.class_weights = cw;
        Ok(fitted)
    }
}
