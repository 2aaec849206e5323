//! `cargo xtask`: orchestration only. Every computation lives in a library crate.
use clap::{Parser, Subcommand, ValueEnum};

mod convert;
mod measure;
mod reproduce;

#[derive(Parser)]
#[command(name = "xtask", about = "flowxai tasks: convert, train, evaluate, explain, reproduce")]
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
}

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
            eprintln!("device: cpu (this build has no CUDA backend; --device auto falls back to the CPU)");
            Ok(Device::Cpu)
        }
        Device::Cuda => anyhow::bail!(
            "--device cuda: this build has no CUDA backend; use --device cpu or --device auto"
        ),
    }
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Convert(args) => convert::run(&args),
        Command::Reproduce(args) => reproduce::run(&args),
    };
    if let Err(e) = result {
        // One line naming the file; non-zero exit.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
