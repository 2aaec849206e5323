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

/// The error a [`Model`] call returns; the explainer stops and reports it as
/// [`ShapError::Model`].
pub type ModelError = Box<dyn std::error::Error + Send + Sync>;

/// A model to explain: maps a batch of flows (rows) to per-class outputs (columns).
///
/// Implementations must be pure: the same rows give the same outputs, whatever the batch.
/// A failing call stops the explanation with [`ShapError::Model`]: no placeholder output
/// (zeros, NaN) ever reaches the SHAP values.
///
/// Every `Fn(ArrayView2<f32>) -> Result<Array2<f32>, E> + Sync` closure is a model; wrap a
/// function that cannot fail in [`InfallibleModel`].
pub trait Model: Sync {
    /// Outputs for each row of `x`, shape `[rows, outputs]`.
    fn predict_proba(&self, x: ArrayView2<'_, f32>)
        -> std::result::Result<Array2<f32>, ModelError>;
}

impl<F, E> Model for F
where
    F: Fn(ArrayView2<'_, f32>) -> std::result::Result<Array2<f32>, E> + Sync,
    E: Into<ModelError>,
{
    fn predict_proba(
        &self,
        x: ArrayView2<'_, f32>,
    ) -> std::result::Result<Array2<f32>, ModelError> {
        self(x).map_err(Into::into)
    }
}

/// A model that cannot fail: `InfallibleModel(|x| …)` for a closure returning the outputs.
///
/// ```
/// use ndarray::{Array2, ArrayView2};
/// use shap::{InfallibleModel, Model};
/// let model = InfallibleModel(|x: ArrayView2<'_, f32>| Array2::<f32>::zeros((x.nrows(), 2)));
/// assert_eq!(model.predict_proba(Array2::zeros((3, 4)).view()).unwrap().dim(), (3, 2));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct InfallibleModel<F>(pub F);

impl<F> Model for InfallibleModel<F>
where
    F: Fn(ArrayView2<'_, f32>) -> Array2<f32> + Sync,
{
    fn predict_proba(
        &self,
        x: ArrayView2<'_, f32>,
    ) -> std::result::Result<Array2<f32>, ModelError> {
        Ok((self.0)(x))
    }
}

/// The message of `e` and of every error it wraps, once each, joined by ": ".
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        // Some errors repeat their cause in their own message; print it once.
        if !parts.last().is_some_and(|p| p.ends_with(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
