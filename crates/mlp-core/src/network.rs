//! Architecture description and the trainable network state (PyTorch `nn.Sequential` named `net`).
use crate::error::{MlpError, Result};
use crate::inference::{Activation, DenseLayer};
use ndarray::{Array1, Array2};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// BatchNorm1d epsilon (PyTorch default).
pub const BN_EPS: f64 = 1e-5;
/// BatchNorm1d momentum (PyTorch default).
pub const BN_MOMENTUM: f32 = 0.1;

/// One hidden block: `Linear → [BatchNorm1d] → [activation] → [Dropout]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HiddenSpec {
    /// Output width of the Linear.
    pub units: usize,
    /// BatchNorm1d after the Linear.
    pub batch_norm: bool,
    /// Activation after the (normalised) Linear.
    pub activation: Activation,
    /// Dropout probability after the activation (0 = no Dropout module).
    pub dropout: f32,
}

impl HiddenSpec {
    /// A block with the given width, BatchNorm flag, activation and dropout.
    pub fn new(units: usize, batch_norm: bool, activation: Activation, dropout: f32) -> Self {
        Self {
            units,
            batch_norm,
            activation,
            dropout,
        }
    }
}

/// Weight initialisation scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Init {
    /// PyTorch `nn.Linear` default: weight and bias ~ U(±1/√fan_in).
    PyTorch,
    /// scikit-learn MLP: weight and bias ~ U(±√(6/(fan_in+fan_out))).
    Glorot,
}

/// Full architecture: input width, hidden blocks, number of classes (the output Linear).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    /// Number of input features.
    pub n_features: usize,
    /// Hidden blocks in order.
    pub hidden: Vec<HiddenSpec>,
    /// Number of output classes (logits).
    pub n_classes: usize,
}

/// Positions of one block's modules inside `net` (`nn.Sequential`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleIndex {
    /// Index of the Linear.
    pub linear: usize,
    /// Index of the BatchNorm1d, if any.
    pub batch_norm: Option<usize>,
}

/// Kind of a trainable tensor (decides e.g. whether sklearn's L2 applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// Linear weight `[out, in]`.
    Weight,
    /// Linear bias.
    Bias,
    /// BatchNorm scale.
    BnWeight,
    /// BatchNorm shift.
    BnBias,
}

/// Where one trainable tensor lives in the flat parameter buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamEntry {
    /// PyTorch state-dict name, e.g. `net.0.weight`.
    pub name: String,
    /// Tensor shape.
    pub shape: Vec<usize>,
    /// Offset into the flat buffer.
    pub offset: usize,
    /// What it is.
    pub kind: ParamKind,
    /// Block index (hidden blocks, then the output layer).
    pub block: usize,
}

impl ParamEntry {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The element range in the flat buffer.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

impl Architecture {
    /// Checks widths and dropout probabilities.
    pub fn check(&self) -> Result<()> {
        if self.n_features == 0 {
            return Err(MlpError::InvalidParam {
                name: "n_features",
                reason: "must be > 0".into(),
            });
        }
        if self.n_classes < 2 {
            return Err(MlpError::InvalidParam {
                name: "n_classes",
                reason: "need at least 2 classes".into(),
            });
        }
        for (i, h) in self.hidden.iter().enumerate() {
            if h.units == 0 {
                return Err(MlpError::InvalidParam {
                    name: "hidden",
                    reason: format!("block {i} has 0 units"),
                });
            }
            if !(0.0..1.0).contains(&h.dropout) {
                return Err(MlpError::InvalidParam {
                    name: "hidden",
                    reason: format!("block {i} dropout {} not in [0, 1)", h.dropout),
                });
            }
        }
        Ok(())
    }

    /// Number of Linear layers (hidden blocks + output).
    pub fn n_blocks(&self) -> usize {
        self.hidden.len() + 1
    }

    /// `(in, out)` widths of block `b`.
    pub fn block_dims(&self, b: usize) -> (usize, usize) {
        let input = if b == 0 {
            self.n_features
        } else {
            self.hidden[b - 1].units
        };
        let out = if b < self.hidden.len() {
            self.hidden[b].units
        } else {
            self.n_classes
        };
        (input, out)
    }

    /// Widest layer (input included).
    pub fn max_width(&self) -> usize {
        self.hidden
            .iter()
            .map(|h| h.units)
            .chain([self.n_features, self.n_classes])
            .max()
            .unwrap_or(1)
    }

    /// Module indices inside `nn.Sequential`: Linear, BatchNorm1d, activation, Dropout per block
    /// (absent modules take no index), then the output Linear.
    pub fn module_indices(&self) -> Vec<ModuleIndex> {
        let mut next = 0;
        let mut out = Vec::with_capacity(self.n_blocks());
        for h in &self.hidden {
            let linear = next;
            next += 1;
            let batch_norm = h.batch_norm.then(|| {
                next += 1;
                next - 1
            });
            if h.activation != Activation::Identity {
                next += 1;
            }
            if h.dropout > 0.0 {
                next += 1;
            }
            out.push(ModuleIndex { linear, batch_norm });
        }
        out.push(ModuleIndex {
            linear: next,
            batch_norm: None,
        });
        out
    }

    /// Layout of all trainable tensors, in PyTorch's `parameters()` order.
    pub fn param_layout(&self) -> Vec<ParamEntry> {
        let mut entries = Vec::new();
        let mut offset = 0;
        let mut push = |name: String, shape: Vec<usize>, kind, block| {
            // Saturating: a corrupted config's sizes must not overflow before a loader can
            // reject them (a real layout is far below usize::MAX).
            let len = shape.iter().fold(1usize, |a, &d| a.saturating_mul(d));
            entries.push(ParamEntry {
                name,
                shape,
                offset,
                kind,
                block,
            });
            offset = offset.saturating_add(len);
        };
        for (b, mi) in self.module_indices().into_iter().enumerate() {
            let (i, o) = self.block_dims(b);
            push(
                format!("net.{}.weight", mi.linear),
                vec![o, i],
                ParamKind::Weight,
                b,
            );
            push(
                format!("net.{}.bias", mi.linear),
                vec![o],
                ParamKind::Bias,
                b,
            );
            if let Some(bn) = mi.batch_norm {
                push(format!("net.{bn}.weight"), vec![o], ParamKind::BnWeight, b);
                push(format!("net.{bn}.bias"), vec![o], ParamKind::BnBias, b);
            }
        }
        entries
    }

    /// Total number of trainable scalars.
    pub fn n_params(&self) -> usize {
        self.param_layout().iter().map(ParamEntry::len).sum()
    }
}

/// BatchNorm running statistics of one block.
#[derive(Debug, Clone, PartialEq)]
pub struct BnRunning {
    /// Running mean.
    pub mean: Vec<f32>,
    /// Running (unbiased) variance.
    pub var: Vec<f32>,
    /// PyTorch's `num_batches_tracked`.
    pub num_batches_tracked: i64,
}

/// Trainable network state: flat parameters in PyTorch order plus BatchNorm running stats.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// The architecture.
    pub arch: Architecture,
    /// All trainable scalars, laid out as `arch.param_layout()`.
    pub params: Vec<f32>,
    /// Running stats per block (`None` where the block has no BatchNorm, and for the output).
    pub running: Vec<Option<BnRunning>>,
    pub(crate) layout: Vec<ParamEntry>,
}

/// Offsets of one block's tensors in the flat buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockOffsets {
    pub weight: usize,
    pub bias: usize,
    pub gamma: Option<usize>,
    pub beta: Option<usize>,
}

impl Network {
    /// Fresh network with the given initialisation, drawing from `rng` in PyTorch's order
    /// (per Linear: weight then bias).
    pub fn new(arch: Architecture, init: Init, rng: &mut ChaCha8Rng) -> Result<Self> {
        arch.check()?;
        let layout = arch.param_layout();
        let n: usize = layout.iter().map(ParamEntry::len).sum();
        let mut params = vec![0.0f32; n];
        for e in &layout {
            let (fan_in, fan_out) = arch.block_dims(e.block);
            let bound = match init {
                Init::PyTorch => 1.0 / (fan_in as f64).sqrt(),
                Init::Glorot => (6.0 / (fan_in + fan_out) as f64).sqrt(),
            };
            let slot = &mut params[e.range()];
            match e.kind {
                ParamKind::Weight | ParamKind::Bias => {
                    for v in slot.iter_mut() {
                        *v = rng.gen_range(-bound..bound) as f32;
                    }
                }
                ParamKind::BnWeight => slot.fill(1.0),
                ParamKind::BnBias => slot.fill(0.0),
            }
        }
        let running = (0..arch.n_blocks())
            .map(|b| {
                let bn = b < arch.hidden.len() && arch.hidden[b].batch_norm;
                bn.then(|| {
                    let (_, o) = arch.block_dims(b);
                    BnRunning {
                        mean: vec![0.0; o],
                        var: vec![1.0; o],
                        num_batches_tracked: 0,
                    }
                })
            })
            .collect();
        Ok(Self {
            arch,
            params,
            running,
            layout,
        })
    }

    /// Parameter layout (names, shapes, offsets).
    pub fn layout(&self) -> &[ParamEntry] {
        &self.layout
    }

    pub(crate) fn block_offsets(&self) -> Vec<BlockOffsets> {
        let mut out = Vec::with_capacity(self.arch.n_blocks());
        for b in 0..self.arch.n_blocks() {
            let find = |k| {
                self.layout
                    .iter()
                    .find(|e| e.block == b && e.kind == k)
                    .map(|e| e.offset)
            };
            out.push(BlockOffsets {
                weight: find(ParamKind::Weight).unwrap_or(0),
                bias: find(ParamKind::Bias).unwrap_or(0),
                gamma: find(ParamKind::BnWeight),
                beta: find(ParamKind::BnBias),
            });
        }
        out
    }

    /// All tensors of PyTorch's `state_dict()`: name → (shape, values). `num_batches_tracked` is
    /// returned separately by [`Network::num_batches_tracked`] because it is int64.
    pub fn state_dict_f32(&self) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
        let mut out = BTreeMap::new();
        for e in &self.layout {
            out.insert(
                e.name.clone(),
                (e.shape.clone(), self.params[e.range()].to_vec()),
            );
        }
        for (mi, r) in self.arch.module_indices().iter().zip(&self.running) {
            if let (Some(bn), Some(r)) = (mi.batch_norm, r) {
                out.insert(
                    format!("net.{bn}.running_mean"),
                    (vec![r.mean.len()], r.mean.clone()),
                );
                out.insert(
                    format!("net.{bn}.running_var"),
                    (vec![r.var.len()], r.var.clone()),
                );
            }
        }
        out
    }

    /// `net.{i}.num_batches_tracked` entries.
    pub fn num_batches_tracked(&self) -> Vec<(String, i64)> {
        self.arch
            .module_indices()
            .iter()
            .zip(&self.running)
            .filter_map(|(mi, r)| {
                Some((
                    format!("net.{}.num_batches_tracked", mi.batch_norm?),
                    r.as_ref()?.num_batches_tracked,
                ))
            })
            .collect()
    }

    /// Builds a network from state-dict tensors (`name → (shape, values)`), checking every
    /// name and shape. `num_batches_tracked` defaults to 0 where missing.
    pub fn from_state_dict(
        arch: Architecture,
        tensors: &BTreeMap<String, (Vec<usize>, Vec<f32>)>,
        batches_tracked: &BTreeMap<String, i64>,
    ) -> Result<Self> {
        arch.check()?;
        // Every tensor the architecture names must be in the file with its shape *before* the
        // network is allocated: a config claiming huge layers then fails on a missing or
        // mis-shaped tensor instead of allocating what it claims.
        let want = |name: &str, shape: &[usize]| -> Result<()> {
            match tensors.get(name) {
                Some((s, v)) if s == shape && Some(v.len()) == checked_product(shape) => Ok(()),
                Some((s, _)) => Err(MlpError::Format(format!(
                    "tensor `{name}` has shape {s:?}, expected {shape:?}"
                ))),
                None => Err(MlpError::Format(format!("missing tensor `{name}`"))),
            }
        };
        for e in arch.param_layout() {
            want(&e.name, &e.shape)?;
        }
        for (b, mi) in arch.module_indices().iter().enumerate() {
            if let Some(bn) = mi.batch_norm {
                let n = arch.block_dims(b).1;
                want(&format!("net.{bn}.running_mean"), &[n])?;
                want(&format!("net.{bn}.running_var"), &[n])?;
            }
        }
        let mut rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
        let mut net = Self::new(arch, Init::PyTorch, &mut rng)?;
        let get = |name: &str, shape: &[usize]| -> Result<&Vec<f32>> {
            let (s, v) = tensors
                .get(name)
                .ok_or_else(|| MlpError::Format(format!("missing tensor `{name}`")))?;
            if s != shape || v.len() != shape.iter().product::<usize>() {
                return Err(MlpError::Format(format!(
                    "tensor `{name}` has shape {s:?}, expected {shape:?}"
                )));
            }
            Ok(v)
        };
        for e in net.layout.clone() {
            let v = get(&e.name, &e.shape)?;
            net.params[e.range()].copy_from_slice(v);
        }
        let indices = net.arch.module_indices();
        for (mi, r) in indices.iter().zip(net.running.iter_mut()) {
            if let (Some(bn), Some(r)) = (mi.batch_norm, r.as_mut()) {
                let n = r.mean.len();
                r.mean
                    .copy_from_slice(get(&format!("net.{bn}.running_mean"), &[n])?);
                r.var
                    .copy_from_slice(get(&format!("net.{bn}.running_var"), &[n])?);
                r.num_batches_tracked = batches_tracked
                    .get(&format!("net.{bn}.num_batches_tracked"))
                    .copied()
                    .unwrap_or(0);
            }
        }
        Ok(net)
    }

    /// Serving layers: each BatchNorm (eval mode, running stats) folded into its Linear,
    /// dropout dropped. Folding is done in f64: `W' = W·γ/√(var+ε)`, `b' = (b − μ)·γ/√(var+ε) + β`.
    pub fn fold(&self) -> Vec<DenseLayer> {
        let offs = self.block_offsets();
        (0..self.arch.n_blocks())
            .map(|b| {
                let (i, o) = self.arch.block_dims(b);
                let o_ = offs[b];
                let mut weight = Array2::from_shape_vec(
                    (o, i),
                    self.params[o_.weight..o_.weight + o * i].to_vec(),
                )
                .expect("layout shape");
                let mut bias = Array1::from(self.params[o_.bias..o_.bias + o].to_vec());
                if let (Some(g), Some(be), Some(r)) = (o_.gamma, o_.beta, &self.running[b]) {
                    for j in 0..o {
                        let scale =
                            f64::from(self.params[g + j]) / (f64::from(r.var[j]) + BN_EPS).sqrt();
                        weight
                            .row_mut(j)
                            .mapv_inplace(|w| (f64::from(w) * scale) as f32);
                        bias[j] = ((f64::from(bias[j]) - f64::from(r.mean[j])) * scale
                            + f64::from(self.params[be + j]))
                            as f32;
                    }
                }
                let activation = if b < self.arch.hidden.len() {
                    self.arch.hidden[b].activation
                } else {
                    Activation::Identity
                };
                DenseLayer {
                    weight,
                    bias,
                    activation,
                }
            })
            .collect()
    }
}

/// The element count of `shape`, `None` on overflow.
fn checked_product(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}
