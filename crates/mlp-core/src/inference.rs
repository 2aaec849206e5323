//! Serving form of a trained MLP: BatchNorm folded into the preceding Linear, dropout removed.
//!
//! This is the boundary other crates build on (`quant` quantizes these layers; `shap` and
//! `report` call `predict_proba`).
use serde::{Deserialize, Serialize};

/// Elementwise activation applied after a dense layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// No activation (the output layer: logits).
    Identity,
    /// max(0, x)
    Relu,
    /// x if x > 0 else exp(x) − 1 (alpha = 1, PyTorch's default).
    Elu,
}

/// One dense layer `y = act(x · Wᵀ + b)` with `W` stored PyTorch-style as `[out, in]` row-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseLayer {
    /// `[out_features, in_features]`, row-major (PyTorch `nn.Linear.weight` layout).
    pub weight: ndarray::Array2<f32>,
    /// `[out_features]`.
    pub bias: ndarray::Array1<f32>,
    /// Applied after the affine map.
    pub activation: Activation,
}

use crate::cpu;
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;
use std::cell::RefCell;

/// Rows per parallel block of the serving forward pass.
pub const INFER_BLOCK: usize = 256;

thread_local! {
    // Per-thread ping-pong activations; grown once, reused by every later call.
    static INFER_WS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// An inference-only MLP: folded dense layers (BatchNorm merged, dropout removed).
///
/// ```
/// use mlp_core::inference::{Activation, DenseLayer, ServingMlp};
/// use ndarray::{array, Array2};
/// let layer = DenseLayer { weight: array![[1.0f32, 0.0], [0.0, 1.0]], bias: array![0.0, 0.0],
///                          activation: Activation::Identity };
/// let mlp = ServingMlp::new(vec![layer]).unwrap();
/// let p = mlp.predict_proba(array![[2.0f32, 0.0]].view());
/// assert!(p[[0, 0]] > p[[0, 1]]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ServingMlp {
    layers: Vec<DenseLayer>,
    packed: Vec<cpu::PackedDense>,
    max_width: usize,
}

impl ServingMlp {
    /// Checks that consecutive layers fit (`out` of one = `in` of the next).
    pub fn new(layers: Vec<DenseLayer>) -> crate::Result<Self> {
        if layers.is_empty() {
            return Err(crate::MlpError::Shape(
                "a model needs at least one layer".into(),
            ));
        }
        for (i, l) in layers.iter().enumerate() {
            if l.bias.len() != l.weight.nrows() {
                return Err(crate::MlpError::Shape(format!(
                    "layer {i}: bias {} vs weight rows {}",
                    l.bias.len(),
                    l.weight.nrows()
                )));
            }
            if i > 0 && layers[i - 1].weight.nrows() != l.weight.ncols() {
                return Err(crate::MlpError::Shape(format!(
                    "layer {i} expects {} inputs, previous gives {}",
                    l.weight.ncols(),
                    layers[i - 1].weight.nrows()
                )));
            }
        }
        let layers: Vec<DenseLayer> = layers
            .into_iter()
            .map(|l| DenseLayer {
                weight: l.weight.as_standard_layout().to_owned(),
                bias: l.bias,
                activation: l.activation,
            })
            .collect();
        let packed: Vec<cpu::PackedDense> = layers
            .iter()
            .map(|l| {
                let (n, k) = l.weight.dim();
                let w = l.weight.as_slice().unwrap_or(&[]);
                cpu::PackedDense::new(w, n, k, &l.bias.to_vec(), l.activation)
            })
            .collect();
        let max_width = packed
            .iter()
            .flat_map(|p| [p.n_pad, p.k])
            .max()
            .unwrap_or(1);
        Ok(Self {
            layers,
            packed,
            max_width,
        })
    }

    /// The folded layers (PyTorch `[out, in]` weights).
    pub fn layers(&self) -> &[DenseLayer] {
        &self.layers
    }

    /// Number of input features.
    pub fn n_features(&self) -> usize {
        self.layers[0].weight.ncols()
    }

    /// Number of classes (output columns).
    pub fn n_classes(&self) -> usize {
        self.layers[self.layers.len() - 1].weight.nrows()
    }

    /// Logits (`rows × classes`). Panics if `x` has the wrong number of columns.
    pub fn logits(&self, x: ArrayView2<f32>) -> Array2<f32> {
        let mut out = Array2::zeros((x.nrows(), self.n_classes()));
        self.forward_into(x, out.view_mut(), false);
        out
    }

    /// Class probabilities (softmax of the logits), `rows × classes`.
    pub fn predict_proba(&self, x: ArrayView2<f32>) -> Array2<f32> {
        let mut out = Array2::zeros((x.nrows(), self.n_classes()));
        self.forward_into(x, out.view_mut(), true);
        out
    }

    /// Writes probabilities into a caller-owned buffer (no allocation after the first call on
    /// each thread).
    pub fn predict_proba_into(&self, x: ArrayView2<f32>, out: ArrayViewMut2<f32>) {
        self.forward_into(x, out, true);
    }

    /// Arg-max class index per row.
    pub fn predict(&self, x: ArrayView2<f32>) -> Array1<usize> {
        let logits = self.logits(x);
        logits
            .rows()
            .into_iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                        if v > bv {
                            (i, v)
                        } else {
                            (bi, bv)
                        }
                    })
                    .0
            })
            .collect()
    }

    fn forward_into(&self, x: ArrayView2<f32>, mut out: ArrayViewMut2<f32>, softmax: bool) {
        assert_eq!(
            x.ncols(),
            self.n_features(),
            "input has {} columns, model expects {}",
            x.ncols(),
            self.n_features()
        );
        assert_eq!(
            out.dim(),
            (x.nrows(), self.n_classes()),
            "output buffer shape"
        );
        let kc = self.n_classes();
        x.axis_chunks_iter(Axis(0), INFER_BLOCK)
            .into_par_iter()
            .zip(out.axis_chunks_iter_mut(Axis(0), INFER_BLOCK))
            .for_each(|(xb, mut ob)| {
                INFER_WS.with(|ws| {
                    let mut ws = ws.borrow_mut();
                    let need = INFER_BLOCK * self.max_width;
                    if ws.0.len() < need {
                        ws.0.resize(need, 0.0);
                        ws.1.resize(need, 0.0);
                    }
                    let (a, b) = &mut *ws;
                    let rows = xb.nrows();
                    let k0 = xb.ncols();
                    // `new` guarantees at least one layer. A contiguous block feeds the first
                    // layer in place; a strided view is copied row-major first (into `b`, which
                    // the first layer does not write).
                    let (first, rest) = (&self.packed[0], &self.packed[1..]);
                    if let Some(xs) = xb.as_slice() {
                        first.forward(xs, rows, k0, &mut a[..]);
                    } else {
                        for (dst, src) in b.chunks_exact_mut(k0).zip(xb.rows()) {
                            match src.as_slice() {
                                Some(row) => dst.copy_from_slice(row),
                                None => dst.iter_mut().zip(src).for_each(|(d, &s)| *d = s),
                            }
                        }
                        first.forward(&b[..], rows, k0, &mut a[..]);
                    }
                    let (mut cur, mut nxt) = (a, b);
                    let mut ld = first.n_pad;
                    for l in rest {
                        l.forward(&cur[..], rows, ld, &mut nxt[..]);
                        ld = l.n_pad;
                        std::mem::swap(&mut cur, &mut nxt);
                    }
                    if softmax {
                        cpu::softmax_rows_strided(&mut cur[..], rows, ld, kc);
                    }
                    let res = &cur[..];
                    for (mut orow, src) in ob.rows_mut().into_iter().zip(res.chunks(ld)) {
                        match orow.as_slice_mut() {
                            Some(o) => o.copy_from_slice(&src[..kc]),
                            None => orow.iter_mut().zip(&src[..kc]).for_each(|(d, &s)| *d = s),
                        }
                    }
                });
            });
    }
}
