//! `flowmeter`: packets to CICFlowMeter flow features.
//!
//! - [`Capture`] reads pcap and pcapng files frame by frame (bounded memory, typed errors
//!   naming the file and frame).
//! - [`V3Decoder`] decodes frames as CICFlowMeter V3 (jnetpcap 1.3) does, quirks included.
//! - [`FlowTable`] groups packets into bidirectional flows (V3's timeouts and FIN rule), in
//!   bounded memory, and hands flows out as they end.
//! - [`v3_row`] gives a flow's 85 V3 columns, printed as Java prints them;
//!   [`canonical_features`] maps them onto flowdata's 76 canonical features.
//! - [`Meter`] is one capture's decoder and flow table with the accounting of every frame;
//!   [`extract`] runs one over each capture file.
//! - With the `live` feature, `LiveCapture` reads frames from a network interface (libpcap) and
//!   `extract_live` meters them until told to stop.
//!
//! docs/CICFLOWMETER_V3.md specifies V3's behaviour rule by rule and how each was verified.
#![warn(missing_docs)]

mod capture;
mod decode_std;
mod decode_v3;
mod error;
mod flow;
#[cfg(feature = "live")]
mod live;
mod meter;
mod output;
mod packet;
mod quirks;
mod record;
mod replay;
mod stats;
mod table;

pub use capture::{Capture, Frame};
pub use decode_std::StdDecoder;
pub use decode_v3::V3Decoder;
pub use error::{FlowmeterError, Result};
pub use flow::{Endpoints, Flow, FlowKey};
#[cfg(feature = "live")]
pub use live::{extract_live, LiveCapture, LiveLimits, LiveOptions, LiveStats};
pub use meter::{
    extract, extract_with_progress, FlowRecord, Meter, MeterOptions, MeterReport, Mode, Progress,
    PROGRESS_EVERY,
};
pub use output::{parquet_schema, CsvFlowWriter, ParquetFlowWriter, IDENTIFIER_COLUMNS};
pub use packet::{flags, Packet, Reject};
pub use quirks::Quirks;
pub use record::{
    canonical_features, java_double, timestamp_12h, v3_row, Cell, RecordOptions, CANONICAL_COLUMNS,
    V3_HEADER,
};
pub use replay::{write_replayed_capture, Replayed};
pub use stats::RunningStats;
pub use table::{EndReason, FlowTable, TableOptions};
