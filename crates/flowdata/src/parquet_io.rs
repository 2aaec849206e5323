//! Parquet output (streaming, zstd, row groups encoded in parallel) and Parquet → `FlowFrame`.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Float32Array, RecordBatch, StringArray, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use ndarray::Array2;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

use crate::error::{FlowDataError, Result};
use crate::frame::{Categorical, FlowFrame};
use crate::labels::ResolvedLabel;
use crate::partial::PartialFile;
use crate::reader::{stream_csv, Block, ReadOptions};
use crate::report::{FileReport, ReadReport, Rejection};
use crate::schema::canonical_index;

/// Metadata key holding `true` for synthetic (resampled) data.
pub const META_SYNTHETIC: &str = "flowdata.synthetic";
/// Metadata key holding the JSON list of fine classes excluded from the task.
pub const META_EXCLUDED: &str = "flowdata.excluded_classes";

/// The non-feature columns, in file order after the features.
pub const LABEL_COLUMNS: &[&str] = &[
    "label",
    "label_raw",
    "family",
    "is_attack",
    "dataset",
    "source_file",
    "source_line",
];

fn pq_err(path: &Path, e: impl std::fmt::Display) -> FlowDataError {
    FlowDataError::Parquet {
        path: path.to_path_buf(),
        msg: e.to_string(),
    }
}

fn schema_for(features: &[String], synthetic: bool, excluded: &[String]) -> SchemaRef {
    let mut fields: Vec<Field> = features
        .iter()
        .map(|n| Field::new(n, DataType::Float32, false))
        .collect();
    for n in LABEL_COLUMNS {
        let dt = match *n {
            "is_attack" => DataType::Boolean,
            "source_line" => DataType::UInt64,
            _ => DataType::Utf8,
        };
        fields.push(Field::new(*n, dt, false));
    }
    let mut meta = HashMap::new();
    meta.insert(META_SYNTHETIC.to_string(), synthetic.to_string());
    meta.insert(
        META_EXCLUDED.to_string(),
        serde_json::to_string(excluded).unwrap_or_else(|_| "[]".into()),
    );
    Arc::new(Schema::new(fields).with_metadata(meta))
}

/// Streaming Parquet writer: one row group per `write_rows` call, columns encoded in parallel.
///
/// It writes a temporary file beside `path` and renames it over `path` in [`Self::finish`]:
/// a failed or interrupted write never leaves a footer-less file at the output path (the
/// temporary file is removed when the writer is dropped unfinished).
struct FlowParquetWriter {
    path: std::path::PathBuf,
    partial: PartialFile,
    writer: SerializedFileWriter<BufWriter<File>>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    row_groups: usize,
}

/// Rows to write: row-major features plus per-row label strings.
struct Rows<'a> {
    feats: &'a [f32],
    n_rows: usize,
    label: Vec<&'a str>,
    label_raw: Vec<&'a str>,
    family: Vec<&'a str>,
    is_attack: Vec<bool>,
    dataset: Vec<&'a str>,
    source_file: Vec<&'a str>,
    source_line: Vec<u64>,
}

impl FlowParquetWriter {
    fn create(path: &Path, schema: SchemaRef) -> Result<Self> {
        let partial = PartialFile::beside(path);
        // The error names the output the user asked for, not the temporary file beside it.
        let file = File::create(partial.path()).map_err(|error| FlowDataError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        // Float features: plain encoding + zstd (dictionary pages cost a hash per value and
        // mostly overflow on continuous columns); the string label columns stay dictionary-encoded.
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(1).map_err(|e| pq_err(path, e))?,
            ))
            .set_max_row_group_row_count(Some(1 << 20))
            .set_dictionary_enabled(false)
            .set_statistics_enabled(EnabledStatistics::Chunk);
        for c in ["label", "label_raw", "family", "dataset", "source_file"] {
            props = props.set_column_dictionary_enabled(ColumnPath::from(c), true);
        }
        let props = props.build();
        let w = ArrowWriter::try_new(
            BufWriter::with_capacity(1 << 20, file),
            schema.clone(),
            Some(props),
        )
        .map_err(|e| pq_err(path, e))?;
        let (writer, factory) = w.into_serialized_writer().map_err(|e| pq_err(path, e))?;
        Ok(FlowParquetWriter {
            path: path.to_path_buf(),
            partial,
            writer,
            factory,
            schema,
            row_groups: 0,
        })
    }

    fn write_rows(&mut self, rows: &Rows<'_>) -> Result<()> {
        let n_feat = rows.feats.len().checked_div(rows.n_rows).unwrap_or(0);
        let n = rows.n_rows;
        // Transpose row-major features into columns, in parallel over columns.
        let mut arrays: Vec<ArrayRef> = (0..n_feat)
            .into_par_iter()
            .map(|j| {
                let col: Vec<f32> = (0..n).map(|i| rows.feats[i * n_feat + j]).collect();
                Arc::new(Float32Array::from(col)) as ArrayRef
            })
            .collect();
        arrays.push(Arc::new(StringArray::from(rows.label.clone())));
        arrays.push(Arc::new(StringArray::from(rows.label_raw.clone())));
        arrays.push(Arc::new(StringArray::from(rows.family.clone())));
        arrays.push(Arc::new(BooleanArray::from(rows.is_attack.clone())));
        arrays.push(Arc::new(StringArray::from(rows.dataset.clone())));
        arrays.push(Arc::new(StringArray::from(rows.source_file.clone())));
        arrays.push(Arc::new(UInt64Array::from(rows.source_line.clone())));
        let writers = self
            .factory
            .create_column_writers(self.row_groups)
            .map_err(|e| pq_err(&self.path, e))?;
        let fields = self.schema.fields();
        let chunks: Vec<std::result::Result<ArrowColumnChunk, parquet::errors::ParquetError>> =
            writers
                .into_par_iter()
                .zip(arrays.par_iter())
                .zip(fields.par_iter())
                .map(|((mut w, arr), field)| {
                    for leaf in compute_leaves(field, arr)? {
                        w.write(&leaf)?;
                    }
                    w.close()
                })
                .collect();
        let mut rg = self
            .writer
            .next_row_group()
            .map_err(|e| pq_err(&self.path, e))?;
        for c in chunks {
            c.and_then(|c| c.append_to_row_group(&mut rg))
                .map_err(|e| pq_err(&self.path, e))?;
        }
        rg.close().map_err(|e| pq_err(&self.path, e))?;
        self.row_groups += 1;
        Ok(())
    }

    fn finish(self) -> Result<()> {
        let FlowParquetWriter {
            path,
            partial,
            writer,
            ..
        } = self;
        writer.close().map_err(|e| pq_err(&path, e))?;
        partial.commit(&path)
    }
}

/// Convert CSV files (any dialect) to one Parquet file (zstd), streaming: memory stays bounded
/// by `opts.block_bytes` whatever the input size, each block becomes one row group.
///
/// Columns: the canonical float32 features present, then `label` (fine class), `label_raw`,
/// `family`, `is_attack`, `dataset`, `source_file`, `source_line`. Returns the accounting;
/// write it beside the output with [`ReadReport::write_json`].
///
/// ```
/// use flowdata::{convert_csv_to_parquet, read_parquet, LabelLevel, ReadOptions};
/// # fn main() -> flowdata::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let csv = dir.path().join("flows.csv");
/// // CSE-CIC-IDS2018 short names, a repeated header row and a truncated last line.
/// std::fs::write(&csv, "Dst Port,Protocol,Tot Fwd Pkts,Flow Byts/s,Label\n\
///     80,6,2,10.5,Benign\n\
///     Dst Port,Protocol,Tot Fwd Pkts,Flow Byts/s,Label\n\
///     22,6,40,3e2,SSH-Bruteforce\n\
///     22,6,4").unwrap();
/// let out = dir.path().join("flows.parquet");
/// let report = convert_csv_to_parquet(&[&csv], &out, &ReadOptions::default())?;
/// assert_eq!((report.rows_read, report.rows_kept), (4, 2));
/// assert_eq!(report.rejected["repeated_header"], 1);
/// assert_eq!(report.rejected["truncated_line"], 1);
/// let (frame, _) = read_parquet(&out)?;
/// assert_eq!(frame.feature_names, ["protocol", "total_fwd_packets", "flow_bytes_per_s"]);
/// assert_eq!(frame.targets(LabelLevel::Family).classes, ["benign", "brute_force"]);
/// assert_eq!(frame.source_line, [2, 4]);
/// # Ok(()) }
/// ```
pub fn convert_csv_to_parquet<P: AsRef<Path>>(
    inputs: &[P],
    output: &Path,
    opts: &ReadOptions,
) -> Result<ReadReport> {
    // Parsing block N+1 overlaps encoding block N: a writer thread takes owned blocks through a
    // channel of capacity 1, so at most three blocks are alive at once (memory stays bounded).
    let (tx, rx) = std::sync::mpsc::sync_channel::<OwnedBlock>(1);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<Option<FlowParquetWriter>> {
            let mut writer: Option<FlowParquetWriter> = None;
            for b in rx {
                if writer.is_none() {
                    let excluded = crate::labels::manifest(&b.dataset)
                        .map(|m| m.excluded_from_task.clone())
                        .unwrap_or_default();
                    writer = Some(FlowParquetWriter::create(
                        output,
                        schema_for(&b.features, b.synthetic, &excluded),
                    )?);
                }
                let label = |f: &dyn Fn(&ResolvedLabel) -> &str| -> Vec<&str> {
                    b.codes.iter().map(|&c| f(&b.labels[c as usize])).collect()
                };
                let rows = Rows {
                    feats: &b.feats,
                    n_rows: b.codes.len(),
                    label: label(&|l| l.fine.as_str()),
                    label_raw: label(&|l| l.raw.as_str()),
                    family: label(&|l| l.family.as_str()),
                    is_attack: b
                        .codes
                        .iter()
                        .map(|&c| b.labels[c as usize].attack)
                        .collect(),
                    dataset: vec![b.dataset.as_str(); b.codes.len()],
                    source_file: vec![b.file.as_str(); b.codes.len()],
                    source_line: b.lines,
                };
                if let Some(w) = writer.as_mut() {
                    w.write_rows(&rows)?;
                }
            }
            Ok(writer)
        });
        let streamed = stream_csv(inputs, opts, |b: &Block<'_>| {
            let owned = OwnedBlock {
                feats: b.feats.to_vec(),
                codes: b.codes.to_vec(),
                labels: b.labels.to_vec(),
                lines: b.lines.to_vec(),
                file: b.file.to_string(),
                dataset: b.dataset.to_string(),
                features: b.features.to_vec(),
                synthetic: b.synthetic,
            };
            // A closed channel means the writer failed; its own error is reported below.
            tx.send(owned)
                .map_err(|_| pq_err(output, "parquet writer stopped"))
        });
        drop(tx);
        let written = writer
            .join()
            .map_err(|_| pq_err(output, "writer thread panicked"))?;
        let written = written?;
        let report = streamed?;
        let w = match written {
            Some(w) => w,
            // No row kept: still write a valid, empty file with the right columns.
            None => {
                let excluded = crate::labels::manifest(report.dataset.as_str())
                    .map(|m| m.excluded_from_task.clone())
                    .unwrap_or_default();
                FlowParquetWriter::create(
                    output,
                    schema_for(&report.features, report.synthetic, &excluded),
                )?
            }
        };
        w.finish()?;
        Ok(report)
    })
}

/// A block copied out of the reader for the writer thread.
struct OwnedBlock {
    feats: Vec<f32>,
    codes: Vec<u32>,
    labels: Vec<ResolvedLabel>,
    lines: Vec<u64>,
    file: String,
    dataset: String,
    features: Vec<String>,
    synthetic: bool,
}

/// Write a frame to Parquet (same columns as [`convert_csv_to_parquet`]; `synthetic` recorded in
/// the file metadata).
pub fn write_parquet(frame: &FlowFrame, path: &Path) -> Result<()> {
    let mut w = FlowParquetWriter::create(
        path,
        schema_for(
            &frame.feature_names,
            frame.synthetic,
            &frame.excluded_classes,
        ),
    )?;
    let n = frame.n_rows();
    let x = frame.x.as_standard_layout();
    let feats = x.as_slice().unwrap_or(&[]);
    let step = 1 << 18;
    let mut start = 0;
    while start < n || (n == 0 && start == 0) {
        let end = (start + step).min(n);
        let idx = start..end;
        let k = frame.n_features();
        let rows = Rows {
            feats: &feats[start * k..end * k],
            n_rows: end - start,
            label: idx.clone().map(|i| frame.fine.get(i)).collect(),
            label_raw: idx.clone().map(|i| frame.label_raw.get(i)).collect(),
            family: idx.clone().map(|i| frame.family.get(i)).collect(),
            is_attack: frame.is_attack[start..end].to_vec(),
            dataset: idx.clone().map(|i| frame.dataset.get(i)).collect(),
            source_file: idx.clone().map(|i| frame.source_file.get(i)).collect(),
            source_line: frame.source_line[start..end].to_vec(),
        };
        if n > 0 {
            w.write_rows(&rows)?;
        }
        if n == 0 {
            break;
        }
        start = end;
    }
    w.finish()
}

/// A column cast to `to` (any numeric type to Float32, any string type to Utf8, …), or an error
/// naming the file and the column.
fn column_as(
    batch: &RecordBatch,
    name: &str,
    to: &DataType,
    path: &Path,
) -> Result<Option<ArrayRef>> {
    let Some(c) = batch.column_by_name(name) else {
        return Ok(None);
    };
    if c.data_type() == to {
        return Ok(Some(Arc::clone(c)));
    }
    arrow_cast::cast(c, to).map(Some).map_err(|e| {
        pq_err(
            path,
            format!("column `{name}` ({}) is not {to}: {e}", c.data_type()),
        )
    })
}

/// The non-feature columns [`read_parquet`] reads, with the type each is cast to; a null in any
/// of them rejects the row as `null_<column>`.
const READ_COLUMNS: [(&str, DataType); 7] = [
    ("label", DataType::Utf8),
    ("label_raw", DataType::Utf8),
    ("family", DataType::Utf8),
    ("is_attack", DataType::Boolean),
    ("dataset", DataType::Utf8),
    ("source_file", DataType::Utf8),
    ("source_line", DataType::UInt64),
];

/// Read a Parquet file written by this crate, or by any tool (pyarrow, pandas, Spark, polars, with
/// any codec), into a [`FlowFrame`] with the same accounting as [`crate::read_csv`]:
/// `rows_read == rows_kept + Σ rejected`.
///
/// Feature columns are the canonical names present, of any numeric type (cast to `f32`); a
/// `label` column is required. Missing `label_raw`/`family`/`is_attack` are derived from the
/// label through the manifests, missing `dataset`/`source_file`/`source_line` are filled with
/// `unknown`, the file and the 1-based row number. A row holding a null in any column read is
/// rejected, never filled in: `null_feature` (the first rejections name the column), or
/// `null_label`, `null_is_attack`, … for the other columns.
///
/// ```
/// use flowdata::{convert_csv_to_parquet, read_parquet, ReadOptions};
/// # fn main() -> flowdata::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let csv = dir.path().join("flows.csv");
/// std::fs::write(&csv, "Protocol,Flow Duration,Label\n6,100,BENIGN\n17,20,DrDoS_DNS\n").unwrap();
/// let out = dir.path().join("flows.parquet");
/// convert_csv_to_parquet(&[&csv], &out, &ReadOptions::default())?;
/// let (frame, report) = read_parquet(&out)?;
/// assert_eq!((report.rows_read, report.rows_kept), (2, 2));
/// assert_eq!(frame.feature_names, ["protocol", "flow_duration"]);
/// # Ok(()) }
/// ```
pub fn read_parquet(path: &Path) -> Result<(FlowFrame, ReadReport)> {
    let file = File::open(path).map_err(|error| FlowDataError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| pq_err(path, e))?;
    let schema = builder.schema().clone();
    let meta = schema.metadata();
    let synthetic = meta.get(META_SYNTHETIC).is_some_and(|v| v == "true");
    let excluded: Vec<String> = meta
        .get(META_EXCLUDED)
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default();
    let feature_names: Vec<String> = schema
        .fields()
        .iter()
        .filter(|f| canonical_index(f.name()).is_some())
        .map(|f| f.name().clone())
        .collect();
    if schema.field_with_name("label").is_err() {
        return Err(FlowDataError::NoLabelColumn {
            path: path.to_path_buf(),
        });
    }
    let reader = builder
        .with_batch_size(65536)
        .build()
        .map_err(|e| pq_err(path, e))?;
    let file_str = path.display().to_string();
    let k = feature_names.len();
    let mut feats: Vec<f32> = Vec::new();
    let mut fine: Vec<String> = Vec::new();
    let mut raw: Vec<String> = Vec::new();
    let mut family: Vec<String> = Vec::new();
    let mut attack: Vec<bool> = Vec::new();
    let mut dataset: Vec<String> = Vec::new();
    let mut source: Vec<String> = Vec::new();
    let mut lines: Vec<u64> = Vec::new();
    let mut report = ReadReport {
        dialect: "parquet".into(),
        invalid: "keep".into(),
        synthetic,
        features: feature_names.clone(),
        missing_features: crate::schema::FEATURES
            .iter()
            .map(|f| f.canonical.to_string())
            .filter(|c| !feature_names.contains(c))
            .collect(),
        ..Default::default()
    };
    let reject = |report: &mut ReadReport, row: u64, reason: String, detail: String| {
        if report.first_rejections.len() < 10 {
            report.first_rejections.push(Rejection {
                file: file_str.clone(),
                line: row,
                reason: reason.clone(),
                detail,
            });
        }
        *report.rejected.entry(reason).or_default() += 1;
    };
    let resolver = crate::labels::LabelResolver::new("cic-ddos2019");
    for batch in reader {
        let batch = batch.map_err(|e| pq_err(path, e))?;
        let n = batch.num_rows();
        let base_row = report.rows_read;
        report.rows_read += n as u64;
        let feature_cols: Vec<ArrayRef> = feature_names
            .iter()
            .map(|name| {
                column_as(&batch, name, &DataType::Float32, path)?
                    .ok_or_else(|| pq_err(path, format!("missing feature column `{name}`")))
            })
            .collect::<Result<_>>()?;
        let other: Vec<Option<ArrayRef>> = READ_COLUMNS
            .iter()
            .map(|(name, dt)| column_as(&batch, name, dt, path))
            .collect::<Result<_>>()?;
        let floats: Vec<&Float32Array> = feature_cols
            .iter()
            .map(|c| c.as_any().downcast_ref::<Float32Array>())
            .collect::<Option<_>>()
            .ok_or_else(|| pq_err(path, "feature cast did not give float32"))?;
        let utf8 = |i: usize| {
            other[i]
                .as_ref()
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        };
        let (label, label_raw, fam, ds, src) = (utf8(0), utf8(1), utf8(2), utf8(4), utf8(5));
        let label = label.ok_or_else(|| pq_err(path, "column `label` is not a string column"))?;
        let is_attack = other[3]
            .as_ref()
            .and_then(|c| c.as_any().downcast_ref::<BooleanArray>());
        let src_line = other[6]
            .as_ref()
            .and_then(|c| c.as_any().downcast_ref::<UInt64Array>());
        'rows: for i in 0..n {
            // Parquet has no lines: rejections and a missing `source_line` use the 1-based row.
            let row = base_row + i as u64 + 1;
            if let Some(j) = floats.iter().position(|c| c.is_null(i)) {
                reject(
                    &mut report,
                    row,
                    "null_feature".into(),
                    format!("column '{}'", feature_names[j]),
                );
                continue 'rows;
            }
            for (c, (name, _)) in other.iter().zip(READ_COLUMNS.iter()) {
                if c.as_ref().is_some_and(|c| c.is_null(i)) {
                    reject(
                        &mut report,
                        row,
                        format!("null_{name}"),
                        format!("column '{name}'"),
                    );
                    continue 'rows;
                }
            }
            feats.extend(floats.iter().map(|c| c.value(i)));
            let l = label.value(i).to_string();
            raw.push(label_raw.map_or_else(|| l.clone(), |c| c.value(i).to_string()));
            let f = fam.map_or_else(
                || resolver.resolve(&l, &l).family,
                |c| c.value(i).to_string(),
            );
            attack.push(is_attack.map_or(f != "benign", |c| c.value(i)));
            family.push(f);
            dataset.push(ds.map_or_else(|| "unknown".to_string(), |c| c.value(i).to_string()));
            source.push(src.map_or_else(|| file_str.clone(), |c| c.value(i).to_string()));
            lines.push(src_line.map_or(row, |c| c.value(i)));
            fine.push(l);
        }
    }
    let n = fine.len();
    report.rows_kept = n as u64;
    for ((f, r), fam) in fine.iter().zip(&raw).zip(&family) {
        *report.labels.entry(f.clone()).or_default() += 1;
        *report.labels_raw.entry(r.clone()).or_default() += 1;
        *report.families.entry(fam.clone()).or_default() += 1;
    }
    report.non_finite_kept = feats
        .chunks(k.max(1))
        .filter(|row| row.iter().any(|v| !v.is_finite()))
        .count() as u64;
    let mut datasets: Vec<&String> = dataset.iter().collect();
    datasets.sort();
    datasets.dedup();
    report.dataset = datasets
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("+");
    report.files.push(FileReport {
        path: file_str.clone(),
        dialect: "parquet".into(),
        dataset: report.dataset.clone(),
        rows_read: report.rows_read,
        rows_kept: report.rows_kept,
    });
    let x = Array2::from_shape_vec((n, k), feats).map_err(|e| pq_err(path, e))?;
    let frame = FlowFrame {
        x,
        feature_names,
        fine: Categorical::from_values(&fine),
        family: Categorical::from_values(&family),
        is_attack: attack,
        label_raw: Categorical::from_values(&raw),
        dataset: Categorical::from_values(&dataset),
        source_file: Categorical::from_values(&source),
        source_line: lines,
        excluded_classes: excluded,
        synthetic,
    };
    Ok((frame, report))
}
