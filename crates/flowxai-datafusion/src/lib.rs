//! flowxai models as [Apache DataFusion](https://datafusion.apache.org) functions, so flows can be
//! scored and explained where the data already lives (Parquet on many disks, a Ballista cluster).
//!
//! * [`ScoringModel`] — a model bundle loaded **once per process**, with the content hash every
//!   plan carries. A process holding another bundle refuses a plan's batches with a clear
//!   error instead of returning another model's answers.
//! * UDFs ([`udf`]): `predict_label`, `predict_proba` (one probability per class), `explain`
//!   (top-k SHAP features per flow, at a bounded cost) and the aggregate `mean_abs_shap`
//!   (global importance). Their first argument is the model hash literal, then the model's raw
//!   canonical features in bundle order; [`ScoreExprs`] builds those calls.
//! * [`register`] / [`register_in_state`] — add the UDFs to a `SessionContext` / `SessionState`
//!   (Ballista ships UDFs by name only: schedulers and executors register them too, see the
//!   `flowxai-ballista` crate).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> datafusion::error::Result<()> {
//! use std::sync::Arc;
//! use datafusion::prelude::*;
//! use flowxai::bundle::{BundleModel, ModelBundle};
//! use flowxai::rf_baseline::linfa::{traits::Fit, Dataset};
//! use flowxai_datafusion::{register, ScoreExprs, ScoringModel};
//!
//! // A tiny forest on two features (real use: ScoringModel::load(bundle_dir)).
//! let x = ndarray::Array2::from_shape_fn((40, 2), |(i, j)| (i * (j + 1)) as f32);
//! let y = ndarray::Array1::from_iter((0..40).map(|i| usize::from(i >= 20)));
//! let forest = flowxai::rf_baseline::RandomForest::params().n_trees(5).seed(1)
//!     .fit(&Dataset::new(x.clone(), y)).unwrap();
//! let bundle = ModelBundle {
//!     preprocessing: flowxai::preprocess::PipelineParams::new(vec![]).fit(x.view()).unwrap(),
//!     model: BundleModel::Forest(forest),
//!     feature_names: vec!["a".into(), "b".into()],
//!     classes: vec!["BENIGN".into(), "attack".into()],
//!     label_level: "binary".into(),
//! };
//! let model = Arc::new(ScoringModel::from_bundle(bundle, "sha256:demo".into(), "demo".into()).unwrap());
//!
//! let ctx = SessionContext::new();
//! register(&ctx, Some(Arc::clone(&model)));
//! let df = ctx.sql("SELECT * FROM (VALUES (1.0, 2.0), (30.0, 60.0)) AS t(a, b)").await?;
//! let exprs = ScoreExprs::new(&ctx, &model)?;
//! let scored = df.select(vec![exprs.predict_label().alias("predicted")])?.collect().await?;
//! assert_eq!(scored[0].num_rows(), 2);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod error;
pub mod model;
pub mod udf;

use std::sync::Arc;

use datafusion::error::Result as DfResult;
use datafusion::execution::session_state::SessionState;
use datafusion::execution::FunctionRegistry;
use datafusion::functions_nested::expr_fn::array_element;
use datafusion::logical_expr::{AggregateUDF, Expr, ScalarUDF};
use datafusion::prelude::{ident, lit, SessionContext};

pub use error::ScaleError;
pub use model::{content_hash, ExplainMethod, ScoringModel, DEFAULT_KERNEL_NSAMPLES};

/// Registers the flowxai UDFs on a context, bound to `model` (`None`: planning only — the
/// functions type-check plans but refuse to run, as on a Ballista scheduler).
pub fn register(ctx: &SessionContext, model: Option<Arc<ScoringModel>>) {
    for f in udf::scalar_udfs(model.clone()) {
        ctx.register_udf(f);
    }
    for f in udf::aggregate_udfs(model) {
        ctx.register_udaf(f);
    }
}

/// Registers the flowxai UDFs on a session state (what Ballista's session builders return).
pub fn register_in_state(
    state: &mut SessionState,
    model: Option<Arc<ScoringModel>>,
) -> DfResult<()> {
    for f in udf::scalar_udfs(model.clone()) {
        state.register_udf(Arc::new(f))?;
    }
    for f in udf::aggregate_udfs(model) {
        state.register_udaf(Arc::new(f))?;
    }
    Ok(())
}

/// Builds calls of the registered UDFs for one model: the hash literal first, then the model's
/// features as columns of the same names.
pub struct ScoreExprs {
    hash: String,
    features: Vec<Expr>,
    classes: Vec<String>,
    label: Arc<ScalarUDF>,
    proba: Arc<ScalarUDF>,
    explain: Arc<ScalarUDF>,
    mean_abs_shap: Arc<AggregateUDF>,
}

impl ScoreExprs {
    /// Looks the UDFs up in `ctx` (call [`register`] first).
    pub fn new(ctx: &SessionContext, model: &ScoringModel) -> DfResult<Self> {
        Ok(Self {
            hash: model.hash().to_string(),
            // `ident`, not `col`: CICFlowMeter-derived names never need parsing as `table.col`.
            features: model
                .feature_names()
                .iter()
                .map(|n| ident(n.as_str()))
                .collect(),
            classes: model.classes().to_vec(),
            label: ctx.udf(udf::PREDICT_LABEL)?,
            proba: ctx.udf(udf::PREDICT_PROBA)?,
            explain: ctx.udf(udf::EXPLAIN)?,
            mean_abs_shap: ctx.udaf(udf::MEAN_ABS_SHAP)?,
        })
    }

    fn args(&self, extra: Option<Expr>) -> Vec<Expr> {
        let mut args = vec![lit(self.hash.clone())];
        args.extend(extra);
        args.extend(self.features.iter().cloned());
        args
    }

    /// `predict_label(hash, features…)`.
    pub fn predict_label(&self) -> Expr {
        self.label.call(self.args(None))
    }

    /// `predict_proba(hash, features…)`: a list with one probability per class.
    pub fn predict_proba(&self) -> Expr {
        self.proba.call(self.args(None))
    }

    /// One `p_<class>` expression per class, each an element of `proba` (a `predict_proba`
    /// column already computed, so the model runs once).
    pub fn class_probabilities(&self, proba: Expr) -> Vec<Expr> {
        self.classes
            .iter()
            .enumerate()
            .map(|(i, c)| array_element(proba.clone(), lit(i as i64 + 1)).alias(format!("p_{c}")))
            .collect()
    }

    /// `explain(hash, k, features…)`.
    pub fn explain(&self, k: usize) -> Expr {
        self.explain.call(self.args(Some(lit(k as i64))))
    }

    /// `mean_abs_shap(hash, features…)` (an aggregate).
    pub fn mean_abs_shap(&self) -> Expr {
        self.mean_abs_shap.call(self.args(None))
    }

    /// The class names, in probability order.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }
}
