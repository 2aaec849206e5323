//! Errors of the scale-out crate.
use std::path::PathBuf;

/// What can go wrong loading a model or scoring through an engine.
#[derive(Debug, thiserror::Error)]
pub enum ScaleError {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The bundle could not be loaded.
    #[error("{path}: cannot load the model bundle: {msg}")]
    Bundle {
        /// The bundle directory.
        path: PathBuf,
        /// The cause.
        msg: String,
    },
    /// The plan was built for another model than the one this process holds.
    #[error(
        "model mismatch: the plan was built for model {plan}, but this process holds {held} \
         (loaded from {origin}); start it with the same --model bundle as the client"
    )]
    ModelMismatch {
        /// Hash carried by the plan.
        plan: String,
        /// Hash of the loaded bundle.
        held: String,
        /// Where the loaded bundle came from.
        origin: String,
    },
    /// The model or explainer failed.
    #[error("{0}")]
    Model(String),
    /// Bad arguments to a UDF (wrong count, types, nulls).
    #[error("{0}")]
    Arguments(String),
}

impl From<ScaleError> for datafusion::error::DataFusionError {
    fn from(e: ScaleError) -> Self {
        datafusion::error::DataFusionError::Execution(e.to_string())
    }
}
