//! Inputs an attacker or a careless tool writes: overlong lines, byte-order marks, floods of
//! distinct labels. Each is rejected or handled with every line accounted for.
use flowdata::{read_csv, ReadOptions, DEFAULT_MAX_LINE_BYTES};

const HEADER: &str = "Flow ID, Protocol, Flow Duration, Flow Bytes/s, Label\n";

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A line over the cap is rejected as `line_too_long` with its line number, whether it fits
/// in a block or is longer than several blocks, and the rows around it are kept.
#[test]
fn overlong_lines_are_rejected_whatever_the_block_size() {
    let dir = tempfile::tempdir().unwrap();
    let long_cell = "9".repeat(5_000);
    let mut text = String::from(HEADER);
    text += "a,6,100,1.5,BENIGN\n";
    text += &format!("b,6,{long_cell},1.5,BENIGN\n"); // line 3: 5,015 bytes
    text += "c,17,20,2.0,DrDoS_DNS\n";
    text += &format!("d,6,{},1.5,BENIGN\n", "8".repeat(40_000)); // line 5: longer than any block
    text += "e,17,30,2e3,UDP-lag\n";
    text += &"x".repeat(30_000); // line 7: unterminated last line, over the cap
    let p = write(&dir, "long.csv", text.as_bytes());
    let mut seen = None;
    for block_bytes in [64, 1000, 4096, 7777, 65536, 16 << 20] {
        let opts = ReadOptions {
            max_line_bytes: 4096,
            block_bytes,
            ..ReadOptions::default()
        };
        let (frame, r) = read_csv(&[&p], &opts).unwrap();
        assert_eq!(r.rows_read, 6, "block {block_bytes}");
        assert_eq!(r.rows_kept, 3, "block {block_bytes}");
        assert_eq!(r.rejected["line_too_long"], 3, "block {block_bytes}");
        assert_eq!(r.rows_read, r.rows_kept + r.rows_rejected());
        assert_eq!(frame.source_line, [2, 4, 6], "block {block_bytes}");
        let lines: Vec<u64> = r.first_rejections.iter().map(|j| j.line).collect();
        assert_eq!(lines, [3, 5, 7], "block {block_bytes}");
        match &seen {
            None => seen = Some((frame, r)),
            Some((f0, _)) => assert_eq!(f0, &frame, "block {block_bytes}"),
        }
    }
    // The default cap (1 MiB) keeps all these lines' neighbours and the 5 kB line alike.
    let (_, r) = read_csv(&[&p], &ReadOptions::default()).unwrap();
    const { assert!(DEFAULT_MAX_LINE_BYTES >= 1 << 20) };
    assert_eq!(r.rejected.get("line_too_long"), None);
}

/// A UTF-8 byte-order mark before the header is not part of the first column's name.
#[test]
fn a_byte_order_mark_is_stripped_from_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\u{feff}Protocol,Flow Duration,Label\n6,100,BENIGN\n17,5,Syn\n";
    let p = write(&dir, "bom.csv", text.as_bytes());
    let (frame, r) = read_csv(&[&p], &ReadOptions::default()).unwrap();
    assert_eq!(frame.feature_names, ["protocol", "flow_duration"]);
    assert_eq!(r.dropped_columns.len(), 0, "{:?}", r.dropped_columns);
    assert_eq!(frame.x[[1, 0]], 17.0);
}

/// 60,000 distinct unknown labels are each reported once, in order of first appearance (the
/// collection is linear: a quadratic one takes minutes here).
#[test]
fn many_distinct_unknown_labels_are_listed_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let n = 60_000;
    let mut text = String::from("Protocol,Flow Duration,Label\n");
    for i in 0..n {
        text += &format!("6,{i},attack-{i}\n");
    }
    text += "6,1,attack-7\n";
    let p = write(&dir, "labels.csv", text.as_bytes());
    let (_, r) = read_csv(&[&p], &ReadOptions::default()).unwrap();
    assert_eq!(r.rows_kept, n as u64 + 1);
    assert_eq!(r.unknown_labels.len(), n);
    let mut sorted = r.unknown_labels.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), n);
}

/// A conversion that fails half-way (the second file lacks a feature) leaves no file at the
/// output path, keeps an earlier output there untouched, and leaves no temporary file behind.
#[test]
fn a_failed_conversion_leaves_no_partial_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        &dir,
        "a.csv",
        b"Protocol,Flow Duration,Label\n6,100,BENIGN\n17,5,Syn\n",
    );
    let other = write(&dir, "b.csv", b"Protocol,Label\n6,BENIGN\n");
    let out = dir.path().join("out.parquet");
    let opts = ReadOptions::default();
    let err = flowdata::convert_csv_to_parquet(&[&good, &other], &out, &opts).unwrap_err();
    assert!(err.to_string().contains("b.csv"), "{err}");
    assert!(!out.exists(), "a partial file was left at the output path");
    // An earlier, complete output survives a failed rerun.
    flowdata::convert_csv_to_parquet(&[&good], &out, &opts).unwrap();
    let before = std::fs::read(&out).unwrap();
    flowdata::convert_csv_to_parquet(&[&good, &other], &out, &opts).unwrap_err();
    assert_eq!(std::fs::read(&out).unwrap(), before);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}"); // a.csv, b.csv, out.parquet
}
