//! `convert`: CSV → Parquet (zstd) throughput of `flowdata` on a large CIC-DDoS2019-shaped CSV.
//!
//! The input is **synthetic (resampled)**: real CIC-DDoS2019 lines from
//! `../shared/datasets/cic-ddos2019/raw-heads` drawn with replacement (seeded), fractional
//! feature values jittered by ×(1 ± 1 %), written once to
//! `target/flowdata-bench/cicddos2019_synthetic_resampled.csv` (size: `FLOWDATA_BENCH_MB`,
//! default 300 MB). All the dirt of the real files is kept (identifier columns, `Infinity`,
//! empty cells, negative overflow values). `benches/peers/convert_peers.py` times polars and
//! pyarrow on the same file.
//!
//! Run: `benches/run_pairs.sh convert` (idle machine, same threads on both sides, raw results in
//! `benches/results/`), or by hand `cargo bench --bench convert` then
//! `.venv-peers/bin/python benches/peers/convert_peers.py` (venv: see the script's docstring).

use std::io::Write;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flowxai::flowdata::{convert_csv_to_parquet, read_csv, InvalidPolicy, ReadOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/flowdata-bench")
}

/// Generate the synthetic (resampled) CSV once; returns its path.
fn synthetic_csv() -> PathBuf {
    let path = bench_dir().join("cicddos2019_synthetic_resampled.csv");
    let mb: usize = std::env::var("FLOWDATA_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    if path.exists() {
        return path;
    }
    std::fs::create_dir_all(bench_dir()).unwrap();
    let src =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/cic-ddos2019/raw-heads");
    let mut header = String::new();
    let mut lines: Vec<String> = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    for f in files {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        let mut it = text.lines();
        header = it.next().unwrap().to_string();
        let n_cols = header.split(',').count();
        // Complete lines only (the last line of most heads is cut off).
        lines.extend(
            it.filter(|l| l.split(',').count() == n_cols)
                .map(str::to_string),
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(2019);
    let tmp = path.with_extension("tmp");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp).unwrap());
    writeln!(out, "{header}").unwrap();
    let mut written = header.len();
    let mut row = 0usize;
    while written < mb << 20 {
        let l = &lines[rng.gen_range(0..lines.len())];
        let mut s = String::with_capacity(l.len() + 16);
        for (c, field) in l.split(',').enumerate() {
            if c > 0 {
                s.push(',');
            }
            if c == 0 {
                s += &row.to_string(); // `Unnamed: 0`
            } else if c >= 8 && field.contains('.') && !field.contains(':') && !field.contains('-')
            {
                match field.parse::<f64>() {
                    Ok(v) if v.is_finite() && v != 0.0 => {
                        s += &format!("{}", v * (1.0 + rng.gen_range(-0.01..0.01)));
                    }
                    _ => s += field,
                }
            } else {
                s += field;
            }
        }
        writeln!(out, "{s}").unwrap();
        written += s.len() + 1;
        row += 1;
    }
    out.flush().unwrap();
    drop(out);
    std::fs::rename(&tmp, &path).unwrap();
    path
}

fn bench(c: &mut Criterion) {
    let csv = synthetic_csv();
    let bytes = std::fs::metadata(&csv).unwrap().len();
    let out = bench_dir().join("convert_out.parquet");
    let opts = ReadOptions {
        invalid: InvalidPolicy::Drop,
        block_bytes: 64 << 20,
        ..ReadOptions::default()
    };
    // Print the accounting once so the numbers can be checked against the peers.
    let report = convert_csv_to_parquet(&[&csv], &out, &opts).unwrap();
    eprintln!(
        "synthetic (resampled) {:.1} MB, {} rows read, {} kept, rejected {:?}, {} threads",
        bytes as f64 / 1e6,
        report.rows_read,
        report.rows_kept,
        report.rejected,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut g = c.benchmark_group("convert");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("csv_to_parquet_zstd", |b| {
        b.iter(|| convert_csv_to_parquet(&[&csv], &out, &opts).unwrap())
    });
    g.bench_function("csv_to_flowframe", |b| {
        b.iter(|| read_csv(&[&csv], &opts).unwrap())
    });
    g.finish();
    let _ = Path::new(&out);
}

criterion_group! {
    name = benches;
    // No plots: the plotters backend needs system fonts that CI machines may lack.
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
