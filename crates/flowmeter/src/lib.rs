//! `flowmeter`: packets to CICFlowMeter flow features.
//!
//! [`Capture`] reads pcap and pcapng files frame by frame (bounded memory, typed errors naming
//! the file and frame).
#![warn(missing_docs)]

mod capture;
mod error;

pub use capture::{Capture, Frame};
pub use error::{FlowmeterError, Result};
