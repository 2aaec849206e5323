//! Parquet files written by other tools (pandas/pyarrow, every common codec) read with the
//! same accounting as CSV: nulls are rejected rows with their reason, never invented values.
//! Fixtures and what they must give: `tests/fixtures/parquet/` (generator script beside them).
use std::collections::BTreeMap;
use std::path::PathBuf;

use flowdata::read_parquet;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parquet")
}

fn expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
        .unwrap()
}

fn counts(v: &serde_json::Value) -> BTreeMap<String, u64> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .collect()
}

/// Every codec pandas/pyarrow offer gives the same frame (snappy, pandas' default, used to
/// fail: "Disabled feature at compile time: snap").
#[test]
fn every_codec_reads_the_same_rows() {
    let want = expected();
    let features: Vec<String> = want["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    let mut first = None;
    for codec in want["codecs"].as_array().unwrap() {
        let path = fixtures().join(format!("codec_{}.parquet", codec.as_str().unwrap()));
        let (frame, report) =
            read_parquet(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(report.rows_read, want["rows"].as_u64().unwrap(), "{codec}");
        assert_eq!(report.rows_kept, report.rows_read, "{codec}");
        assert_eq!(frame.feature_names, features, "{codec}");
        assert_eq!(report.labels, counts(&want["labels"]), "{codec}");
        // float64 columns are read as the f32 nearest each value.
        assert!(frame.x.iter().all(|v| v.is_finite()));
        match &first {
            None => first = Some(frame),
            Some(f) => {
                assert_eq!(f.x, frame.x, "{codec}");
                assert_eq!(f.fine, frame.fine, "{codec}");
                assert_eq!(f.is_attack, frame.is_attack, "{codec}");
            }
        }
    }
}

/// Nulls in a feature, the label or `is_attack` reject their row with the reason counted:
/// rows read = kept + rejected, and no kept row carries a made-up value.
#[test]
fn nulls_are_rejected_rows_with_their_reason() {
    let want = &expected()["nulls"];
    let (frame, report) = read_parquet(&fixtures().join("nulls.parquet")).unwrap();
    assert_eq!(report.rows_read, want["rows_read"].as_u64().unwrap());
    assert_eq!(report.rows_kept, want["rows_kept"].as_u64().unwrap());
    assert_eq!(report.rejected, counts(&want["rejected"]));
    assert_eq!(report.rows_read, report.rows_kept + report.rows_rejected());
    assert_eq!(frame.n_rows() as u64, report.rows_kept);
    let mut rejected: Vec<u64> = report.first_rejections.iter().map(|r| r.line).collect();
    rejected.sort();
    let want_rows: Vec<u64> = want["rejected_rows_1_based"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(rejected, want_rows);
    // Kept rows keep their own row numbers; the rejected ones are absent.
    assert!(frame.source_line.iter().all(|l| !want_rows.contains(l)));
    assert!(frame.x.iter().all(|v| v.is_finite()));
    let (complete, _) = read_parquet(&fixtures().join("codec_snappy.parquet")).unwrap();
    let kept: Vec<usize> = (0..complete.n_rows())
        .filter(|&i| !want_rows.contains(&(i as u64 + 1)))
        .collect();
    assert_eq!(frame.x, complete.x.select(ndarray::Axis(0), &kept));
}
