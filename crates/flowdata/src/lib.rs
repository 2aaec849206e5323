//! `flowdata`: read dirty CICFlowMeter CSVs in every dialect into canonical features, with full
//! row accounting; Parquet IO; seeded splits and sampling.
//!
//! See `docs/ARCHITECTURE.md` for where this crate sits in flowxai.
//!
//! # What reading does
//! * **Dialects** ([`Dialect`]) are detected from the header: CIC-IDS2017/CIC-DDoS2019 long names
//!   (with leading spaces), CSE-CIC-IDS2018 short names, CICFlowMeter-V4 (TII-SSRC-23). Each maps
//!   onto the one canonical table [`FEATURES`] (76 snake_case features, the thesis' set, in raw
//!   CIC-DDoS2019 order). A file with a subset of features yields a frame with just those;
//!   [`ReadReport::missing_features`] lists the rest.
//! * **Never features**: identifier columns ([`IDENTIFIER_COLUMNS`]: Flow ID, IPs, ports,
//!   Timestamp, SimillarHTTP, Inbound, the pandas index), duplicated columns
//!   (`Fwd Header Length.1`), and the thesis-dropped `CWE Flag Count`/`CWR Flag Count`.
//! * **Rows**: CRLF, truncated last lines, repeated header rows, `Infinity`/`inf`/`NaN`/empty
//!   cells, floats in integer columns (`6.0`), negative overflow values (kept as the numbers they
//!   are; clipping is `preprocess`' job), non-UTF-8 label bytes (decoded lossily).
//!   Non-finite cells follow [`InvalidPolicy`] (`drop` by default).
//! * **Accounting**: `rows_read == rows_kept + Σ rejected[reason]`, with the first rejected lines
//!   as `file:line reason` ([`ReadReport`]).
//! * **Labels** are trimmed and resolved through the dataset manifests embedded from `datasets/`
//!   ([`manifests`]) into fine class, attack family ([`FAMILIES`]) and benign/attack.
//!
//! # Entry points
//! [`read_csv`] (CSV → [`FlowFrame`]), [`convert_csv_to_parquet`] (streaming CSV → Parquet),
//! [`read_parquet`], [`write_parquet`], [`FlowFrame::targets`] ([`LabelLevel`] → `y`, `classes`),
//! [`stratified_split`], [`cap_per_class`], [`resample_synthetic`].

#![warn(missing_docs)]

mod error;
mod frame;
mod labels;
mod parquet_io;
mod parse;
mod partial;
mod reader;
mod report;
mod sampling;
mod schema;

pub use error::{FlowDataError, Result};
pub use frame::{Categorical, FlowFrame, LabelLevel, Targets};
pub use labels::{
    guess_family, manifest, manifests, LabelMapping, LabelResolver, Manifest, ResolvedLabel,
    SampleFile, Source, FAMILIES,
};
pub use parquet_io::{
    convert_csv_to_parquet, read_parquet, write_parquet, LABEL_COLUMNS, META_EXCLUDED,
    META_SYNTHETIC,
};
pub use parse::{parse_f32, RejectReason};
pub use partial::PartialFile;
pub use reader::{
    expand_inputs, read_csv, stream_csv, Block, InvalidPolicy, ReadOptions, DEFAULT_MAX_LINE_BYTES,
    SYNTHETIC_MARKER_COLUMN,
};
pub use report::{FileReport, ReadReport, Rejection};
pub use sampling::{
    cap_per_class, resample_synthetic, stratified_split, Split, SplitFractions, SYNTHETIC_JITTER,
    SYNTHETIC_UNJITTERED,
};
pub use schema::{
    canonical_index, canonical_names, detect_dialect, Dialect, FeatureSpec, FEATURES,
    IDENTIFIER_COLUMNS, N_FEATURES, THESIS_DROPPED_COLUMNS,
};
