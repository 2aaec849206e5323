//! `cargo xtask`: orchestration only. Every computation lives in a library crate.
use clap::{Parser, Subcommand, ValueEnum};
use flowxai::mlp_core::{self as mlp_core, backend::Backend};

mod bench;
mod convert;
mod extract;
mod measure;
mod models;
mod reproduce;

#[derive(Parser)]
#[command(
    name = "xtask",
    about = "flowxai tasks: convert, train, evaluate, explain, reproduce"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert CICFlowMeter CSVs (any dialect) to canonical Parquet (zstd) + `<out>.report.json`.
    Convert(convert::ConvertArgs),
    /// Packet captures (pcap, pcapng) to flows as CICFlowMeter V3 computes them: canonical
    /// Parquet (or V3's CSV with `--csv`) + `<out>.report.json`.
    Extract(extract::ExtractArgs),
    /// Run every experiment of the thesis on the real samples and write results/ (RESULTS.md,
    /// report.html, figures/, results.json, parquet/, models/).
    Reproduce(reproduce::ReproduceArgs),
    /// Fit a model bundle (preprocessing + model) on labelled flows (stratified 70/15/15 split)
    /// and print its test classification report.
    Train(models::TrainArgs),
    /// Score labelled flows with a bundle; labels are matched by name, so a model trained on one
    /// dataset can be evaluated on another.
    Evaluate(models::EvaluateArgs),
    /// SHAP values for flows: exact TreeSHAP for a forest, KernelSHAP for MLPs; JSON + figures.
    Explain(models::ExplainArgs),
    /// Write resampled real rows with ±1 % jitter as a CSV, for speed tests only (every row
    /// says "synthetic (resampled)").
    Synth(models::SynthArgs),
    /// Run the criterion benches and regenerate the measured table in docs/BENCHMARKS.md.
    Bench(bench::BenchArgs),
    /// Score (and explain) flowdata Parquet files with a bundle on `--engine local | datafusion |
    /// ballista://host:port`; runs the `flowxai-score` binary of crates/flowxai-ballista (its
    /// first build compiles DataFusion and Ballista: ~25 min on 2 cores). `score --help` shows
    /// its options.
    #[command(disable_help_flag = true)]
    Score(ScoreArgs),
    /// Load a bundle, score `--rows` flows of zeros and print this process's peak RSS in bytes
    /// (used by `reproduce` for the memory column).
    #[command(hide = true)]
    ServeProbe(ServeProbeArgs),
}

/// Options of `serve-probe`.
#[derive(clap::Args, Debug)]
struct ServeProbeArgs {
    /// Bundle folder.
    #[arg(long)]
    model: std::path::PathBuf,
    /// Flows to score in one batch.
    #[arg(long, default_value_t = 8192)]
    rows: usize,
}

/// Options of `score`: passed unchanged to `flowxai-score`.
#[derive(clap::Args, Debug)]
struct ScoreArgs {
    /// `--engine`, `--model`, `--input`, `--output`, `--proba`, `--explain K`, … (see `--help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Runs `flowxai-score` in the `scale` profile (the one the scale-out tests and benches use, so
/// DataFusion is compiled once).
fn score(args: &ScoreArgs) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "run",
            "--quiet",
            "--profile",
            "scale",
            "-p",
            "flowxai-ballista",
        ])
        .args(["--bin", "flowxai-score", "--"])
        .args(&args.args)
        .status()?;
    if !status.success() {
        anyhow::bail!("flowxai-score failed ({status})");
    }
    Ok(())
}

fn serve_probe(args: &ServeProbeArgs) -> anyhow::Result<()> {
    let bundle = flowxai::bundle::ModelBundle::load(&args.model)?;
    let x = ndarray::Array2::<f32>::zeros((args.rows, bundle.feature_names.len()));
    std::hint::black_box(bundle.predict_proba(x.view())?);
    let peak = measure::own_peak_rss()
        .ok_or_else(|| anyhow::anyhow!("peak RSS is not available on this system"))?;
    println!("{peak}");
    Ok(())
}

/// The thesis' 70 / 15 / 15 split (train / test / validation; THESIS.md), stratified here so
/// every class of a small sample reaches every part.
pub const THESIS_SPLIT: flowxai::flowdata::SplitFractions = flowxai::flowdata::SplitFractions {
    train: 0.70,
    test: 0.15,
    valid: 0.15,
};

/// Where the MLP trains and runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Device {
    /// The GPU when this build has the CUDA backend and a device opens, else the CPU.
    Auto,
    /// The CPU reference backend.
    Cpu,
    /// The GPU; an error when it is not available.
    Cuda,
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Device::Auto => "auto",
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
        })
    }
}

/// The training backend for `--device` and the name reports show (`cpu`, `cuda (…)`).
///
/// `auto` uses CUDA when this build has the `cuda` feature, the driver loads and a context
/// opens, else the CPU, saying why in one line; `cuda` is an error when CUDA is not usable.
/// Never a panic (`mlp_core::backend::select`).
pub fn resolve_device(requested: Device) -> anyhow::Result<(Box<dyn Backend>, String)> {
    let device = match requested {
        Device::Auto => mlp_core::backend::Device::Auto,
        Device::Cpu => mlp_core::backend::Device::Cpu,
        Device::Cuda => mlp_core::backend::Device::Cuda,
    };
    let (backend, message) = mlp_core::backend::select(device).map_err(|e| {
        anyhow::anyhow!("--device {requested}: {e}; use --device cpu or --device auto")
    })?;
    eprintln!("{message}");
    let name = backend.name();
    Ok((backend, name))
}

/// "CPU model, N threads available", for reports.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {threads} threads available")
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Convert(args) => convert::run(&args),
        Command::Extract(args) => extract::run(&args),
        Command::Reproduce(args) => reproduce::run(&args),
        Command::Train(args) => models::train(&args),
        Command::Evaluate(args) => models::evaluate(&args),
        Command::Explain(args) => models::explain(&args),
        Command::Synth(args) => models::synth(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Score(args) => score(&args),
        Command::ServeProbe(args) => serve_probe(&args),
    };
    if let Err(e) = result {
        // One line naming the file; non-zero exit.
        eprintln!("error: {}", flowxai::error_chain(e.as_ref()));
        std::process::exit(1);
    }
}
