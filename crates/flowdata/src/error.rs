//! Typed errors of the crate.

use std::path::PathBuf;

/// Everything that can go wrong reading or writing flow data.
#[derive(Debug, thiserror::Error)]
pub enum FlowDataError {
    /// An I/O error on a named file.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (kept out of the error chain so it prints once).
        error: std::io::Error,
    },
    /// The file does not look like a CSV (binary bytes, no delimiter in the header, empty).
    #[error("{path}: not a CSV file ({why})")]
    NotCsv {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        why: String,
    },
    /// No `Label` column in the header.
    #[error("{path}: no label column (expected `Label`)")]
    NoLabelColumn {
        /// The file.
        path: PathBuf,
    },
    /// The header matches no known CICFlowMeter dialect.
    #[error("{path}: unknown dialect: no CICFlowMeter feature names in the header")]
    UnknownDialect {
        /// The file.
        path: PathBuf,
    },
    /// A dialect or dataset name that does not exist.
    #[error("unknown {what} `{name}` (known: {known})")]
    UnknownName {
        /// `dialect` or `dataset`.
        what: &'static str,
        /// The name given.
        name: String,
        /// The accepted names.
        known: String,
    },
    /// A later file yields a different canonical feature set than the first.
    #[error("{path}: features differ from the first file ({detail})")]
    FeatureMismatch {
        /// The file.
        path: PathBuf,
        /// Which features differ.
        detail: String,
    },
    /// An input path that is neither a file nor a folder with `.csv` files.
    #[error("{path}: no CSV files found")]
    NoInput {
        /// The path.
        path: PathBuf,
    },
    /// Parquet/Arrow failure.
    #[error("{path}: parquet: {msg}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The message.
        msg: String,
    },
    /// A bad argument (fractions that do not sum to 1, empty frame, …).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, FlowDataError>;
