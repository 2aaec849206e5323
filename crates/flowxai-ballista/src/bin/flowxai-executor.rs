//! `flowxai-executor`: a Ballista executor that runs the flowxai UDFs with one model bundle.
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use flowxai_datafusion::ScoringModel;

/// A Ballista executor holding one flowxai model bundle (loaded once, at start).
#[derive(Debug, Parser)]
#[command(name = "flowxai-executor", version)]
struct Args {
    /// Model bundle directory (as written by `cargo xtask train` / `reproduce`); every executor
    /// of a cluster holds the same bundle as the client.
    #[arg(long)]
    model: PathBuf,
    /// Scheduler host.
    #[arg(long, default_value = "localhost")]
    scheduler_host: String,
    /// Scheduler port.
    #[arg(long, default_value_t = 50050)]
    scheduler_port: u16,
    /// Interface to bind the data (Flight) and control (gRPC) services to. Loopback by
    /// default; another interface needs `--data-root` (README, "Security").
    #[arg(long, default_value = "127.0.0.1")]
    bind_host: String,
    /// Every file a task reads or writes must lie inside this folder; tasks reaching outside
    /// it fail, naming the path and the root. Required when binding off loopback.
    #[arg(long, value_name = "DIR")]
    data_root: Option<PathBuf>,
    /// Host name the scheduler and other executors use to reach this executor.
    #[arg(long)]
    external_host: Option<String>,
    /// Arrow Flight port.
    #[arg(long, default_value_t = 50051)]
    port: u16,
    /// gRPC port.
    #[arg(long, default_value_t = 50052)]
    grpc_port: u16,
    /// Concurrent tasks (default: the number of cores).
    #[arg(long)]
    concurrent_tasks: Option<usize>,
    /// Directory for task outputs (default: a fresh temporary directory).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("error: {}", flowxai::error_chain(e.as_ref()));
        std::process::exit(1);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let loopback = args
        .bind_host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
        || args.bind_host == "localhost";
    if !loopback && args.data_root.is_none() {
        anyhow::bail!(
            "--bind-host {} is not loopback: give --data-root DIR, the folder tasks may read and \
             write (anyone who reaches this executor can submit tasks)",
            args.bind_host
        );
    }
    let data_root = args
        .data_root
        .as_deref()
        .map(flowxai_ballista::DataRoot::new)
        .transpose()?;
    let dir = &args.model;
    let model = ScoringModel::load(dir).with_context(|| format!("loading {}", dir.display()))?;
    eprintln!(
        "flowxai-executor: model {} ({}, {} classes) from {}",
        model.hash(),
        model.kind(),
        model.classes().len(),
        dir.display()
    );
    let vcores = args
        .concurrent_tasks
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    flowxai_ballista::run_executor(flowxai_ballista::ExecutorOptions {
        bind_host: args.bind_host,
        external_host: args.external_host,
        port: args.port,
        grpc_port: args.grpc_port,
        scheduler_host: args.scheduler_host,
        scheduler_port: args.scheduler_port,
        vcores,
        work_dir: args.work_dir,
        model: Some(Arc::new(model)),
        data_root,
    })
    .await?;
    Ok(())
}
