//! `flowxai-score`: score (and explain) flowdata Parquet files on local, DataFusion or Ballista.
//!
//! `cargo xtask score …` runs this binary.
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use flowxai_ballista::{score, Engine, ScoreOptions};
use flowxai_datafusion::ScoringModel;

/// Score flows with a model bundle on the chosen engine and write a Parquet file.
#[derive(Debug, Parser)]
#[command(name = "flowxai-score", version)]
struct Args {
    /// `local` (the bundle called directly), `datafusion` (this process) or
    /// `ballista://host:port` (a flowxai-scheduler).
    #[arg(long, default_value = "local")]
    engine: Engine,
    /// Model bundle directory.
    #[arg(long)]
    model: PathBuf,
    /// flowdata Parquet files (`cargo xtask convert` writes them).
    #[arg(long, required = true, num_args = 1..)]
    input: Vec<PathBuf>,
    /// Output: a `.parquet` file (written by this process), or any other path: a new or empty
    /// directory receiving one Parquet file per partition, written where it was scored (on
    /// Ballista by the executors; use storage they and this process share).
    #[arg(long)]
    output: PathBuf,
    /// Add one `p_<class>` probability column per class.
    #[arg(long)]
    proba: bool,
    /// Add an `explanation` column: the top-K SHAP features of the predicted class.
    #[arg(long, value_name = "K")]
    explain: Option<usize>,
    /// KernelSHAP coalitions per flow for MLP bundles (forests are explained exactly).
    #[arg(long, default_value_t = flowxai_datafusion::DEFAULT_KERNEL_NSAMPLES)]
    explain_nsamples: usize,
    /// Partitions (parallel tasks per stage).
    #[arg(long, default_value_t = 4)]
    partitions: usize,
    /// Refuse any input or output outside this folder (symbolic links and `..` resolved).
    #[arg(long, value_name = "DIR")]
    data_root: Option<PathBuf>,
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("error: {}", flowxai::error_chain(e.as_ref()));
        std::process::exit(1);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    if let Some(dir) = &args.data_root {
        let root = flowxai_ballista::DataRoot::new(dir)?;
        for path in args.input.iter().chain([&args.output]) {
            root.confine(path)?;
        }
    }
    let model = ScoringModel::load(&args.model)
        .with_context(|| format!("loading {}", args.model.display()))?
        .with_kernel_nsamples(args.explain_nsamples);
    let options = ScoreOptions {
        inputs: args.input.clone(),
        output: Some(args.output.clone()),
        probabilities: args.proba,
        explain_top_k: args.explain,
        target_partitions: args.partitions,
    };
    let summary = score(&args.engine, Arc::new(model), &options)
        .await
        .with_context(|| format!("scoring on {}", args.engine))?;
    println!(
        "scored {} flows on {} in {:.2} s ({:.0} flows/s) → {}",
        summary.rows,
        summary.engine,
        summary.seconds,
        summary.rows as f64 / summary.seconds.max(1e-9),
        args.output.display()
    );
    println!(
        "{} rows read = {} scored + {} not scored (a feature the model reads is null)",
        summary.rows_read, summary.rows, summary.rows_null_feature
    );
    Ok(())
}
