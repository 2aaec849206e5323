//! Streaming CSV reader: files → blocks of complete lines → parallel parse → cleaned rows, with
//! every line accounted for.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{FlowDataError, Result};
use crate::frame::{Categorical, FlowFrame};
use crate::labels::{manifest, manifests, LabelResolver, ResolvedLabel};
use crate::parse::{parse_chunk, split_header, ColRole, Layout, RejectReason, N_REASONS};
use crate::report::{FileReport, ReadReport, Rejection};
use crate::schema::{
    detect_dialect, norm, Dialect, FEATURES, IDENTIFIER_COLUMNS, THESIS_DROPPED_COLUMNS,
};

/// What to do with rows holding ±infinity, NaN or an empty feature cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidPolicy {
    /// Reject the row (reason `non_finite`). The default: the thesis meant to do this but its
    /// case-sensitive filter missed `Infinity` and empty cells.
    #[default]
    Drop,
    /// Keep the row with the non-finite values as they are (NaN / ±inf in `f32`).
    Keep,
}

impl InvalidPolicy {
    /// Parse `drop` / `keep`.
    pub fn from_name(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "drop" => Some(InvalidPolicy::Drop),
            "keep" => Some(InvalidPolicy::Keep),
            _ => None,
        }
    }
}

/// Options of [`read_csv`] and [`crate::convert_csv_to_parquet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Header dialect; `None` detects it from each file's header.
    pub dialect: Option<Dialect>,
    /// Dataset manifest for labels (`cic-ddos2019`, …); `None` picks the dialect's dataset.
    pub dataset: Option<String>,
    /// Non-finite policy.
    pub invalid: InvalidPolicy,
    /// How many rejected lines to report individually.
    pub max_reported_rejections: usize,
    /// Bytes of CSV parsed per block (memory bound ≈ a few × this).
    pub block_bytes: usize,
    /// Longest data line accepted, in bytes before its `\n`. A longer line is rejected as
    /// `line_too_long` and skipped without being held in memory (so a hostile multi-gigabyte
    /// line costs no more memory than a block).
    pub max_line_bytes: usize,
}

/// Default of [`ReadOptions::max_line_bytes`]: 1 MiB, ≈ 1,000 × the longest real CICFlowMeter row.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            dialect: None,
            dataset: None,
            invalid: InvalidPolicy::Drop,
            max_reported_rejections: 10,
            block_bytes: 16 << 20,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// A block of cleaned rows handed to a [`stream_csv`] consumer.
#[derive(Debug)]
pub struct Block<'a> {
    /// Row-major features, `n_rows × features.len()`.
    pub feats: &'a [f32],
    /// Number of rows.
    pub n_rows: usize,
    /// Label code per row into `labels`.
    pub codes: &'a [u32],
    /// Every label resolved so far (codes index this).
    pub labels: &'a [ResolvedLabel],
    /// 1-based line per row.
    pub lines: &'a [u64],
    /// Source file of every row of the block.
    pub file: &'a str,
    /// Dataset id of every row of the block.
    pub dataset: &'a str,
    /// Canonical feature names of the columns.
    pub features: &'a [String],
    /// `true` when the file carries a `Synthetic` marker column (resampled data).
    pub synthetic: bool,
}

/// Header name (case-insensitive) of the column that marks a CSV as synthetic (resampled):
/// such files are read like any other, but [`ReadReport::synthetic`] and
/// [`FlowFrame::synthetic`] are set so no accuracy is ever quoted from them.
pub const SYNTHETIC_MARKER_COLUMN: &str = "synthetic";

/// The UTF-8 byte-order mark some tools write at the start of a file.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Bytes read from a file per `read` call while a block fills, so an overlong line is noticed
/// after at most this much more than the cap.
const FILL_STEP: usize = 1 << 20;

/// Expand inputs: files as given, folders to their `.csv` files (recursively, sorted).
pub fn expand_inputs<P: AsRef<Path>>(inputs: &[P]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in inputs {
        let p = p.as_ref();
        let meta = std::fs::metadata(p).map_err(|error| FlowDataError::Io {
            path: p.to_path_buf(),
            error,
        })?;
        if meta.is_dir() {
            let mut found = Vec::new();
            collect_csvs(p, &mut found)?;
            if found.is_empty() {
                return Err(FlowDataError::NoInput {
                    path: p.to_path_buf(),
                });
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(p.to_path_buf());
        }
    }
    Ok(out)
}

fn collect_csvs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let io = |error| FlowDataError::Io {
        path: dir.to_path_buf(),
        error,
    };
    for e in std::fs::read_dir(dir).map_err(io)? {
        let path = e.map_err(io)?.path();
        if path.is_dir() {
            collect_csvs(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("csv"))
        {
            out.push(path);
        }
    }
    Ok(())
}

struct FileLayout {
    layout: Layout,
    dialect: Dialect,
    /// Canonical indices of the features present, ascending (slot order).
    present: Vec<usize>,
    dropped: Vec<(String, String)>,
    tii_rule: bool,
}

fn name_index() -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for (i, f) in FEATURES.iter().enumerate() {
        for d in Dialect::ALL {
            m.insert(norm(d.header_name(f)), i);
        }
    }
    m
}

fn build_layout(path: &Path, header: &[String], opts: &ReadOptions) -> Result<FileLayout> {
    let dialect = match opts.dialect {
        Some(d) => {
            if detect_dialect(header).is_none() {
                return Err(FlowDataError::UnknownDialect {
                    path: path.to_path_buf(),
                });
            }
            d
        }
        None => detect_dialect(header).ok_or_else(|| FlowDataError::UnknownDialect {
            path: path.to_path_buf(),
        })?,
    };
    let names = name_index();
    let ids: Vec<String> = IDENTIFIER_COLUMNS.iter().map(|s| norm(s)).collect();
    let thesis: Vec<String> = THESIS_DROPPED_COLUMNS.iter().map(|s| norm(s)).collect();
    let mut canon_of_col: Vec<Option<usize>> = vec![None; header.len()];
    let mut roles = vec![ColRole::Ignore; header.len()];
    let mut dropped = Vec::new();
    let mut seen_canon = vec![false; FEATURES.len()];
    let mut seen_names: Vec<String> = Vec::new();
    let mut has_label = false;
    let mut tii_rule = false;
    for (c, h) in header.iter().enumerate() {
        let n = norm(h);
        let display = if h.is_empty() {
            format!("(unnamed column {})", c + 1)
        } else {
            h.clone()
        };
        // `Fwd Header Length.1`: pandas' suffix for a repeated name.
        let dup_base = n
            .rsplit_once('.')
            .filter(|(base, suf)| {
                !suf.is_empty()
                    && suf.bytes().all(|b| b.is_ascii_digit())
                    && seen_names.contains(&base.to_string())
            })
            .is_some();
        if n == "label" {
            roles[c] = ColRole::Label;
            has_label = true;
        } else if n == "traffic type" {
            roles[c] = ColRole::TrafficType;
            tii_rule = true;
        } else if n == "traffic subtype" {
            roles[c] = ColRole::TrafficSubtype;
        } else if n == SYNTHETIC_MARKER_COLUMN {
            // Written by `cargo xtask synth`: the file is resampled, never real data.
            dropped.push((display, "synthetic_marker".to_string()));
        } else if ids.contains(&n) {
            dropped.push((display, "identifier".to_string()));
        } else if thesis.contains(&n) {
            dropped.push((display, "thesis_dropped".to_string()));
        } else if dup_base || seen_names.contains(&n) {
            dropped.push((display, "duplicate".to_string()));
        } else if let Some(&k) = names.get(&n) {
            if seen_canon[k] {
                dropped.push((display, "duplicate".to_string()));
            } else {
                seen_canon[k] = true;
                canon_of_col[c] = Some(k);
            }
        } else {
            dropped.push((display, "unknown".to_string()));
        }
        seen_names.push(n);
    }
    if !has_label {
        return Err(FlowDataError::NoLabelColumn {
            path: path.to_path_buf(),
        });
    }
    let present: Vec<usize> = (0..FEATURES.len()).filter(|&k| seen_canon[k]).collect();
    for (c, k) in canon_of_col.iter().enumerate() {
        if let Some(k) = k {
            let slot = present.binary_search(k).unwrap_or(0);
            roles[c] = ColRole::Feature(slot);
        }
    }
    Ok(FileLayout {
        layout: Layout {
            roles,
            header_names: header.to_vec(),
            n_feat: present.len(),
            keep_non_finite: opts.invalid == InvalidPolicy::Keep,
            max_line_bytes: opts.max_line_bytes,
        },
        dialect,
        present,
        dropped,
        tii_rule,
    })
}

/// Resolve an interned key (`label \x1f traffic type \x1f traffic subtype`).
fn resolve_key(resolver: &LabelResolver, key: &[u8], tii_rule: bool) -> ResolvedLabel {
    let text = String::from_utf8_lossy(key);
    let mut parts = text.split('\x1f');
    let label = parts.next().unwrap_or("").trim();
    let ttype = parts.next().unwrap_or("").trim();
    let subtype = parts.next().unwrap_or("").trim();
    if tii_rule {
        let benign = label.eq_ignore_ascii_case("benign");
        let k = if benign {
            "BENIGN"
        } else if !ttype.is_empty() {
            ttype
        } else {
            label
        };
        let raw = [subtype, ttype, label]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or(label);
        resolver.resolve(k, raw)
    } else {
        resolver.resolve(label, label)
    }
}

/// Split `block` at newlines into about `n` pieces.
fn split_pieces(block: &[u8], n: usize) -> Vec<&[u8]> {
    let target = (block.len() / n.max(1)).max(64 << 10);
    let mut out = Vec::new();
    let mut start = 0;
    while start < block.len() {
        let mut end = (start + target).min(block.len());
        if end < block.len() {
            match block[end..].iter().position(|&b| b == b'\n') {
                Some(p) => end += p + 1,
                None => end = block.len(),
            }
        }
        out.push(&block[start..end]);
        start = end;
    }
    out
}

/// Stream CSV files block by block: each block of cleaned rows goes to `on_block`; memory stays
/// bounded by `opts.block_bytes` whatever the file size. Returns the full accounting.
///
/// All files must yield the same canonical feature set (the first file's).
pub fn stream_csv<P, F>(inputs: &[P], opts: &ReadOptions, mut on_block: F) -> Result<ReadReport>
where
    P: AsRef<Path>,
    F: FnMut(&Block<'_>) -> Result<()>,
{
    if let Some(ds) = &opts.dataset {
        if manifest(ds).is_none() {
            return Err(FlowDataError::UnknownName {
                what: "dataset",
                name: ds.clone(),
                known: manifests()
                    .iter()
                    .map(|m| m.dataset.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let files = expand_inputs(inputs)?;
    let mut report = ReadReport {
        invalid: match opts.invalid {
            InvalidPolicy::Drop => "drop".into(),
            InvalidPolicy::Keep => "keep".into(),
        },
        ..Default::default()
    };
    let mut rejected = [0u64; N_REASONS];
    let mut features: Option<Vec<usize>> = None;
    let mut feature_names: Vec<String> = Vec::new();
    let mut labels: Vec<ResolvedLabel> = Vec::new();
    let mut label_rows: Vec<u64> = Vec::new();
    let mut dialects: Vec<String> = Vec::new();
    let mut datasets: Vec<String> = Vec::new();
    let mut resolvers: HashMap<String, LabelResolver> = HashMap::new();
    let n_threads = rayon::current_num_threads();

    for path in &files {
        let file_str = path.display().to_string();
        let io = |error| FlowDataError::Io {
            path: path.clone(),
            error,
        };
        let mut f = File::open(path).map_err(io)?;
        let mut buf: Vec<u8> = Vec::new();
        let mut eof = false;
        // Read until the header line is complete.
        let header_end = loop {
            if let Some(p) = buf.iter().position(|&b| b == b'\n') {
                break p;
            }
            if eof {
                break buf.len();
            }
            if buf.len() > (4 << 20) {
                return Err(FlowDataError::NotCsv {
                    path: path.clone(),
                    why: "no line break in the first 4 MiB".into(),
                });
            }
            eof = fill(&mut f, &mut buf, 1 << 16).map_err(io)?;
        };
        if buf.is_empty() {
            return Err(FlowDataError::NotCsv {
                path: path.clone(),
                why: "empty file".into(),
            });
        }
        // A UTF-8 byte-order mark (Excel, PowerShell) is not part of the first column's name.
        let bom = if buf.starts_with(UTF8_BOM) {
            UTF8_BOM.len()
        } else {
            0
        };
        let header_bytes = &buf[bom.min(header_end)..header_end];
        if header_bytes
            .iter()
            .any(|&b| b == 0 || (b < 0x20 && b != b'\t' && b != b'\r'))
        {
            return Err(FlowDataError::NotCsv {
                path: path.clone(),
                why: "binary bytes in the first line".into(),
            });
        }
        let header = split_header(header_bytes);
        if header.len() < 2 {
            return Err(FlowDataError::NotCsv {
                path: path.clone(),
                why: "the first line has no comma-separated columns".into(),
            });
        }
        let fl = build_layout(path, &header, opts)?;
        match &features {
            None => {
                feature_names = fl
                    .present
                    .iter()
                    .map(|&k| FEATURES[k].canonical.to_string())
                    .collect();
                features = Some(fl.present.clone());
                report.features = feature_names.clone();
                report.missing_features = (0..FEATURES.len())
                    .filter(|k| !fl.present.contains(k))
                    .map(|k| FEATURES[k].canonical.to_string())
                    .collect();
            }
            Some(first) if *first != fl.present => {
                let missing: Vec<&str> = first
                    .iter()
                    .filter(|k| !fl.present.contains(k))
                    .map(|&k| FEATURES[k].canonical)
                    .collect();
                let extra: Vec<&str> = fl
                    .present
                    .iter()
                    .filter(|k| !first.contains(k))
                    .map(|&k| FEATURES[k].canonical)
                    .collect();
                return Err(FlowDataError::FeatureMismatch {
                    path: path.clone(),
                    detail: format!("missing {missing:?}, extra {extra:?}"),
                });
            }
            Some(_) => {}
        }
        for (name, why) in &fl.dropped {
            report.dropped_columns.insert(name.clone(), why.clone());
        }
        let file_synthetic = fl.dropped.iter().any(|(_, why)| why == "synthetic_marker");
        report.synthetic |= file_synthetic;
        let dataset = opts
            .dataset
            .clone()
            .unwrap_or_else(|| fl.dialect.default_dataset().to_string());
        if !dialects.contains(&fl.dialect.name().to_string()) {
            dialects.push(fl.dialect.name().to_string());
        }
        if !datasets.contains(&dataset) {
            datasets.push(dataset.clone());
        }
        let resolver = resolvers
            .entry(dataset.clone())
            .or_insert_with(|| LabelResolver::new(&dataset))
            .clone();
        let mut file_codes: HashMap<Vec<u8>, u32> = HashMap::new();
        let mut file_report = FileReport {
            path: file_str.clone(),
            dialect: fl.dialect.name().to_string(),
            dataset: dataset.clone(),
            rows_read: 0,
            rows_kept: 0,
        };

        // Drop the header from the buffer.
        buf.drain(..(header_end + 1).min(buf.len()));
        let mut lines_done: u64 = 0; // data lines consumed so far in this file
        let mut feats: Vec<f32> = Vec::new();
        let mut codes: Vec<u32> = Vec::new();
        let mut lines: Vec<u64> = Vec::new();
        // `buf` always starts at the beginning of a line; `tail` is where its last, possibly
        // unfinished line starts.
        let mut tail = memchr::memrchr(b'\n', &buf).map_or(0, |p| p + 1);
        loop {
            // Fill to a block, and on past it while no line is complete, but never past the
            // line cap: the part of a line beyond it is skipped unread.
            while !eof
                && (buf.len() < opts.block_bytes || tail == 0)
                && buf.len() - tail <= opts.max_line_bytes
            {
                let before = buf.len();
                let want = match opts.block_bytes.saturating_sub(before) {
                    0 => FILL_STEP, // a block without a complete line: read on
                    w => w.min(FILL_STEP),
                };
                eof = fill(&mut f, &mut buf, want).map_err(io)?;
                if let Some(p) = memchr::memrchr(b'\n', &buf[before..]) {
                    tail = before + p + 1;
                }
            }
            let overlong = buf.len() - tail > opts.max_line_bytes;
            // Process complete lines; at EOF everything (an overlong last line aside).
            let cut = if eof && !overlong { buf.len() } else { tail };
            let block = &buf[..cut];
            let unterminated = eof && !overlong && block.last().is_some_and(|&b| b != b'\n');
            let pieces = split_pieces(block, n_threads * 2);
            let n_pieces = pieces.len();
            let parsed: Vec<_> = pieces
                .par_iter()
                .enumerate()
                .map(|(i, p)| {
                    parse_chunk(
                        &fl.layout,
                        p,
                        unterminated && i + 1 == n_pieces,
                        opts.max_reported_rejections,
                    )
                })
                .collect();
            feats.clear();
            codes.clear();
            lines.clear();
            for chunk in parsed {
                let local_to_global: Vec<u32> = chunk
                    .keys
                    .iter()
                    .map(|k| {
                        *file_codes.entry(k.clone()).or_insert_with(|| {
                            labels.push(resolve_key(&resolver, k, fl.tii_rule));
                            label_rows.push(0);
                            (labels.len() - 1) as u32
                        })
                    })
                    .collect();
                for &c in &chunk.codes {
                    let g = local_to_global[c as usize];
                    label_rows[g as usize] += 1;
                    codes.push(g);
                }
                feats.extend_from_slice(&chunk.feats);
                // Data line d (0-based) of the file is line d + 2 (the header is line 1).
                lines.extend(chunk.lines.iter().map(|&l| lines_done + l as u64 + 2));
                for (l, reason, detail) in chunk.first_rejects {
                    if report.first_rejections.len() < opts.max_reported_rejections {
                        report.first_rejections.push(Rejection {
                            file: file_str.clone(),
                            line: lines_done + l as u64 + 2,
                            reason: reason.as_str().to_string(),
                            detail,
                        });
                    }
                }
                for (r, n) in rejected.iter_mut().zip(chunk.rejected) {
                    *r += n;
                }
                report.non_finite_kept += chunk.non_finite_kept;
                lines_done += chunk.n_lines as u64;
                file_report.rows_kept += chunk.codes.len() as u64;
            }
            if !codes.is_empty() {
                on_block(&Block {
                    feats: &feats,
                    n_rows: codes.len(),
                    codes: &codes,
                    labels: &labels,
                    lines: &lines,
                    file: &file_str,
                    dataset: &dataset,
                    features: &feature_names,
                    synthetic: file_synthetic,
                })?;
            }
            buf.drain(..cut);
            tail = 0;
            if overlong {
                // The unfinished line in `buf` passed the cap: drop what was read of it and
                // skip the rest up to its newline.
                buf.clear();
                if !eof {
                    eof = skip_line(&mut f, &mut buf).map_err(io)?;
                }
                rejected[RejectReason::LineTooLong.index()] += 1;
                if report.first_rejections.len() < opts.max_reported_rejections {
                    report.first_rejections.push(Rejection {
                        file: file_str.clone(),
                        line: lines_done + 2,
                        reason: RejectReason::LineTooLong.as_str().to_string(),
                        detail: format!("longer than {} bytes", opts.max_line_bytes),
                    });
                }
                lines_done += 1;
                tail = memchr::memrchr(b'\n', &buf).map_or(0, |p| p + 1);
            }
            if eof && buf.is_empty() {
                break;
            }
        }
        file_report.rows_read = lines_done;
        report.rows_read += lines_done;
        report.rows_kept += file_report.rows_kept;
        report.files.push(file_report);
    }
    for r in RejectReason::ALL {
        let n = rejected[r as usize];
        if n > 0 {
            report.rejected.insert(r.as_str().to_string(), n);
        }
    }
    let mut unknown_seen: HashSet<&str> = HashSet::new();
    for (l, &n) in labels.iter().zip(&label_rows) {
        if n == 0 {
            continue;
        }
        *report.labels.entry(l.fine.clone()).or_default() += n;
        *report.labels_raw.entry(l.raw.clone()).or_default() += n;
        *report.families.entry(l.family.clone()).or_default() += n;
        if !l.known && unknown_seen.insert(l.raw.as_str()) {
            report.unknown_labels.push(l.raw.clone());
        }
    }
    report.dialect = dialects.join("+");
    report.dataset = datasets.join("+");
    Ok(report)
}

/// Read and discard bytes up to and including the next `\n`; what follows it is appended to
/// `buf`. Returns `true` at end of file. Memory stays at one 64 KiB chunk whatever the line.
fn skip_line(f: &mut File, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let got = f.read(&mut chunk)?;
        if got == 0 {
            return Ok(true);
        }
        if let Some(p) = memchr::memchr(b'\n', &chunk[..got]) {
            buf.extend_from_slice(&chunk[p + 1..got]);
            return Ok(false);
        }
    }
}

/// Read up to `want` more bytes; returns `true` at end of file. (`take` + `read_to_end` grows
/// the buffer as data arrives instead of zero-filling `want` bytes up front.)
fn fill(f: &mut File, buf: &mut Vec<u8>, want: usize) -> std::io::Result<bool> {
    let got = f.by_ref().take(want as u64).read_to_end(buf)?;
    Ok(got < want)
}

/// Read CICFlowMeter CSV files (any dialect) into a [`FlowFrame`], with the full accounting.
///
/// `inputs` may name files or folders (their `.csv` files are read, sorted). Identifier and
/// duplicated columns never become features; rows are cleaned as described in the crate docs.
///
/// ```
/// use flowdata::{read_csv, LabelLevel, ReadOptions};
/// # fn main() -> flowdata::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("tiny.csv");
/// std::fs::write(&path, "Flow ID, Protocol, Flow Duration, Flow Bytes/s, Label\n\
///     a,6,100,1.5,BENIGN\n\
///     b,17,20,Infinity,DrDoS_DNS\n\
///     c,17.0,30,2e3,UDP-lag\n").unwrap();
/// let (frame, report) = read_csv(&[&path], &ReadOptions::default())?;
/// assert_eq!((report.rows_read, report.rows_kept), (3, 2)); // the Infinity row is dropped
/// assert_eq!(report.rejected["non_finite"], 1);
/// assert_eq!(frame.feature_names, ["protocol", "flow_duration", "flow_bytes_per_s"]);
/// let t = frame.targets(LabelLevel::Fine);
/// assert_eq!(t.classes, ["BENIGN", "UDPLag"]);
/// assert_eq!(frame.x[[1, 0]], 17.0);
/// # Ok(()) }
/// ```
pub fn read_csv<P: AsRef<Path>>(
    inputs: &[P],
    opts: &ReadOptions,
) -> Result<(FlowFrame, ReadReport)> {
    let mut feats: Vec<f32> = Vec::new();
    let mut codes: Vec<u32> = Vec::new();
    let mut lines: Vec<u64> = Vec::new();
    let mut file_codes: Vec<u32> = Vec::new();
    let mut file_table: Vec<String> = Vec::new();
    let mut dataset_codes: Vec<u32> = Vec::new();
    let mut dataset_table: Vec<String> = Vec::new();
    let mut n_feat = 0;
    let mut names: Vec<String> = Vec::new();
    let mut label_table: Vec<ResolvedLabel> = Vec::new();
    let report = stream_csv(inputs, opts, |b| {
        n_feat = b.features.len();
        names = b.features.to_vec();
        feats.extend_from_slice(b.feats);
        codes.extend_from_slice(b.codes);
        lines.extend_from_slice(b.lines);
        if file_table.last().map(|s| s.as_str()) != Some(b.file) {
            file_table.push(b.file.to_string());
        }
        if dataset_table.last().map(|s| s.as_str()) != Some(b.dataset) {
            dataset_table.push(b.dataset.to_string());
        }
        file_codes.resize(file_codes.len() + b.n_rows, (file_table.len() - 1) as u32);
        dataset_codes.resize(
            dataset_codes.len() + b.n_rows,
            (dataset_table.len() - 1) as u32,
        );
        label_table = b.labels.to_vec();
        Ok(())
    })?;
    if names.is_empty() {
        names = report.features.clone();
        n_feat = names.len();
    }
    let n = codes.len();
    let x = Array2::from_shape_vec((n, n_feat), feats)
        .map_err(|e| FlowDataError::InvalidArgument(e.to_string()))?;
    let fine: Vec<String> = label_table.iter().map(|l| l.fine.clone()).collect();
    let family: Vec<String> = label_table.iter().map(|l| l.family.clone()).collect();
    let raw: Vec<String> = label_table.iter().map(|l| l.raw.clone()).collect();
    let mut excluded: Vec<String> = Vec::new();
    for ds in &dataset_table {
        if let Some(m) = manifest(ds) {
            excluded.extend(m.excluded_from_task.iter().cloned());
        }
    }
    excluded.sort();
    excluded.dedup();
    let frame = FlowFrame {
        x,
        feature_names: names,
        fine: Categorical::from_table(&codes, &fine),
        family: Categorical::from_table(&codes, &family),
        is_attack: codes
            .iter()
            .map(|&c| label_table[c as usize].attack)
            .collect(),
        label_raw: Categorical::from_table(&codes, &raw),
        dataset: Categorical::from_table(&dataset_codes, &dataset_table),
        source_file: Categorical::from_table(&file_codes, &file_table),
        source_line: lines,
        excluded_classes: excluded,
        synthetic: report.synthetic,
    };
    Ok((frame, report))
}
