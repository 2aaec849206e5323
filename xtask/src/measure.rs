//! Timing helpers for the throughput and latency columns (never asserted in tests).
use std::time::Instant;

use ndarray::{Array2, ArrayView2, Axis};

/// A batch of `rows` flows made by repeating `x`'s rows in order: for speed only, labelled
/// "tiled test rows" wherever a number made from it appears.
pub fn tiled_batch(x: ArrayView2<'_, f32>, rows: usize) -> Array2<f32> {
    let idx: Vec<usize> = (0..rows).map(|i| i % x.nrows()).collect();
    x.select(Axis(0), &idx)
}

/// Flows per second of `predict` on `batch`: the best of `repeats` runs after one warm-up
/// (best-of is the least disturbed by other work on a shared machine).
pub fn flows_per_second<F: FnMut(ArrayView2<'_, f32>)>(
    batch: ArrayView2<'_, f32>,
    repeats: usize,
    mut predict: F,
) -> f64 {
    predict(batch);
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        predict(batch);
        best = best.min(t.elapsed().as_secs_f64());
    }
    batch.nrows() as f64 / best.max(1e-12)
}

/// Median wall time in milliseconds of scoring a single flow, over `calls` calls.
pub fn single_flow_latency_ms<F: FnMut(ArrayView2<'_, f32>)>(
    x: ArrayView2<'_, f32>,
    calls: usize,
    mut predict: F,
) -> f64 {
    let mut times: Vec<f64> = (0..calls.max(1))
        .map(|i| {
            let row = x.slice(ndarray::s![i % x.nrows()..i % x.nrows() + 1, ..]);
            let t = Instant::now();
            predict(row);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// This process's peak resident memory (VmHWM) in bytes; `None` off Linux.
pub fn own_peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|kib| kib * 1024)
}

/// Peak RSS of a child `xtask serve-probe` that loads the bundle in `dir` and scores `rows`
/// flows; `None` when the probe cannot run or report.
pub fn serving_peak_rss(dir: &std::path::Path, rows: usize) -> Option<u64> {
    let out = std::process::Command::new(std::env::current_exe().ok()?)
        .arg("serve-probe")
        .arg("--model")
        .arg(dir)
        .arg("--rows")
        .arg(rows.to_string())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}
