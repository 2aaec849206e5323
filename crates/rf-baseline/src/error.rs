//! Typed errors of this crate.
use thiserror::Error;

/// Everything that can go wrong when configuring, fitting, predicting or (de)serialising a forest.
#[derive(Debug, Error)]
pub enum RfError {
    /// A hyper-parameter is out of range (named, with the offending value).
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Parameter name as in the builder.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The training set has no rows or no columns.
    #[error("empty training data: {rows} rows × {cols} features")]
    EmptyData {
        /// Rows of the records.
        rows: usize,
        /// Columns of the records.
        cols: usize,
    },
    /// Targets do not line up with the records.
    #[error("targets have {targets} values but records have {rows} rows")]
    TargetShape {
        /// Number of target values.
        targets: usize,
        /// Number of record rows.
        rows: usize,
    },
    /// A matrix given to `predict*` has the wrong number of columns.
    #[error("expected {expected} features, got {got}")]
    FeatureCount {
        /// Features the model was trained on.
        expected: usize,
        /// Columns of the input.
        got: usize,
    },
    /// A name list has the wrong length.
    #[error("expected {expected} {what} names, got {got}")]
    NameCount {
        /// Which names (`class` or `feature`).
        what: &'static str,
        /// Expected count.
        expected: usize,
        /// Given count.
        got: usize,
    },
    /// A saved model is malformed (failed JSON parsing or internal consistency checks).
    #[error("invalid model file: {0}")]
    InvalidModel(String),
    /// JSON (de)serialisation failed.
    #[error("model JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Reading or writing a model file failed.
    #[error("model file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An error reported by linfa or linfa-trees.
    #[error("linfa: {0}")]
    Linfa(#[from] linfa::Error),
}
