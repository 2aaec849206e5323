//! `flowmeter/extract_v3`: packets/s of `flowmeter::extract` (CICFlowMeter V3 mode, flows
//! written as canonical Parquet) on a 10M-frame capture.
//!
//! Data: **synthetic (replayed real traffic)** — every Ethernet frame of the real captures in
//! `../shared/pcaps` replayed until 10,000,000 frames (`flowmeter::write_replayed_capture`:
//! copies 200 s apart, addresses changed per copy), written once to
//! `target/flowmeter-bench/replay_10m.pcap` (≈ 1.4 GB). Speed only. `extract_v3_1m` runs on
//! its first 1,000,000 frames (`replay_1m.pcap`, the same replay cut short), the capture Python
//! cicflowmeter is timed on (it needs over an hour for the 10M).
//!
//! Run: `benches/run_pairs.sh flowmeter` (this bench, then `benches/peers/flowmeter_peers.py`:
//! NFStream, Python cicflowmeter and the CICFlowMeter V3 jar on the same file), or by hand
//! `cargo bench --bench flowmeter`. One thread: the meter reads, decodes and assembles flows
//! on the calling thread.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const FRAMES: u64 = 10_000_000;
const PREFIX_FRAMES: u64 = 1_000_000;

/// The replayed capture of `frames` frames, written on first use.
fn capture(name: &str, frames: u64) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("target/flowmeter-bench").join(name);
    if !out.exists() {
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let pcaps = root.join("../shared/pcaps");
        let stats = std::fs::read_to_string(pcaps.join("STATS.txt")).expect("shared/pcaps");
        let inputs: Vec<PathBuf> = stats
            .lines()
            .filter_map(|l| l.strip_prefix("PCAP "))
            .filter(|p| !p.starts_with("derived_reordered"))
            .map(|p| pcaps.join(p.trim()))
            .collect();
        let r = flowmeter::write_replayed_capture(&out, frames, &inputs).expect("replay");
        eprintln!(
            "wrote {} (synthetic: {} real frames replayed {} times)",
            out.display(),
            r.frames,
            r.copies
        );
    }
    out
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("flows.parquet");
    let mut g = c.benchmark_group("flowmeter");
    g.sample_size(10);
    for (id, name, frames) in [
        ("extract_v3", "replay_10m.pcap", FRAMES),
        ("extract_v3_1m", "replay_1m.pcap", PREFIX_FRAMES),
    ] {
        let pcap = capture(name, frames);
        let source: Arc<str> = Arc::from(pcap.display().to_string());
        g.throughput(Throughput::Elements(frames));
        g.bench_function(id, |b| {
            b.iter(|| {
                let mut w = flowmeter::ParquetFlowWriter::create(&out).unwrap();
                let report =
                    flowmeter::extract(&[&pcap], &flowmeter::MeterOptions::default(), |f| {
                        w.write(&f, Arc::clone(&source)).unwrap()
                    })
                    .unwrap();
                w.finish().unwrap();
                report.frames
            })
        });
    }
    g.finish();
}

criterion_group!(flowmeter_bench, benches);
criterion_main!(flowmeter_bench);
