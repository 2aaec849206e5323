//! Every sample in `../shared/datasets/` read with both non-finite policies; counts checked
//! against the README and against an independent Python count (`fixtures/gen_expected.py`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use flowdata::{
    convert_csv_to_parquet, read_csv, read_parquet, InvalidPolicy, LabelLevel, ReadOptions,
};

fn datasets() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets")
}

fn opts(invalid: InvalidPolicy) -> ReadOptions {
    ReadOptions {
        invalid,
        ..ReadOptions::default()
    }
}

fn expected() -> serde_json::Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/expected_counts.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn as_counts(v: &serde_json::Value) -> BTreeMap<String, u64> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

#[test]
fn every_file_matches_independent_python_counts() {
    let exp = expected();
    let files = exp["files"].as_object().unwrap();
    assert_eq!(files.len(), 18);
    for (rel, e) in files {
        let path = datasets().join(rel);
        for policy in ["keep", "drop"] {
            let pol = InvalidPolicy::from_name(policy).unwrap();
            let (frame, r) = read_csv(&[&path], &opts(pol)).unwrap();
            let ep = &e[policy];
            assert_eq!(
                r.rows_read,
                e["rows_read"].as_u64().unwrap(),
                "{rel} {policy}"
            );
            assert_eq!(
                r.rows_kept,
                ep["rows_kept"].as_u64().unwrap(),
                "{rel} {policy}"
            );
            assert_eq!(r.rejected, as_counts(&ep["rejected"]), "{rel} {policy}");
            assert_eq!(r.labels, as_counts(&ep["labels"]), "{rel} {policy}");
            assert_eq!(r.rows_read, r.rows_kept + r.rows_rejected());
            assert_eq!(frame.n_rows() as u64, r.rows_kept);
            assert_eq!(frame.n_features() as u64, e["features"].as_u64().unwrap());
            if policy == "drop" {
                // Feature values: column sums (f32 values summed in f64) vs numpy, rel 1e-9.
                // Python reports sums by header name; map them onto canonical columns.
                let sums = ep["feature_sums"].as_object().unwrap();
                assert_eq!(sums.len(), frame.n_features());
                for (header_name, want) in sums {
                    let spec = flowdata::FEATURES
                        .iter()
                        .find(|f| [f.cic_long, f.cic_short, f.v4].contains(&header_name.as_str()))
                        .unwrap();
                    let j = frame
                        .feature_names
                        .iter()
                        .position(|n| n == spec.canonical)
                        .unwrap();
                    let want = want.as_f64().unwrap();
                    let got: f64 = frame.x.column(j).iter().map(|&v| v as f64).sum();
                    let tol = 1e-9 * want.abs().max(1.0);
                    assert!((got - want).abs() <= tol, "{rel} col {j}: {got} vs {want}");
                }
                assert!(frame.x.iter().all(|v| v.is_finite()));
            }
        }
    }
}

#[test]
fn raw_heads_match_the_readme() {
    let dir = datasets().join("cic-ddos2019/raw-heads");
    let (frame, r) = read_csv(&[&dir], &opts(InvalidPolicy::Keep)).unwrap();
    assert_eq!(r.files.len(), 13);
    assert_eq!(r.rows_kept, 5_739);
    assert_eq!(
        r.rejected,
        BTreeMap::from([("truncated_line".to_string(), 12)])
    );
    // Every truncated line is the last line of its file, and TFTP.csv has none.
    for rej in &r.first_rejections {
        assert_eq!(rej.reason, "truncated_line");
        assert!(!rej.file.ends_with("TFTP.csv"));
    }
    assert_eq!(r.first_rejections.len(), 10);
    assert_eq!(r.first_rejections[0].line, 376); // DrDoS_DNS.csv: header + 374 rows + cut line
    let per_file: BTreeMap<String, u64> = r
        .files
        .iter()
        .map(|f| (f.path.rsplit('/').next().unwrap().to_string(), f.rows_kept))
        .collect();
    assert_eq!(per_file["UDP.csv"], 485);
    assert_eq!(per_file["TFTP.csv"], 484);
    // UDP.csv holds MSSQL, not UDP: the file name never decides the label.
    let udp_rows: Vec<usize> = (0..frame.n_rows())
        .filter(|&i| frame.source_file.get(i).ends_with("/UDP.csv"))
        .collect();
    assert_eq!(udp_rows.len(), 485);
    assert!(udp_rows.iter().all(|&i| frame.fine.get(i) == "MSSQL"));
    let want: BTreeMap<String, u64> = [
        ("BENIGN", 28 + 295 + 3 + 352 + 2),
        ("DrDoS_DNS", 346),
        ("DrDoS_LDAP", 474),
        ("DrDoS_MSSQL", 472),
        ("DrDoS_NTP", 72),
        ("DrDoS_NetBIOS", 470),
        ("DrDoS_SNMP", 483),
        ("DrDoS_SSDP", 468),
        ("DrDoS_UDP", 421),
        ("MSSQL", 485),
        ("Portmap", 16),
        ("Syn", 441),
        ("TFTP", 484),
        ("UDPLag", 427),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(r.labels, want);
    assert_eq!(r.labels_raw["UDP-lag"], 427);
    // Identifier and duplicated columns never become features.
    for c in [
        "Unnamed: 0",
        "Flow ID",
        "Source IP",
        "Source Port",
        "Destination IP",
        "Destination Port",
        "Timestamp",
        "SimillarHTTP",
        "Inbound",
    ] {
        assert_eq!(r.dropped_columns[c], "identifier", "{c}");
    }
    assert_eq!(r.dropped_columns["Fwd Header Length.1"], "duplicate");
    assert_eq!(r.dropped_columns["CWE Flag Count"], "thesis_dropped");
    assert_eq!(frame.feature_names, flowdata::canonical_names());
    // The drop policy on the same files.
    let (_, d) = read_csv(&[&dir], &opts(InvalidPolicy::Drop)).unwrap();
    assert_eq!((d.rows_read, d.rows_kept), (5_751, 5_572));
    assert_eq!(d.rejected["non_finite"], 167);
    assert_eq!(d.rejected["truncated_line"], 12);
}

#[test]
fn balanced_sample_gives_the_thesis_class_order() {
    let p = datasets().join("cic-ddos2019/balanced-sample/combined_data.csv");
    let (frame, r) = read_csv(&[&p], &opts(InvalidPolicy::Keep)).unwrap();
    assert_eq!(r.rows_kept, 8_000);
    assert!(r.labels.values().all(|&n| n == 500));
    assert!(r.non_finite_kept > 0);
    let t = frame.targets(LabelLevel::Fine);
    // The thesis' 17 classes minus DrDoS_SSDP (absent from this sample), in the same sorted order.
    let thesis = &flowdata::manifest("cic-ddos2019").unwrap().task_classes;
    let want: Vec<String> = thesis
        .iter()
        .filter(|c| *c != "DrDoS_SSDP")
        .cloned()
        .collect();
    assert_eq!(t.classes, want);
    let b = frame.targets(LabelLevel::Binary);
    assert_eq!(b.y.iter().filter(|&&y| y == 0).count(), 500);
    let fam = frame.class_counts(LabelLevel::Family);
    assert_eq!(fam["benign"], 500);
    assert_eq!(fam["reflection_ddos"], 500 * 12);
    assert_eq!(fam["flood_dos"], 500 * 3);
}

#[test]
fn other_dialects_map_to_canonical_features() {
    let ids = datasets().join("cse-cic-ids2018/ids2018_sample.csv");
    let (f18, r18) = read_csv(&[&ids], &ReadOptions::default()).unwrap();
    assert_eq!(r18.dialect, "cic-short");
    assert_eq!(f18.feature_names, flowdata::canonical_names());
    assert_eq!(r18.dropped_columns["Dst Port"], "identifier");
    assert_eq!(r18.labels["BENIGN"], 721);
    // First data row: Dst Port 80 dropped, Protocol 6, Flow Duration 9487447, Tot Fwd Pkts 2.
    assert_eq!(f18.x.row(0).to_vec()[..4], [6.0, 9_487_447.0, 2.0, 0.0]);

    let tii = datasets().join("tii-ssrc-23/10lines.csv");
    let (ft, rt) = read_csv(&[&tii], &ReadOptions::default()).unwrap();
    assert_eq!(rt.dialect, "cicflowmeter-v4");
    assert_eq!(ft.feature_names, flowdata::canonical_names());
    assert_eq!(rt.dropped_columns["CWR Flag Count"], "thesis_dropped");
    assert_eq!(rt.labels_raw["Audio"], 9);
    assert_eq!(ft.x[[0, 0]], 6.0); // protocol stored as "6.0"

    let dc = datasets().join("tii-ssrc-23/data_clustered.csv");
    let (fd, rd) = read_csv(&[&dc], &ReadOptions::default()).unwrap();
    assert_eq!(
        fd.feature_names,
        [
            "flow_duration",
            "total_fwd_packets",
            "total_bwd_packets",
            "fwd_packet_length_max",
            "fwd_packet_length_mean",
            "bwd_packet_length_max",
            "bwd_packet_length_mean",
            "flow_iat_mean"
        ]
    );
    assert_eq!(rd.missing_features.len(), 68);
    let t = fd.targets(LabelLevel::Fine);
    assert_eq!(
        t.classes,
        [
            "BENIGN",
            "Bruteforce",
            "DoS",
            "Information Gathering",
            "Mirai"
        ]
    );
    assert_eq!(rd.labels["BENIGN"], 1_286);
    assert_eq!(rd.families["benign"], 1_286);
    assert_eq!(fd.class_counts(LabelLevel::Binary)["attack"], 9_837);
}

#[test]
fn parquet_round_trip_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("heads.parquet");
    let src = datasets().join("cic-ddos2019/raw-heads");
    let report = convert_csv_to_parquet(&[&src], &out, &ReadOptions::default()).unwrap();
    let (csv_frame, csv_report) = read_csv(&[&src], &ReadOptions::default()).unwrap();
    assert_eq!(report, csv_report);
    let (pq, pq_report) = read_parquet(&out).unwrap();
    assert_eq!(
        (pq_report.rows_read, pq_report.rows_kept),
        (report.rows_kept, report.rows_kept)
    );
    assert_eq!(pq_report.labels, report.labels);
    assert_eq!(pq.x, csv_frame.x);
    assert_eq!(pq.feature_names, csv_frame.feature_names);
    assert_eq!(pq.fine, csv_frame.fine);
    assert_eq!(pq.family, csv_frame.family);
    assert_eq!(pq.label_raw, csv_frame.label_raw);
    assert_eq!(pq.is_attack, csv_frame.is_attack);
    assert_eq!(pq.source_line, csv_frame.source_line);
    assert_eq!(pq.source_file, csv_frame.source_file);
    assert_eq!(pq.excluded_classes, ["WebDDoS"]);
    assert!(!pq.synthetic);
    report.write_json(&dir.path().join("r.json")).unwrap();
}

#[test]
fn bad_inputs_are_one_line_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.csv");
    let e = read_csv(&[&missing], &ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope.csv") && !e.contains('\n'), "{e}");

    let bin = dir.path().join("x.csv");
    std::fs::write(&bin, b"\x00\x01\x02PK\x03\x04").unwrap();
    let e = read_csv(&[&bin], &ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("x.csv") && e.contains("not a CSV"), "{e}");

    let nolabel = dir.path().join("nolabel.csv");
    std::fs::write(&nolabel, "Protocol,Flow Duration\n6,1\n").unwrap();
    let e = read_csv(&[&nolabel], &ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("nolabel.csv") && e.contains("no label column"),
        "{e}"
    );

    let unknown = dir.path().join("unknown.csv");
    std::fs::write(&unknown, "a,b,Label\n1,2,x\n").unwrap();
    let e = read_csv(&[&unknown], &ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown.csv") && e.contains("unknown dialect"),
        "{e}"
    );

    let bad_ds = ReadOptions {
        dataset: Some("nope".into()),
        ..ReadOptions::default()
    };
    assert!(read_csv(&[&unknown], &bad_ds).is_err());
}

#[test]
fn crlf_repeated_headers_floats_and_non_utf8_labels() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("dirty.csv");
    let mut bytes = Vec::new();
    bytes
        .extend_from_slice(b"Dst Port,Protocol,Flow Duration,Flow Byts/s,Fwd Header Len,Label\r\n");
    bytes.extend_from_slice(b"80,6.0,100,inf,-2.1e11,Benign\r\n");
    bytes
        .extend_from_slice(b"Dst Port,Protocol,Flow Duration,Flow Byts/s,Fwd Header Len,Label\r\n");
    bytes.extend_from_slice(b"80,6,100,,5, Web Attack \x96 XSS \r\n");
    bytes.extend_from_slice(b"80,6,100,NaN,5,Bot\r\n");
    bytes.extend_from_slice(b"80,17,1e3,12.5,-1,  Bot  \r\n");
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(b"80,x,1,1,1,Bot\r\n");
    bytes.extend_from_slice(b"80,6,1,1,1,\r\n");
    bytes.extend_from_slice(b"80,6,1,1\r\n");
    bytes.extend_from_slice(b"80,6,2,2,2,Bot");
    std::fs::write(&p, &bytes).unwrap();
    let (f, r) = read_csv(&[&p], &ReadOptions::default()).unwrap();
    assert_eq!(r.rows_read, 10);
    assert_eq!(r.rows_kept, 2);
    let want: BTreeMap<String, u64> = [
        ("non_finite", 3),
        ("repeated_header", 1),
        ("empty_line", 1),
        ("bad_number", 1),
        ("empty_label", 1),
        ("wrong_field_count", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(r.rejected, want);
    assert_eq!(f.source_line, [6, 11]);
    assert_eq!(f.x.row(0).to_vec(), [17.0, 1000.0, 12.5, -1.0]);
    assert_eq!(f.fine.get(0), "Bot");
    let lines: Vec<(u64, &str)> = r
        .first_rejections
        .iter()
        .map(|x| (x.line, x.reason.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (2, "non_finite"),
            (3, "repeated_header"),
            (4, "non_finite"),
            (5, "non_finite"),
            (7, "empty_line"),
            (8, "bad_number"),
            (9, "empty_label"),
            (10, "wrong_field_count")
        ]
    );
    // keep: the non-finite rows stay, the non-UTF-8 label decodes lossily and maps via CIC-IDS2017.
    let (fk, rk) = read_csv(&[&p], &opts(InvalidPolicy::Keep)).unwrap();
    assert_eq!(rk.rows_kept, 5);
    assert_eq!(rk.non_finite_kept, 3);
    assert!(fk.x[[0, 2]].is_infinite());
    assert_eq!(fk.x[[0, 3]], -2.1e11);
    assert_eq!(rk.labels["Web Attack XSS"], 1);
    assert_eq!(rk.families["web"], 1);
}
