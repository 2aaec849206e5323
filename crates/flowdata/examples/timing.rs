//! Rough phase timing on a big CSV (development aid): `cargo run --release -p flowdata --example timing -- file.csv`.
use std::time::Instant;
fn main() {
    let path = std::env::args().nth(1).expect("csv path");
    let opts = flowdata::ReadOptions {
        block_bytes: 64 << 20,
        ..Default::default()
    };
    let t = Instant::now();
    let r = flowdata::stream_csv(&[&path], &opts, |_| Ok(())).unwrap();
    println!(
        "parse only: {:.3} s ({} rows)",
        t.elapsed().as_secs_f64(),
        r.rows_kept
    );
    let t = Instant::now();
    let out = std::env::temp_dir().join("flowdata_timing.parquet");
    flowdata::convert_csv_to_parquet(&[&path], &out, &opts).unwrap();
    println!("convert: {:.3} s", t.elapsed().as_secs_f64());
}
