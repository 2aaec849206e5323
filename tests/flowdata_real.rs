//! End to end through the facade: convert every sample in `../shared/datasets/` to Parquet
//! (both non-finite policies), read it back, and assert the README's row and label counts
//! plus the independent Python counts in `crates/flowdata/tests/fixtures/expected_counts.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flowxai::flowdata::{
    convert_csv_to_parquet, read_parquet, stratified_split, InvalidPolicy, LabelLevel, ReadOptions,
    ReadReport, SplitFractions,
};

fn datasets() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets")
}

fn convert(input: &Path, invalid: InvalidPolicy, out: &Path) -> ReadReport {
    let opts = ReadOptions {
        invalid,
        ..ReadOptions::default()
    };
    convert_csv_to_parquet(&[input], out, &opts).unwrap()
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn every_sample_converts_with_exact_counts() {
    let exp: serde_json::Value = serde_json::from_str(include_str!(
        "../crates/flowdata/tests/fixtures/expected_counts.json"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = exp["files"].as_object().unwrap();
    assert_eq!(files.len(), 18, "every CSV in ../shared/datasets");
    for (rel, e) in files {
        for policy in ["keep", "drop"] {
            let out = dir
                .path()
                .join(format!("{}.{policy}.parquet", rel.replace('/', "_")));
            let r = convert(
                &datasets().join(rel),
                InvalidPolicy::from_name(policy).unwrap(),
                &out,
            );
            let ep = &e[policy];
            assert_eq!(r.rows_read, e["rows_read"].as_u64().unwrap(), "{rel}");
            assert_eq!(
                r.rows_kept,
                ep["rows_kept"].as_u64().unwrap(),
                "{rel} {policy}"
            );
            assert_eq!(r.rows_read, r.rows_kept + r.rows_rejected(), "{rel}");
            let rejected: BTreeMap<String, u64> = ep["rejected"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
                .collect();
            assert_eq!(r.rejected, rejected, "{rel} {policy}");
            let (frame, pq_report) = read_parquet(&out).unwrap();
            assert_eq!(pq_report.rows_read, r.rows_kept, "{rel}");
            assert!(pq_report.rejected.is_empty(), "{rel}");
            assert_eq!(frame.n_rows() as u64, r.rows_kept, "{rel}");
            assert_eq!(frame.class_counts(LabelLevel::Fine), r.labels, "{rel}");
        }
    }
}

#[test]
fn readme_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("heads.parquet");
    let heads = datasets().join("cic-ddos2019/raw-heads");
    let r = convert(&heads, InvalidPolicy::Keep, &out);
    assert_eq!((r.rows_read, r.rows_kept), (5_751, 5_739));
    assert_eq!(r.rejected, counts(&[("truncated_line", 12)]));
    let udp = r
        .files
        .iter()
        .find(|f| f.path.ends_with("/UDP.csv"))
        .unwrap();
    assert_eq!(udp.rows_kept, 485);
    let (f, _) = read_parquet(&out).unwrap();
    let udp_labels: Vec<&str> = (0..f.n_rows())
        .filter(|&i| f.source_file.get(i).ends_with("/UDP.csv"))
        .map(|i| f.fine.get(i))
        .collect();
    assert!(udp_labels.len() == 485 && udp_labels.iter().all(|l| *l == "MSSQL"));
    assert_eq!(r.labels["UDPLag"], 427);
    assert_eq!(r.labels["BENIGN"], 28 + 295 + 3 + 352 + 2);
    // The default `drop` policy also rejects 167 rows with Infinity/NaN/empty cells.
    let d = convert(&heads, InvalidPolicy::Drop, &dir.path().join("d.parquet"));
    assert_eq!(
        (
            d.rows_kept,
            d.rejected["non_finite"],
            d.rejected["truncated_line"]
        ),
        (5_572, 167, 12)
    );

    let b = convert(
        &datasets().join("cic-ddos2019/balanced-sample/combined_data.csv"),
        InvalidPolicy::Keep,
        &dir.path().join("b.parquet"),
    );
    assert_eq!(b.rows_kept, 8_000);
    assert_eq!(b.labels.len(), 16);
    assert!(b.labels.values().all(|&n| n == 500));

    let i = convert(
        &datasets().join("cse-cic-ids2018/ids2018_sample.csv"),
        InvalidPolicy::Drop,
        &dir.path().join("i.parquet"),
    );
    assert_eq!(
        i.labels_raw,
        counts(&[
            ("Benign", 721),
            ("DDOS attack-HOIC", 67),
            ("DDoS attacks-LOIC-HTTP", 57),
            ("DoS attacks-Hulk", 53),
            ("Infilteration", 21),
            ("SSH-Bruteforce", 21),
            ("FTP-BruteForce", 20),
            ("Bot", 20),
            ("DoS attacks-SlowHTTPTest", 15),
            ("DoS attacks-GoldenEye", 4),
            ("DoS attacks-Slowloris", 1),
        ])
    );

    let t = convert(
        &datasets().join("tii-ssrc-23/data_clustered.csv"),
        InvalidPolicy::Drop,
        &dir.path().join("t.parquet"),
    );
    assert_eq!(t.rows_kept, 11_123);
    assert_eq!(t.features.len(), 8);
    assert_eq!(
        t.labels_raw,
        counts(&[
            ("DoS", 8_666),
            ("Video", 855),
            ("Information Gathering", 846),
            ("Mirai", 254),
            ("Text", 209),
            ("Audio", 190),
            ("Bruteforce", 71),
            ("Background", 32),
        ])
    );
    assert_eq!(t.families["benign"], 1_286);
    let (tf, _) = read_parquet(&dir.path().join("t.parquet")).unwrap();
    assert_eq!(tf.class_counts(LabelLevel::Binary)["attack"], 9_837);
    let s = stratified_split(
        &tf.targets(LabelLevel::Fine).y,
        SplitFractions::default(),
        42,
    )
    .unwrap();
    assert_eq!(s.train.len() + s.test.len() + s.valid.len(), 11_123);
}
