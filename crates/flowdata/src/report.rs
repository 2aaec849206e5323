//! The accounting every reader returns: rows read, kept and rejected by reason, per file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{FlowDataError, Result};

/// One rejected line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The file.
    pub file: String,
    /// 1-based line number (the header is line 1); for a Parquet input the 1-based row number.
    pub line: u64,
    /// Reason key (see [`crate::RejectReason::as_str`]).
    pub reason: String,
    /// Details (which column, how many fields).
    pub detail: String,
}

/// Per-file counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReport {
    /// The file.
    pub path: String,
    /// Dialect detected (or forced).
    pub dialect: String,
    /// Dataset manifest used for labels.
    pub dataset: String,
    /// Data lines read (header excluded).
    pub rows_read: u64,
    /// Rows kept.
    pub rows_kept: u64,
}

/// Accounting of one read: `rows_read == rows_kept + sum(rejected)` always holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReadReport {
    /// Data lines read (headers excluded; repeated headers inside a file included).
    pub rows_read: u64,
    /// Rows kept.
    pub rows_kept: u64,
    /// Rejected lines by reason.
    pub rejected: BTreeMap<String, u64>,
    /// The first few rejected lines.
    pub first_rejections: Vec<Rejection>,
    /// Kept rows per fine label.
    pub labels: BTreeMap<String, u64>,
    /// Kept rows per raw label.
    pub labels_raw: BTreeMap<String, u64>,
    /// Kept rows per attack family.
    pub families: BTreeMap<String, u64>,
    /// Raw labels no manifest knew (family guessed from keywords).
    pub unknown_labels: Vec<String>,
    /// Canonical features present (canonical order).
    pub features: Vec<String>,
    /// Canonical features absent from the input.
    pub missing_features: Vec<String>,
    /// Header columns that did not become features → why (`identifier`, `duplicate`,
    /// `thesis_dropped`, `label`, `unknown`).
    pub dropped_columns: BTreeMap<String, String>,
    /// Dialect(s), `+`-joined when files differ.
    pub dialect: String,
    /// Dataset(s), `+`-joined when files differ.
    pub dataset: String,
    /// Kept rows holding a non-finite value (only under `InvalidPolicy::Keep`).
    pub non_finite_kept: u64,
    /// Non-finite policy used.
    pub invalid: String,
    /// Per-file counts.
    pub files: Vec<FileReport>,
    /// `true` when the data are synthetic (resampled).
    pub synthetic: bool,
}

impl ReadReport {
    /// Total rejected lines.
    pub fn rows_rejected(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// A short human summary (a few lines).
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} rows read, {} kept, {} rejected",
            self.rows_read,
            self.rows_kept,
            self.rows_rejected()
        );
        if !self.rejected.is_empty() {
            let parts: Vec<String> = self
                .rejected
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            s += &format!(" ({})", parts.join(", "));
        }
        s += &format!(
            "\ndialect {}, dataset {}, {} features ({} missing), invalid={}",
            self.dialect,
            self.dataset,
            self.features.len(),
            self.missing_features.len(),
            self.invalid
        );
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        s += &format!("\nlabels: {}", labels.join(", "));
        for r in self.first_rejections.iter().take(3) {
            s += &format!(
                "\nrejected {}:{}: {} {}",
                r.file, r.line, r.reason, r.detail
            );
        }
        s
    }

    /// Write the report as pretty JSON (`<out.parquet>.report.json` by convention).
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| FlowDataError::InvalidArgument(e.to_string()))?;
        std::fs::write(path, text + "\n").map_err(|error| FlowDataError::Io {
            path: path.to_path_buf(),
            error,
        })
    }
}
