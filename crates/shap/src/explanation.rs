//! The result of explaining flows, shaped like shap ≥ 0.45's `Explanation`.
use ndarray::{Array2, Array3};
use serde::{Deserialize, Serialize};

/// SHAP values for a batch of flows.
///
/// Invariant (additivity): for every flow `i` and class `c`,
/// `sum_j values[[i, j, c]] + base_values[c] == model_output[[i, c]]` up to rounding;
/// [`Explanation::additivity_error`] reports the deviation per flow.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Explanation {
    /// `[flows, features, classes]` SHAP values (in the link space: probability or logit).
    pub values: Array3<f64>,
    /// Expected model output per class over the background (`[classes]`), in the link space
    /// (KernelSHAP: `link(E[f(X)])`, like shap's `expected_value`).
    pub base_values: Vec<f64>,
    /// The explained rows, `[flows, features]`, in the model's input space.
    pub data: Array2<f32>,
    /// Model output per flow and class, `[flows, classes]` (the additivity target), in the same
    /// link space as `values` (e.g. log-odds for KernelSHAP with `Link::Logit`).
    pub model_output: Array2<f64>,
    /// One name per feature column.
    pub feature_names: Vec<String>,
    /// One name per output column.
    pub class_names: Vec<String>,
}

impl Explanation {
    /// Per flow: the largest |sum of values + base − model output| over classes.
    pub fn additivity_error(&self) -> Vec<f64> {
        let (n, m, k) = self.values.dim();
        (0..n)
            .map(|i| {
                (0..k)
                    .map(|c| {
                        let s: f64 = (0..m).map(|j| self.values[[i, j, c]]).sum();
                        (s + self.base_values[c] - self.model_output[[i, c]]).abs()
                    })
                    .fold(0.0, f64::max)
            })
            .collect()
    }
}
