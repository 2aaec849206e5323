//! `cargo xtask extract`: packet captures, or a live interface with the `live` feature → flows
//! (canonical Parquet, or a CICFlowMeter CSV), with progress and the accounting of every frame.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use flowxai::flowmeter::{
    extract_with_progress, CsvFlowWriter, FlowRecord, MeterOptions, MeterReport, Mode,
    ParquetFlowWriter, Progress, TableOptions,
};
use indicatif::{ProgressBar, ProgressStyle};

/// The flow semantics on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// CICFlowMeter V3, quirks included (the tool behind CIC-IDS2017 and CIC-DDoS2019).
    Cicflowmeter,
    /// The documented fixes of V3: TCP teardown on the FIN exchange or RST, flags over every
    /// packet, no padding as payload, IPv6 and Linux cooked / raw-IP captures read, …
    Corrected,
}

/// Options of `extract`.
#[derive(Args, Debug)]
pub struct ExtractArgs {
    /// Capture files (pcap or pcapng), read in order; each starts with an empty flow table.
    #[arg(long, num_args = 1.., required_unless_present = "interface", conflicts_with = "interface")]
    pub pcap: Vec<PathBuf>,
    /// Capture live from this network interface (e.g. eth0, lo) until Ctrl-C, `--duration`
    /// or `--max-frames`; needs the `live` feature (`cargo xtask` is built without it:
    /// `cargo run --release -p xtask --features live -- extract --interface …`) and capture
    /// rights (root or CAP_NET_RAW).
    #[arg(long)]
    pub interface: Option<String>,
    /// Live: stop after this many seconds.
    #[arg(long, requires = "interface")]
    pub duration: Option<f64>,
    /// Live: stop after this many frames.
    #[arg(long, requires = "interface")]
    pub max_frames: Option<u64>,
    /// Live: a BPF filter applied in the kernel (tcpdump syntax, e.g. "tcp or udp").
    #[arg(long, requires = "interface")]
    pub filter: Option<String>,
    /// Live: put the interface in promiscuous mode.
    #[arg(long, requires = "interface")]
    pub promiscuous: bool,
    /// Output: Parquet with the canonical features and identifier columns, or with `--csv` a
    /// CSV as CICFlowMeter V3 writes it. The accounting goes to `<output>.report.json`.
    #[arg(long)]
    pub output: PathBuf,
    /// Flow semantics.
    #[arg(long, value_enum, default_value_t = ModeArg::Cicflowmeter)]
    pub mode: ModeArg,
    /// Write CICFlowMeter V3's 85-column CSV instead of Parquet.
    #[arg(long)]
    pub csv: bool,
    /// In `cicflowmeter` mode, count Ethernet padding as payload, as the published CIC-IDS2017
    /// CSVs do (V3 decides it at random per run; docs/CICFLOWMETER_V3.md §2.5) [default: true;
    /// corrected mode never counts it].
    #[arg(long, action = clap::ArgAction::Set)]
    pub padding_as_payload: Option<bool>,
    /// Flow timeout in seconds (from the flow's first packet).
    #[arg(long, default_value_t = 120.0)]
    pub flow_timeout: f64,
    /// Activity timeout in seconds (a longer gap closes an active period).
    #[arg(long, default_value_t = 5.0)]
    pub activity_timeout: f64,
    /// Most flows kept open at once; past it the flows that waited longest are written early
    /// (counted as evicted in the report).
    #[arg(long, default_value_t = 1 << 20)]
    pub max_flows: usize,
}

enum Writer {
    Parquet(Box<ParquetFlowWriter>),
    Csv(CsvFlowWriter),
}

/// Run the extraction and print the accounting.
pub fn run(args: &ExtractArgs) -> Result<()> {
    let mode = match args.mode {
        ModeArg::Cicflowmeter => Mode::CicFlowMeter,
        ModeArg::Corrected => Mode::Corrected,
    };
    let mut quirks = mode.quirks();
    if let Some(padding) = args.padding_as_payload {
        quirks.padding_as_payload = padding;
    }
    let options = MeterOptions {
        quirks,
        table: TableOptions {
            flow_timeout_us: (args.flow_timeout * 1e6) as i64,
            activity_timeout_us: (args.activity_timeout * 1e6) as i64,
            max_flows: args.max_flows,
            ..TableOptions::default()
        },
        ..MeterOptions::default()
    };
    if let Some(parent) = args.output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create folder", parent.display()))?;
    }
    let mut writer = if args.csv {
        Writer::Csv(CsvFlowWriter::create(&args.output)?)
    } else {
        Writer::Parquet(Box::new(ParquetFlowWriter::create(&args.output)?))
    };
    let sources: Vec<Arc<str>> = match &args.interface {
        Some(interface) => vec![Arc::from(format!("live:{interface}"))],
        None => args
            .pcap
            .iter()
            .map(|p| Arc::from(p.display().to_string()))
            .collect(),
    };
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let started = Instant::now();
    let mut failure: Option<anyhow::Error> = None;
    let on_flow = |flow: FlowRecord| {
        if failure.is_some() {
            return;
        }
        let written = match &mut writer {
            Writer::Parquet(w) => w.write(&flow, Arc::clone(&sources[flow.capture])),
            Writer::Csv(w) => w.write(&flow),
        };
        if let Err(e) = written {
            failure = Some(e.into());
        }
    };
    let on_progress = |p: Progress| {
        bar.set_message(format!(
            "{}: {} frames, {} flows open",
            sources[p.capture], p.frames, p.open_flows
        ));
        bar.tick();
    };
    let report = match &args.interface {
        Some(interface) => live(args, interface, &options, on_flow, on_progress)?,
        None => extract_with_progress(&args.pcap, &options, on_flow, on_progress)?,
    };
    bar.finish_and_clear();
    if let Some(e) = failure {
        return Err(e);
    }
    let rows = match writer {
        Writer::Parquet(w) => w.finish()?,
        Writer::Csv(w) => w.finish()?,
    };
    let secs = started.elapsed().as_secs_f64();
    let mut report_path = args.output.clone().into_os_string();
    report_path.push(".report.json");
    let report_path = PathBuf::from(report_path);
    std::fs::write(&report_path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("cannot write {}", report_path.display()))?;
    let rejected: Vec<String> = report
        .rejected
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let ends: Vec<String> = report
        .flows
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!(
        "{} frames read = {} in flows + {} not ({})",
        report.frames,
        report.packets_in_flows,
        report.rejected_total(),
        rejected.join(", ")
    );
    println!(
        "{rows} flows written ({}), at most {} open at once",
        ends.join(", "),
        report.peak_open_flows
    );
    if report.capture_dropped > 0 {
        println!(
            "{} frames dropped by the kernel or the interface before they were read",
            report.capture_dropped
        );
    }
    println!(
        "wrote {} and {} in {secs:.2} s ({:.0} frames/s){}",
        args.output.display(),
        report_path.display(),
        report.frames as f64 / secs.max(1e-9),
        crate::measure::own_peak_rss()
            .map(|b| format!(", peak memory {} MiB", b >> 20))
            .unwrap_or_default()
    );
    Ok(())
}

/// Meters a live interface until Ctrl-C or a limit; open flows are written at the end.
#[cfg(feature = "live")]
fn live(
    args: &ExtractArgs,
    interface: &str,
    options: &MeterOptions,
    on_flow: impl FnMut(FlowRecord),
    on_progress: impl FnMut(Progress),
) -> Result<MeterReport> {
    use flowxai::flowmeter::{extract_live, LiveLimits, LiveOptions};
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .context("cannot install the Ctrl-C handler")?;
    }
    let live = LiveOptions {
        promiscuous: args.promiscuous,
        filter: args.filter.clone(),
        ..LiveOptions::default()
    };
    let limits = LiveLimits {
        duration: args.duration.map(std::time::Duration::from_secs_f64),
        frames: args.max_frames,
    };
    eprintln!("capturing on {interface}; Ctrl-C stops and writes the open flows");
    Ok(extract_live(
        interface,
        options,
        &live,
        limits,
        &stop,
        on_flow,
        on_progress,
    )?)
}

#[cfg(not(feature = "live"))]
fn live(
    _: &ExtractArgs,
    interface: &str,
    _: &MeterOptions,
    _: impl FnMut(FlowRecord),
    _: impl FnMut(Progress),
) -> Result<MeterReport> {
    anyhow::bail!(
        "--interface {interface}: this xtask was built without live capture; rebuild with \
         `cargo run --release -p xtask --features live -- extract --interface {interface} …` \
         (needs libpcap-dev)"
    )
}
