//! Writing flows: Parquet with flowdata's canonical feature columns (so `score` and every
//! model read it like a converted CSV) plus the identifier columns, or a CSV exactly as
//! CICFlowMeter V3 writes it. Both write to a temporary file renamed into place on success.
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_array::{UInt16Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use flowdata::{PartialFile, FEATURES};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{FlowmeterError, Result};
use crate::meter::FlowRecord;
use crate::record::{canonical_features, Cell, V3_HEADER};

/// Flows per Parquet row group.
const ROW_GROUP: usize = 1 << 16;

/// Flows converted to Arrow at once (the Arrow writer buffers the encoded row group).
const BATCH: usize = 8192;

/// What the Parquet file keeps of a flow (a few hundred bytes, not its 85 printable cells).
struct ParquetRow {
    features: [f32; 76],
    flow_id: String,
    src_ip: String,
    src_port: u16,
    dst_ip: String,
    dst_port: u16,
    start_us: i64,
    source_file: Arc<str>,
    first_frame: u64,
}

/// The identifier columns written after the features.
pub const IDENTIFIER_COLUMNS: [&str; 8] = [
    "flow_id",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "timestamp",
    "source_file",
    "source_line",
];

fn io(path: &Path) -> impl Fn(std::io::Error) -> FlowmeterError + '_ {
    move |error| FlowmeterError::Io {
        path: path.to_path_buf(),
        error,
    }
}

fn pq(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> FlowmeterError + '_ {
    move |e| FlowmeterError::Output {
        path: path.to_path_buf(),
        why: e.to_string(),
    }
}

/// The Parquet schema: the 76 canonical features (float32, flowdata's names and order), then
/// [`IDENTIFIER_COLUMNS`] (`timestamp` = flow start, µs UTC; `source_line` = the flow's first
/// frame in `source_file`).
pub fn parquet_schema() -> SchemaRef {
    let mut fields: Vec<Field> = FEATURES
        .iter()
        .map(|f| Field::new(f.canonical, DataType::Float32, false))
        .collect();
    fields.extend([
        Field::new("flow_id", DataType::Utf8, false),
        Field::new("src_ip", DataType::Utf8, false),
        Field::new("src_port", DataType::UInt16, false),
        Field::new("dst_ip", DataType::Utf8, false),
        Field::new("dst_port", DataType::UInt16, false),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("source_file", DataType::Utf8, false),
        Field::new("source_line", DataType::UInt64, false),
    ]);
    Arc::new(Schema::new(fields))
}

/// Streams flows into one Parquet file (zstd), 8,192 flows per row group.
pub struct ParquetFlowWriter {
    path: PathBuf,
    partial: PartialFile,
    writer: ArrowWriter<BufWriter<File>>,
    pending: Vec<ParquetRow>,
    rows: u64,
}

impl ParquetFlowWriter {
    /// Opens `path` for writing (the file appears there only on [`Self::finish`]).
    pub fn create(path: &Path) -> Result<Self> {
        let partial = PartialFile::beside(path);
        let file = File::create(partial.path()).map_err(io(path))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).map_err(pq(path))?))
            .set_max_row_group_row_count(Some(ROW_GROUP))
            .build();
        let writer = ArrowWriter::try_new(BufWriter::new(file), parquet_schema(), Some(props))
            .map_err(pq(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            partial,
            writer,
            pending: Vec::with_capacity(BATCH),
            rows: 0,
        })
    }

    /// Adds one flow read from `source_file`.
    pub fn write(&mut self, flow: &FlowRecord, source_file: Arc<str>) -> Result<()> {
        let text = |i: usize| match &flow.cells[i] {
            Cell::Text(s) => s.clone(),
            other => other.to_string(),
        };
        self.pending.push(ParquetRow {
            features: canonical_features(&flow.cells).map(|v| v as f32),
            flow_id: text(0),
            src_ip: text(1),
            src_port: flow.cells[2].as_f64() as u16,
            dst_ip: text(3),
            dst_port: flow.cells[4].as_f64() as u16,
            start_us: flow.start_us,
            source_file,
            first_frame: flow.first_frame,
        });
        if self.pending.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending);
        let mut columns: Vec<ArrayRef> = (0..76)
            .map(|j| {
                Arc::new(Float32Array::from_iter_values(
                    rows.iter().map(|r| r.features[j]),
                )) as ArrayRef
            })
            .collect();
        let strings = |f: fn(&ParquetRow) -> &str| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
        };
        columns.push(strings(|r| &r.flow_id));
        columns.push(strings(|r| &r.src_ip));
        columns.push(Arc::new(UInt16Array::from_iter_values(
            rows.iter().map(|r| r.src_port),
        )));
        columns.push(strings(|r| &r.dst_ip));
        columns.push(Arc::new(UInt16Array::from_iter_values(
            rows.iter().map(|r| r.dst_port),
        )));
        columns.push(Arc::new(
            TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.start_us))
                .with_timezone("UTC"),
        ));
        columns.push(strings(|r| &r.source_file));
        columns.push(Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|r| r.first_frame),
        )));
        let batch = RecordBatch::try_new(parquet_schema(), columns).map_err(|e| {
            FlowmeterError::Output {
                path: self.path.clone(),
                why: e.to_string(),
            }
        })?;
        self.writer.write(&batch).map_err(pq(&self.path))?;
        self.rows += rows.len() as u64;
        self.pending = rows;
        self.pending.clear();
        Ok(())
    }

    /// Writes what is pending, closes the file and renames it into place; returns the rows.
    pub fn finish(mut self) -> Result<u64> {
        self.flush()?;
        let ParquetFlowWriter {
            path,
            partial,
            writer,
            rows,
            ..
        } = self;
        writer.close().map_err(pq(&path))?;
        partial.commit(&path).map_err(|e| FlowmeterError::Output {
            path: path.clone(),
            why: e.to_string(),
        })?;
        Ok(rows)
    }
}

/// Streams flows into a CSV exactly as CICFlowMeter V3 writes its `_ISCX.csv` files (the 85
/// columns of [`V3_HEADER`], `\n` line ends, Java number formatting).
pub struct CsvFlowWriter {
    path: PathBuf,
    partial: PartialFile,
    out: BufWriter<File>,
    rows: u64,
}

impl CsvFlowWriter {
    /// Opens `path` and writes the header (the file appears there only on [`Self::finish`]).
    pub fn create(path: &Path) -> Result<Self> {
        let partial = PartialFile::beside(path);
        let file = File::create(partial.path()).map_err(io(path))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        writeln!(out, "{}", V3_HEADER.join(",")).map_err(io(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            partial,
            out,
            rows: 0,
        })
    }

    /// Adds one flow.
    pub fn write(&mut self, flow: &FlowRecord) -> Result<()> {
        let mut line = String::with_capacity(1024);
        for (i, cell) in flow.cells.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(&cell.to_string());
        }
        line.push('\n');
        self.out
            .write_all(line.as_bytes())
            .map_err(io(&self.path))?;
        self.rows += 1;
        Ok(())
    }

    /// Flushes, closes and renames the file into place; returns the rows.
    pub fn finish(self) -> Result<u64> {
        let CsvFlowWriter {
            path,
            partial,
            out,
            rows,
        } = self;
        out.into_inner()
            .map_err(|e| FlowmeterError::Io {
                path: path.clone(),
                error: e.into_error(),
            })?
            .sync_all()
            .map_err(io(&path))?;
        partial.commit(&path).map_err(|e| FlowmeterError::Output {
            path: path.clone(),
            why: e.to_string(),
        })?;
        Ok(rows)
    }
}
