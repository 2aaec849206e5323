//! `score`: the same scoring job on three engines, writing the same Parquet output.
//!
//! Output columns: the pass-through columns `source_file`, `source_line`, `label` (those the
//! input has), `predicted`, then with [`ScoreOptions::probabilities`] one `p_<class>` column per
//! class and with [`ScoreOptions::explain_top_k`] an `explanation` column (`feature=+value;…`).
//!
//! A row with a null in a feature the model reads is not scored on any engine (models need
//! every feature, and no value is made up for it); [`ScoreSummary`] counts those rows, so
//! rows read = scored + rejected.
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float32Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::compute::kernels::boolean::{and, is_not_null};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt64Type};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::functions_nested::expr_fn::{array_element, array_max, array_position, make_array};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::prelude::{cast, ident, lit, Expr, ParquetReadOptions, SessionContext};
use futures::StreamExt;
use rayon::prelude::*;

use flowxai::bundle::argmax_rows;
use flowxai_datafusion::udf::feature_rows;
use flowxai_datafusion::{register, ScoreExprs, ScoringModel};

/// Pass-through columns copied from the input when present.
pub const PASS_THROUGH: [&str; 3] = ["source_file", "source_line", "label"];

/// Where the scoring runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// The bundle called directly on rows read by flowdata (no query engine).
    Local,
    /// A DataFusion plan in this process.
    DataFusion,
    /// A Ballista cluster: the scheduler's `host:port`.
    Ballista(String),
}

impl std::str::FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(Engine::Local),
            "datafusion" => Ok(Engine::DataFusion),
            _ => match s
                .strip_prefix("ballista://")
                .or_else(|| s.strip_prefix("df://"))
            {
                Some(addr) if !addr.is_empty() => Ok(Engine::Ballista(addr.to_string())),
                _ => Err(format!(
                    "unknown engine `{s}`: use local, datafusion or ballista://host:port"
                )),
            },
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Engine::Local => f.write_str("local"),
            Engine::DataFusion => f.write_str("datafusion"),
            Engine::Ballista(addr) => write!(f, "ballista://{addr}"),
        }
    }
}

/// What to compute and where to write it.
#[derive(Debug, Clone)]
pub struct ScoreOptions {
    /// flowdata Parquet files (canonical float32 feature columns).
    pub inputs: Vec<PathBuf>,
    /// Where the scored rows go: a path ending in `.parquet` is one file written by this
    /// process (on Ballista every row is fetched from the executors first); any other path is a
    /// directory (new or empty) that receives one Parquet file per partition, written where the
    /// partition was scored — on Ballista by the executors, so on a cluster it must be storage
    /// that they and the client share, and no row passes through the client. `None`: rows are
    /// only counted (benchmarks).
    pub output: Option<PathBuf>,
    /// Add `p_<class>` columns.
    pub probabilities: bool,
    /// Add an `explanation` column with the top-k SHAP features of the predicted class.
    pub explain_top_k: Option<usize>,
    /// DataFusion partitions (tasks per stage on Ballista).
    pub target_partitions: usize,
}

/// What a score run did: `rows_read == rows + rows_null_feature`.
#[derive(Debug, Clone)]
pub struct ScoreSummary {
    /// Engine used.
    pub engine: Engine,
    /// Rows in the inputs (from their Parquet footers).
    pub rows_read: usize,
    /// Flows scored.
    pub rows: usize,
    /// Rows not scored because a feature the model reads is null.
    pub rows_null_feature: usize,
    /// Wall time, reading to writing.
    pub seconds: f64,
}

/// Scores `options.inputs` with `model` on `engine`.
pub async fn score(
    engine: &Engine,
    model: Arc<ScoringModel>,
    options: &ScoreOptions,
) -> DfResult<ScoreSummary> {
    let start = Instant::now();
    let rows_read = input_rows(&options.inputs)?;
    let directory = output_directory(options)?;
    let rows = match engine {
        Engine::Local => score_local(&model, options, directory)?,
        Engine::DataFusion => {
            let config = datafusion::prelude::SessionConfig::new()
                .with_target_partitions(options.target_partitions.max(1));
            let ctx = SessionContext::new_with_config(config);
            register(&ctx, Some(Arc::clone(&model)));
            match directory {
                Some(dir) => write_partitions(&ctx, &model, options, dir).await?,
                None => score_on_context(&ctx, &model, options).await?,
            }
        }
        Engine::Ballista(addr) => {
            let ctx = crate::connect(
                &format!("df://{addr}"),
                Arc::clone(&model),
                options.target_partitions,
            )
            .await?;
            match directory {
                Some(dir) => write_partitions(&ctx, &model, options, dir).await,
                None => score_on_context(&ctx, &model, options).await,
            }
            .map_err(explain_rejected_task)?
        }
    };
    Ok(ScoreSummary {
        engine: engine.clone(),
        rows_read,
        rows,
        rows_null_feature: rows_read.saturating_sub(rows),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Rows of every input, from the Parquet footers (no data read).
fn input_rows(inputs: &[PathBuf]) -> DfResult<usize> {
    let mut rows = 0;
    for input in inputs {
        let file = File::open(input)
            .map_err(|e| DataFusionError::Execution(format!("{}: {e}", input.display())))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| DataFusionError::Execution(format!("{}: {e}", input.display())))?;
        rows += builder.metadata().file_metadata().num_rows() as usize;
    }
    Ok(rows)
}

/// The output directory when `options.output` names one (not a `.parquet` file), created if
/// missing; an error if it already holds anything (files of two runs would mix).
fn output_directory(options: &ScoreOptions) -> DfResult<Option<&Path>> {
    let Some(path) = options.output.as_deref() else {
        return Ok(None);
    };
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
    {
        return Ok(None);
    }
    let at = |e: std::io::Error| DataFusionError::Execution(format!("{}: {e}", path.display()));
    std::fs::create_dir_all(path).map_err(at)?;
    if std::fs::read_dir(path).map_err(at)?.next().is_some() {
        return Err(DataFusionError::Execution(format!(
            "output directory {} is not empty: give a new or empty directory (or a .parquet file)",
            path.display()
        )));
    }
    Ok(Some(path))
}

/// Runs the scoring projection on `ctx` and writes one Parquet file per partition into `dir`
/// where the partition runs (DataFusion's `write_parquet`; on Ballista the executors write).
/// Returns the rows written.
pub async fn write_partitions(
    ctx: &SessionContext,
    model: &ScoringModel,
    options: &ScoreOptions,
    dir: &Path,
) -> DfResult<usize> {
    // A trailing separator makes DataFusion treat the path as a directory.
    let url = format!("{}/", dir.display().to_string().trim_end_matches('/'));
    let counts = scoring_dataframe(ctx, model, options)
        .await?
        .write_parquet(&url, DataFrameWriteOptions::new(), None)
        .await?;
    let mut rows = 0usize;
    for batch in &counts {
        let column = batch
            .column(0)
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| {
                DataFusionError::Internal("write_parquet did not return a row count".into())
            })?;
        rows += column.iter().flatten().sum::<u64>() as usize;
    }
    Ok(rows)
}

/// The scoring projection over `inputs` on any context with the UDFs registered.
pub async fn scoring_dataframe(
    ctx: &SessionContext,
    model: &ScoringModel,
    options: &ScoreOptions,
) -> DfResult<datafusion::dataframe::DataFrame> {
    let paths: Vec<String> = options
        .inputs
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let df = ctx
        .read_parquet(paths, ParquetReadOptions::default())
        .await?;
    let present: Vec<&str> = PASS_THROUGH
        .iter()
        .copied()
        .filter(|c| df.schema().field_with_unqualified_name(c).is_ok())
        .collect();
    let exprs = ScoreExprs::new(ctx, model)?;
    // Rows with a null feature are not scored (the local path drops the same rows).
    let complete = model
        .feature_names()
        .iter()
        .map(|f| ident(f.as_str()).is_not_null())
        .reduce(|a, b| a.and(b));
    let df = match complete {
        Some(predicate) => df.filter(predicate)?,
        None => df,
    };
    // DataFusion reads Parquet strings as Utf8View; cast back so every engine writes the same
    // Utf8 columns as the direct path (measured: no speed difference either way).
    let inner_pass: Vec<Expr> = present
        .iter()
        .map(|c| {
            match df
                .schema()
                .field_with_unqualified_name(c)
                .map(|f| f.data_type().clone())
            {
                Ok(DataType::Utf8View | DataType::LargeUtf8) => {
                    cast(ident(*c), DataType::Utf8).alias(*c)
                }
                _ => ident(*c),
            }
        })
        .collect();
    let mut inner = inner_pass;
    let mut outer: Vec<Expr> = present.iter().map(|c| ident(*c)).collect();
    if options.probabilities {
        // One model pass: the label is the class at the first maximum of the probabilities
        // (ties → lowest index, as `argmax_rows`).
        inner.push(exprs.predict_proba().alias("__proba"));
        let classes: Vec<Expr> = exprs.classes().iter().map(|c| lit(c.clone())).collect();
        let position = array_position(ident("__proba"), array_max(ident("__proba")), lit(1i64));
        let position = cast(position, DataType::Int64);
        outer.push(array_element(make_array(classes), position).alias("predicted"));
        outer.extend(exprs.class_probabilities(ident("__proba")));
    } else {
        inner.push(exprs.predict_label().alias("predicted"));
        outer.push(ident("predicted"));
    }
    if let Some(k) = options.explain_top_k {
        inner.push(exprs.explain(k).alias("explanation"));
        outer.push(ident("explanation"));
    }
    df.select(inner)?.select(outer)
}

/// Runs the scoring projection of [`scoring_dataframe`] on `ctx` (DataFusion or a Ballista
/// client), streams every row here and writes them to `options.output` (one `.parquet` file)
/// or counts them. Returns the rows scored.
pub async fn score_on_context(
    ctx: &SessionContext,
    model: &ScoringModel,
    options: &ScoreOptions,
) -> DfResult<usize> {
    let df = scoring_dataframe(ctx, model, options).await?;
    let mut stream = df.execute_stream().await?;
    let mut sink = OutputSink::new(options.output.clone());
    while let Some(batch) = stream.next().await {
        sink.write(&batch?)?;
    }
    // No batch at all: still leave a valid (empty) file with the scoring schema.
    sink.finish(Some(stream.schema()))
}

/// Counts the scored rows and, when an output path is set, writes them to one Parquet file
/// (opened at the first batch, whose schema it takes).
struct OutputSink {
    path: Option<PathBuf>,
    writer: Option<ArrowWriter<File>>,
    rows: usize,
}

impl OutputSink {
    fn new(path: Option<PathBuf>) -> Self {
        Self {
            path,
            writer: None,
            rows: 0,
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> DfResult<()> {
        self.rows += batch.num_rows();
        let Some(path) = self.path.as_deref() else {
            return Ok(());
        };
        let writer = match self.writer.as_mut() {
            Some(w) => w,
            None => self.writer.insert(open_writer(path, batch.schema())?),
        };
        writer.write(batch)?;
        Ok(())
    }

    /// Closes the file; with no batch written, `empty_schema` (when known) still gives a valid,
    /// empty file. Returns the rows seen.
    fn finish(self, empty_schema: Option<SchemaRef>) -> DfResult<usize> {
        match (self.writer, self.path, empty_schema) {
            (Some(w), _, _) => {
                w.close()?;
            }
            (None, Some(path), Some(schema)) => {
                open_writer(&path, schema)?.close()?;
            }
            _ => {}
        }
        Ok(self.rows)
    }
}

fn open_writer(path: &Path, schema: SchemaRef) -> DfResult<ArrowWriter<File>> {
    let file = File::create(path)
        .map_err(|e| DataFusionError::Execution(format!("{}: {e}", path.display())))?;
    Ok(ArrowWriter::try_new(file, schema, None)?)
}

/// Engine-free scoring, the baseline the engines are compared with: every file is read with
/// the Arrow Parquet reader (only the model's features and the pass-through columns, files in
/// parallel), scored by the bundle batch by batch and written in input order.
fn score_local(
    model: &ScoringModel,
    options: &ScoreOptions,
    directory: Option<&Path>,
) -> DfResult<usize> {
    if let Some(dir) = directory {
        // One output file per input file, each written by the thread that scored it.
        let rows: Vec<usize> = options
            .inputs
            .par_iter()
            .enumerate()
            .map(|(i, input)| {
                let batches = score_file(model, input, options)?;
                let mut sink = OutputSink::new(Some(dir.join(format!("part-{i:05}.parquet"))));
                for batch in &batches {
                    sink.write(batch)?;
                }
                sink.finish(None)
            })
            .collect::<DfResult<_>>()?;
        return Ok(rows.iter().sum());
    }
    let scored: Vec<Vec<RecordBatch>> = options
        .inputs
        .par_iter()
        .map(|input| score_file(model, input, options))
        .collect::<DfResult<_>>()?;
    let mut sink = OutputSink::new(options.output.clone());
    for batch in scored.iter().flatten() {
        sink.write(batch)?;
    }
    sink.finish(None)
}

fn score_file(
    model: &ScoringModel,
    input: &Path,
    options: &ScoreOptions,
) -> DfResult<Vec<RecordBatch>> {
    let in_file =
        |e: &dyn std::fmt::Display| DataFusionError::Execution(format!("{}: {e}", input.display()));
    let file = File::open(input).map_err(|e| in_file(&e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    let schema = builder.schema().clone();
    let wanted: Vec<&str> = PASS_THROUGH
        .iter()
        .copied()
        .chain(model.feature_names().iter().map(String::as_str))
        .collect();
    let mut indices = Vec::new();
    for name in &wanted {
        match schema.index_of(name) {
            Ok(i) => indices.push(i),
            Err(_) if PASS_THROUGH.contains(name) => {}
            Err(_) => return Err(in_file(&format!("no feature column `{name}`"))),
        }
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(65536)
        .build()?;
    let classes = model.classes();
    let mut out = Vec::new();
    for batch in reader {
        let batch = without_null_features(batch?, model.feature_names())?;
        let columns: Vec<ArrayRef> = model
            .feature_names()
            .iter()
            .map(|name| {
                batch
                    .column_by_name(name)
                    .cloned()
                    .ok_or_else(|| in_file(&format!("no feature column `{name}`")))
            })
            .collect::<DfResult<_>>()?;
        let x = feature_rows(
            &input.display().to_string(),
            model.feature_names(),
            &columns,
        )?;
        let proba = model.predict_proba(x.view())?;
        let mut fields = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        for name in PASS_THROUGH {
            if let Some(c) = batch.column_by_name(name) {
                fields.push(Field::new(name, c.data_type().clone(), true));
                columns.push(Arc::clone(c));
            }
        }
        fields.push(Field::new("predicted", DataType::Utf8, true));
        let predicted = argmax_rows(proba.view());
        columns.push(Arc::new(StringArray::from_iter_values(
            predicted.iter().map(|&c| classes[c].as_str()),
        )));
        if options.probabilities {
            for (c, name) in classes.iter().enumerate() {
                fields.push(Field::new(format!("p_{name}"), DataType::Float32, true));
                columns.push(Arc::new(Float32Array::from(proba.column(c).to_vec())));
            }
        }
        if let Some(k) = options.explain_top_k {
            fields.push(Field::new("explanation", DataType::Utf8, true));
            columns.push(Arc::new(StringArray::from(
                model.explain_top_k(x.view(), k)?,
            )));
        }
        out.push(RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns,
        )?);
    }
    Ok(out)
}

/// `batch` without its rows that hold a null in any of `features` (the rows the engines' filter
/// drops too).
fn without_null_features(batch: RecordBatch, features: &[String]) -> DfResult<RecordBatch> {
    let mut keep: Option<BooleanArray> = None;
    for name in features {
        if let Some(c) = batch.column_by_name(name) {
            if c.null_count() > 0 {
                let present = is_not_null(c)?;
                keep = Some(match keep {
                    Some(k) => and(&k, &present)?,
                    None => present,
                });
            }
        }
    }
    match keep {
        Some(k) => Ok(filter_record_batch(&batch, &k)?),
        None => Ok(batch),
    }
}

/// Ballista reports an executor that cannot decode a task's plan (e.g. a stock executor without
/// the flowxai UDFs) only as "could not be prepared or was rejected": say what is missing.
fn explain_rejected_task(e: DataFusionError) -> DataFusionError {
    let text = e.to_string();
    if text.contains("could not be prepared") || text.contains("rejected by executor") {
        e.context(
            "an executor could not prepare a flowxai task: every executor must run the flowxai \
             UDFs (start `flowxai-executor --model <bundle>`, not a stock ballista-executor)",
        )
    } else {
        e
    }
}
