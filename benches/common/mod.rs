//! Data shared by the MLP benches (`mlp.rs`, `gpu.rs`).
use std::io::Write;
use std::path::Path;

use ndarray::{Array1, Array2};

/// `rows` synthetic (resampled) rows — drawn with replacement from the real balanced
/// CIC-DDoS2019 sample with ±1 % jitter (`flowdata::resample_synthetic`, seed 42) — through the
/// default `preprocess` pipeline fitted on the real rows, with their fine-class labels and the
/// class count. Speed only; never quote accuracy from them.
pub fn resampled_preprocessed(rows: usize) -> (Array2<f32>, Array1<usize>, usize) {
    let csv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/datasets/cic-ddos2019/balanced-sample/combined_data.csv");
    let (frame, _) = flowdata::read_csv(&[&csv], &flowdata::ReadOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
    let frame = frame.task_rows();
    let pipeline = preprocess::Preset::Default
        .params()
        .fit(frame.x.view())
        .expect("fit preprocessing");
    let k = frame.targets(flowdata::LabelLevel::Fine).classes.len();
    let big = flowdata::resample_synthetic(&frame, rows, 42).expect("resample");
    let x = pipeline.transform(big.x.view()).expect("transform");
    let y = big
        .targets(flowdata::LabelLevel::Fine)
        .y
        .iter()
        .map(|&c| c as usize)
        .collect();
    (x, y, k)
}

/// Writes the rows a bench measures on for its Python peer (`benches/peers/mlp_peers.py`,
/// `mlp_gpu_peers.py`), so that both sides time the same numbers: `x.f32` (row-major,
/// little-endian f32), `y.u32` (little-endian u32 labels) and `meta.json`
/// (`{"rows", "features", "classes"}`) in `dir`, created if missing.
pub fn export_rows(dir: &Path, x: &Array2<f32>, y: &Array1<usize>, k: usize) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let path = dir.join("x.f32");
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    );
    // `iter` walks in logical (row-major) order whatever the memory layout.
    for v in x.iter() {
        f.write_all(&v.to_le_bytes()).expect("write x.f32");
    }
    f.flush().expect("write x.f32");
    let yb: Vec<u8> = y.iter().flat_map(|&c| (c as u32).to_le_bytes()).collect();
    std::fs::write(dir.join("y.u32"), yb).expect("write y.u32");
    let meta = serde_json::json!({
        "data": "synthetic (resampled) CIC-DDoS2019 balanced sample, default preprocess pipeline",
        "rows": x.nrows(),
        "features": x.ncols(),
        "classes": k,
    });
    std::fs::write(dir.join("meta.json"), meta.to_string()).expect("write meta.json");
}
