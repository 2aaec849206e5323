//! `cargo xtask`: orchestration only. Every computation lives in a library crate.
use clap::{Parser, Subcommand, ValueEnum};

mod bench;
mod convert;
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

/// The device a run actually uses. This build has no CUDA training backend yet (the `cuda`
/// feature of mlp-core is reserved for it), so `auto` says so in one line and uses the CPU.
pub fn resolve_device(requested: Device) -> anyhow::Result<Device> {
    match requested {
        Device::Cpu => Ok(Device::Cpu),
        Device::Auto => {
            eprintln!(
                "device: cpu (this build has no CUDA backend; --device auto falls back to the CPU)"
            );
            Ok(Device::Cpu)
        }
        Device::Cuda => anyhow::bail!(
            "--device cuda: this build has no CUDA backend; use --device cpu or --device auto"
        ),
    }
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
        Command::Reproduce(args) => reproduce::run(&args),
        Command::Train(args) => models::train(&args),
        Command::Evaluate(args) => models::evaluate(&args),
        Command::Explain(args) => models::explain(&args),
        Command::Synth(args) => models::synth(&args),
        Command::Bench(args) => bench::run(&args),
        Command::ServeProbe(args) => serve_probe(&args),
    };
    if let Err(e) = result {
        // One line naming the file; non-zero exit.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
