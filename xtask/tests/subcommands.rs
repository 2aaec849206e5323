//! The user-facing subcommands on real and synthetic files: synth → convert → train →
//! evaluate → explain, and `--help` for each.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets")
}

fn xtask(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("run xtask");
    assert!(
        out.status.success(),
        "xtask {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn synth_convert_train_evaluate_explain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let data = data_dir();
    let csv = d.join("synth.csv");
    xtask(&[
        "synth",
        "--rows",
        "3000",
        "--out",
        s(&csv),
        "--data-dir",
        s(&data),
    ]);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 3001);
    assert!(text
        .lines()
        .nth(1)
        .unwrap()
        .ends_with(",synthetic (resampled)"));

    // The converted file remembers that it is synthetic.
    let pq = d.join("synth.parquet");
    xtask(&["convert", "--input", s(&csv), "--output", s(&pq)]);
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("synth.parquet.report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["synthetic"], true);
    assert_eq!(report["rows_read"], 3000);
    let frame = flowxai::flowdata::read_parquet(&pq).unwrap();
    assert!(frame.synthetic);

    // Train on real flows, evaluate across datasets, explain.
    let real = data.join("cic-ddos2019/balanced-sample/combined_data.csv");
    let model = d.join("rf");
    let out = xtask(&[
        "train",
        "--input",
        s(&real),
        "--model",
        "forest",
        "--trees",
        "10",
        "--level",
        "binary",
        "--out",
        s(&model),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("macro avg"));
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("metrics.json")).unwrap())
            .unwrap();
    assert!(metrics["report"]["accuracy"].as_f64().unwrap() > 0.9);

    let ids = data.join("cse-cic-ids2018/ids2018_sample.csv");
    let json = d.join("eval.json");
    xtask(&[
        "evaluate",
        "--model",
        s(&model),
        "--input",
        s(&ids),
        "--json",
        s(&json),
    ]);
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(eval["n_samples"], 1000);

    let ex = d.join("explain");
    xtask(&[
        "explain",
        "--model",
        s(&model),
        "--input",
        s(&real),
        "--rows",
        "5",
        "--out",
        s(&ex),
    ]);
    for f in [
        "explanation.json",
        "shap_beeswarm.svg",
        "shap_waterfall.png",
        "shap_force.pdf",
    ] {
        assert!(ex.join(f).is_file(), "{f} missing");
    }
}

#[test]
fn every_subcommand_explains_its_options() {
    for sub in [
        "convert",
        "reproduce",
        "train",
        "evaluate",
        "explain",
        "synth",
        "bench",
    ] {
        let out = xtask(&[sub, "--help"]);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Usage"), "{sub}: {help}");
        assert!(help.contains("--"), "{sub}: {help}");
    }
}
