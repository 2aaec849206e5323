//! What `extract` writes: the V3 CSV byte for byte (row order aside), and Parquet whose feature
//! columns are flowdata's canonical ones.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flowmeter::{
    extract, CsvFlowWriter, MeterOptions, ParquetFlowWriter, CANONICAL_COLUMNS, V3_HEADER,
};

fn pcaps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pcaps")
}

/// The V3 column behind each canonical feature is the one flowdata reads under that feature's
/// name from CIC-IDS2017/CIC-DDoS2019 CSVs.
#[test]
fn canonical_columns_are_flowdatas_features() {
    for (i, f) in flowdata::FEATURES.iter().enumerate() {
        assert_eq!(
            V3_HEADER[CANONICAL_COLUMNS[i]].trim(),
            f.cic_long,
            "feature {i}"
        );
    }
}

/// CIC's own test capture: our CSV holds exactly the V3 jar's lines (3,292 packets, 96 flows,
/// TZ=UTC); only the row order differs (V3 writes in Java `HashMap` order, we as flows end).
#[test]
fn the_csv_equals_the_v3_jars_line_for_line() {
    let pcap = pcaps().join("cicflowmeter_java/data/in/test.pcap");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("test.csv");
    let mut csv = CsvFlowWriter::create(&out).unwrap();
    extract(&[&pcap], &MeterOptions::default(), |f| {
        csv.write(&f).unwrap()
    })
    .unwrap();
    assert_eq!(csv.finish().unwrap(), 96);
    let ours = std::fs::read_to_string(&out).unwrap();
    let theirs = std::fs::read_to_string(
        pcaps().join("generated/v3/cicflowmeter_java_data_in/test.pcap_ISCX.csv"),
    )
    .unwrap();
    fn sorted(s: &str) -> Vec<&str> {
        let mut lines: Vec<&str> = s.lines().collect();
        lines[1..].sort();
        lines
    }
    assert_eq!(sorted(&ours), sorted(&theirs));
    assert!(ours.ends_with('\n') && !ours.contains('\r'));
}

#[test]
fn parquet_holds_the_canonical_features_and_identifiers() {
    use arrow_array::{Array, Float32Array, StringArray};
    let pcap = pcaps().join("cicflowmeter_java/data/in/test.pcap");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("flows.parquet");
    let mut writer = ParquetFlowWriter::create(&out).unwrap();
    let source: Arc<str> = Arc::from(pcap.display().to_string());
    let mut rows = Vec::new();
    extract(&[&pcap], &MeterOptions::default(), |f| {
        rows.push(flowmeter::canonical_features(&f.cells));
        writer.write(&f, Arc::clone(&source)).unwrap();
    })
    .unwrap();
    assert!(!out.exists(), "the file appears only when finished");
    assert_eq!(writer.finish().unwrap(), 96);
    let file = std::fs::File::open(&out).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut n = 0;
    for batch in reader {
        let batch = batch.unwrap();
        for (j, f) in flowdata::FEATURES.iter().enumerate() {
            let col = batch
                .column_by_name(f.canonical)
                .unwrap()
                .as_any()
                .downcast_ref::<Float32Array>()
                .unwrap();
            for i in 0..batch.num_rows() {
                let want = rows[n + i][j] as f32;
                let got = col.value(i);
                assert!(
                    got == want || (got.is_nan() && want.is_nan()),
                    "{} row {}",
                    f.canonical,
                    n + i
                );
            }
        }
        let ids = batch.column_by_name("flow_id").unwrap();
        let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
        assert!(ids.value(0).ends_with("-6"));
        assert_eq!(ids.null_count(), 0);
        n += batch.num_rows();
    }
    assert_eq!(n, 96);
}
