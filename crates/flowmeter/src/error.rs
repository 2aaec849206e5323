//! Typed errors of the crate: every one names the capture and, where it applies, the frame.
use std::path::PathBuf;

/// Everything that can go wrong reading a capture.
#[derive(Debug, thiserror::Error)]
pub enum FlowmeterError {
    /// The capture file cannot be opened or read.
    #[error("{path}: {error}")]
    Io {
        /// The capture.
        path: PathBuf,
        /// The cause (in the message, not the error chain, so it prints once).
        error: std::io::Error,
    },
    /// The file is not a capture, or a block of it is malformed or cut off.
    #[error("{path}: frame {frame}: {why}")]
    Capture {
        /// The capture.
        path: PathBuf,
        /// 1-based frame number (0: the file header).
        frame: u64,
        /// What is wrong.
        why: String,
    },
    /// A live capture cannot be opened or read (no such interface, no permission, …).
    #[error("interface {interface}: {why}")]
    Live {
        /// The interface.
        interface: String,
        /// What failed.
        why: String,
    },
    /// Writing the flows failed.
    #[error("{path}: {why}")]
    Output {
        /// The output file.
        path: PathBuf,
        /// What failed.
        why: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, FlowmeterError>;
