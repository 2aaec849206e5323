//! `cargo xtask convert`: CSV files or folders → one Parquet file and its report.
use std::path::PathBuf;

use anyhow::{anyhow, Result};
use clap::Args;
use flowxai::flowdata::{convert_csv_to_parquet, Dialect, InvalidPolicy, ReadOptions};

/// Arguments of `convert`.
#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// CSV files or folders (folders: every `.csv` inside, recursively, sorted).
    #[arg(long, num_args = 1.., required = true)]
    pub input: Vec<PathBuf>,
    /// Output Parquet file; the report goes to `<output>.report.json`.
    #[arg(long)]
    pub output: PathBuf,
    /// Header dialect: auto, cic-long (CIC-IDS2017/CIC-DDoS2019), cic-short (CSE-CIC-IDS2018),
    /// cicflowmeter-v4 (TII-SSRC-23).
    #[arg(long, default_value = "auto")]
    pub dialect: String,
    /// Dataset manifest for labels (default: the dialect's dataset).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Rows with Infinity/NaN/empty feature cells: drop (default) or keep.
    #[arg(long, default_value = "drop")]
    pub invalid: String,
}

/// Run the conversion and print a short summary.
pub fn run(args: &ConvertArgs) -> Result<()> {
    let dialect = match args.dialect.as_str() {
        "auto" => None,
        d => Some(Dialect::from_name(d).ok_or_else(|| {
            anyhow!("unknown dialect `{d}` (use auto, cic-long, cic-short or cicflowmeter-v4)")
        })?),
    };
    let invalid = InvalidPolicy::from_name(&args.invalid)
        .ok_or_else(|| anyhow!("unknown --invalid `{}` (use drop or keep)", args.invalid))?;
    let opts = ReadOptions {
        dialect,
        dataset: args.dataset.clone(),
        invalid,
        block_bytes: 64 << 20,
        ..ReadOptions::default()
    };
    if let Some(parent) = args.output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| anyhow!("{}: cannot create folder: {e}", parent.display()))?;
    }
    let start = std::time::Instant::now();
    let report = convert_csv_to_parquet(&args.input, &args.output, &opts)?;
    let mut report_path = args.output.clone().into_os_string();
    report_path.push(".report.json");
    let report_path = PathBuf::from(report_path);
    report.write_json(&report_path)?;
    println!("{}", report.summary());
    println!(
        "wrote {} and {} in {:.2} s{}",
        args.output.display(),
        report_path.display(),
        start.elapsed().as_secs_f64(),
        crate::measure::own_peak_rss()
            .map(|b| format!(", peak memory {} MiB", b >> 20))
            .unwrap_or_default()
    );
    Ok(())
}
