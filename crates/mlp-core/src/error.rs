//! Typed errors of this crate.
use thiserror::Error;

/// Everything that can go wrong when configuring, training, saving or loading an MLP.
#[derive(Debug, Error)]
pub enum MlpError {
    /// A hyper-parameter is out of range; names the parameter and why.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParam {
        /// The builder field.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Input matrices and label vectors do not fit together or the model.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A label is outside `0..n_classes`.
    #[error("label {label} at row {row} is outside 0..{n_classes}")]
    Label {
        /// Row index in the given label vector.
        row: usize,
        /// The offending label.
        label: usize,
        /// Number of classes of the model.
        n_classes: usize,
    },
    /// A non-finite value in the input features.
    #[error("non-finite value at row {row}, column {column}")]
    NonFinite {
        /// Row index.
        row: usize,
        /// Column index.
        column: usize,
    },
    /// Training diverged (loss became NaN or infinite).
    #[error("training diverged at epoch {epoch}: loss is {loss}")]
    Diverged {
        /// Epoch (0-based) where it happened.
        epoch: usize,
        /// The non-finite loss.
        loss: f32,
    },
    /// A safetensors file lacks a tensor or holds one of the wrong shape/dtype.
    #[error("model file: {0}")]
    Format(String),
    /// safetensors could not parse or write the file.
    #[error("safetensors: {0}")]
    SafeTensors(#[from] safetensors::SafeTensorError),
    /// The JSON config could not be parsed or written.
    #[error("config json: {0}")]
    Json(#[from] serde_json::Error),
    /// A compute backend could not be set up or a device operation failed.
    #[error("backend: {0}")]
    Backend(#[from] crate::backend::BackendError),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand for this crate's results.
pub type Result<T> = std::result::Result<T, MlpError>;
