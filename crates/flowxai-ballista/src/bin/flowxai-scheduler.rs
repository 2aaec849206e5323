//! `flowxai-scheduler`: a Ballista scheduler that can plan flowxai queries.
//!
//! It needs no model: it registers the flowxai UDFs planning-only (their return types do not
//! depend on the model); executors run them.
use std::net::SocketAddr;

use clap::Parser;

/// A Ballista scheduler with the flowxai UDFs registered for planning.
#[derive(Debug, Parser)]
#[command(name = "flowxai-scheduler", version)]
struct Args {
    /// Address to listen on (executors and clients connect here). Loopback by default: the
    /// scheduler has no authentication and no TLS, so bind another address only on a private
    /// network (README, "Security").
    #[arg(long, default_value = "127.0.0.1:50050")]
    bind: SocketAddr,
    /// Host name executors and clients use for this scheduler.
    #[arg(long, default_value = "localhost")]
    external_host: String,
    /// Fill each executor's slots before the next one's (Ballista's default "bias"); the
    /// default here spreads tasks round-robin over executors.
    #[arg(long)]
    bias: bool,
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("error: {}", flowxai::error_chain(e.as_ref()));
        std::process::exit(1);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    eprintln!(
        "flowxai-scheduler: listening on {} (flowxai UDFs registered for planning)",
        args.bind
    );
    flowxai_ballista::run_scheduler(flowxai_ballista::SchedulerOptions {
        bind: args.bind,
        external_host: args.external_host,
        round_robin: !args.bias,
    })
    .await?;
    Ok(())
}
