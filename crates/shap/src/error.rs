//! Typed errors of the `shap` crate.
use thiserror::Error;

/// Everything that can go wrong when building or running an explainer.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ShapError {
    /// The background (reference) data has no rows.
    #[error("background data is empty")]
    EmptyBackground,
    /// A matrix has the wrong number of feature columns.
    #[error("{what} has {got} feature columns, expected {expected}")]
    FeatureCount {
        /// Which input is wrong.
        what: &'static str,
        /// Columns found.
        got: usize,
        /// Columns expected.
        expected: usize,
    },
    /// The model returned a matrix of an unexpected shape.
    #[error("model returned a {got_rows}x{got_cols} matrix for {rows} rows (expected {rows}x{expected_cols})")]
    ModelShape {
        /// Rows passed to the model.
        rows: usize,
        /// Rows returned.
        got_rows: usize,
        /// Columns returned.
        got_cols: usize,
        /// Columns expected (outputs seen on the background).
        expected_cols: usize,
    },
    /// Background weights are not usable (wrong length, negative, non-finite or all zero).
    #[error("background weights: {0}")]
    BadWeights(String),
    /// A parameter is out of range.
    #[error("invalid parameter: {0}")]
    InvalidParam(String),
    /// k-means summarisation of the background failed.
    #[error("k-means background summary failed: {0}")]
    KMeans(String),
    /// A tree of a [`crate::TreeEnsemble`] is malformed.
    #[error("tree {tree}: {msg}")]
    BadTree {
        /// Index of the tree in the ensemble.
        tree: usize,
        /// What is wrong.
        msg: String,
    },
    /// shap's `l1_reg` feature selection cannot run on this design.
    #[error("feature selection: {0}")]
    FeatureSelection(String),
    /// The explained model returned an error (its message and causes).
    #[error("the explained model failed: {0}")]
    Model(String),
    /// Names do not match the data.
    #[error("{what}: got {got} names for {expected} columns")]
    NameCount {
        /// Which names.
        what: &'static str,
        /// Names given.
        got: usize,
        /// Columns they must name.
        expected: usize,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, ShapError>;
