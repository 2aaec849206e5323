//! `shap`: KernelSHAP and exact path-dependent TreeSHAP, equal to the shap library.
//!
//! Models are explained through [`Model`], a batched `predict_proba`; every
//! `Fn(ArrayView2<f32>) -> Array2<f32> + Sync` closure is a model, so the fp32 MLP, the int8 MLP
//! and the forest are all explainable without this crate depending on them.
//!
//! - [`KernelExplainer`]: shap's `KernelExplainer` step by step (coalition design, Shapley
//!   kernel weights, LARS `num_features(k)`, `LassoLarsIC` AIC/BIC/auto or `Lasso(alpha)`
//!   selection (ported from scikit-learn 1.9.1), constrained weighted least squares,
//!   identity/logit links, weighted or k-means backgrounds). Equal to shap 0.51 to ~1e-15 when
//!   every coalition is enumerated (≤ 10 varying features with auto `nsamples`); otherwise the
//!   random coalitions come from ChaCha8 instead of numpy. Distinct synthetic rows are evaluated
//!   once, in batches; flows run in parallel.
//! - [`TreeExplainer`]: exact path-dependent TreeSHAP (shap's `tree_shap_recursive`), equal to
//!   `shap.TreeExplainer(feature_perturbation="tree_path_dependent")` to ~1e-14.
//! - [`GlobalImportance`]: mean |SHAP| per feature and class, and the ranking table.
//!
//! See `docs/ARCHITECTURE.md` for where this crate sits in flowxai.
// Index loops mirror shap's numpy/C++ code line by line, which keeps the port reviewable.
#![allow(clippy::needless_range_loop)]
pub mod error;
pub mod explanation;
pub mod importance;
pub mod kernel;
mod lars;
mod lasso_cd;
mod lasso_ic;
mod linalg;
pub mod tree;
pub mod tree_arrays;

pub use error::{Result, ShapError};
pub use explanation::Explanation;
pub use importance::{FeatureImportance, GlobalImportance, RankRow};
pub use kernel::{
    Background, KernelExplainer, KernelParams, KernelValidParams, L1Reg, Link, NSamples,
};
pub use tree::TreeExplainer;
pub use tree_arrays::{threshold_from_f64, TreeArrays, TreeEnsemble};

use ndarray::{Array2, ArrayView2};

/// A model to explain: maps a batch of flows (rows) to per-class outputs (columns).
///
/// Implementations must be pure: the same rows give the same outputs, whatever the batch.
pub trait Model: Sync {
    /// Outputs for each row of `x`, shape `[rows, outputs]`.
    fn predict_proba(&self, x: ArrayView2<'_, f32>) -> Array2<f32>;
}

impl<F> Model for F
where
    F: Fn(ArrayView2<'_, f32>) -> Array2<f32> + Sync,
{
    fn predict_proba(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        self(x)
    }
}
