//! The crate's typed error.

/// Everything that can go wrong while fitting, applying or loading a preprocessing step.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    /// A parameter is out of its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// Fit was called on a matrix without rows or without columns.
    #[error("cannot fit on an empty matrix ({rows} rows x {cols} columns)")]
    EmptyInput {
        /// Number of rows given.
        rows: usize,
        /// Number of columns given.
        cols: usize,
    },
    /// A column holds only NaN in the training rows, so no statistic can be computed.
    #[error("column {column} has no non-NaN value in the training rows")]
    AllNanColumn {
        /// Zero-based column index.
        column: usize,
    },
    /// A fitted statistic (bound, centre or scale) is ±inf or NaN, because the training column
    /// holds infinite values at that quantile.
    #[error(
        "column {column}: fitted {what} is not finite; drop or replace non-finite values before \
         fitting (e.g. flowdata's InvalidPolicy::Drop)"
    )]
    NonFiniteStatistic {
        /// Zero-based column index.
        column: usize,
        /// Which statistic.
        what: &'static str,
    },
    /// A matrix has a different number of columns than the fitted step expects.
    #[error("expected {expected} feature columns, got {got}")]
    ShapeMismatch {
        /// Columns the fitted step was fitted on.
        expected: usize,
        /// Columns given.
        got: usize,
    },
    /// A class label index is not smaller than the number of classes.
    #[error("label {label} at position {position} is out of range for {n_classes} classes")]
    LabelOutOfRange {
        /// Offending label.
        label: usize,
        /// Position in the label slice.
        position: usize,
        /// Number of classes declared.
        n_classes: usize,
    },
    /// A deserialised pipeline is internally inconsistent (e.g. a parameter vector of the wrong length).
    #[error("invalid pipeline: {0}")]
    InvalidPipeline(String),
    /// JSON (de)serialisation failed.
    #[error("pipeline JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Reading or writing a pipeline file failed.
    #[error("{path}: {source}")]
    Io {
        /// File path.
        path: std::path::PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, PreprocessError>;
