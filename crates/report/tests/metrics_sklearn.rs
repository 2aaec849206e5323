//! `report::metrics` equals scikit-learn (`zero_division=0`) on the cases of
//! `fixtures/metrics_cases.json` (made by `fixtures/gen_metrics_fixtures.py`, versions and seed
//! inside): a class never predicted, a predicted class absent from `y_true` (cross-dataset), an
//! explicit label list with a class that occurs nowhere, a single predicted class, and
//! NearestCentroid predictions on real CIC-DDoS2019 flows. Scores agree to 1e-12 absolute,
//! counts and the text report exactly.

use report::metrics::{ConfusionMatrix, MetricsError};
use serde_json::Value;

fn cases() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/metrics_cases.json"
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["cases"].as_array().unwrap().clone()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_f64().unwrap())
        .collect()
}

fn close(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-12,
        "{what}: got {got}, scikit-learn {want}"
    );
}

fn matrix_for(case: &Value) -> ConfusionMatrix {
    let (t, p) = (strings(&case["y_true"]), strings(&case["y_pred"]));
    if case["labels"].is_null() {
        ConfusionMatrix::from_labels(&t, &p).unwrap()
    } else {
        ConfusionMatrix::from_labels_with_classes(&t, &p, &strings(&case["labels"])).unwrap()
    }
}

#[test]
fn all_cases_match_sklearn() {
    let cases = cases();
    assert_eq!(cases.len(), 5);
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let cm = matrix_for(case);
        assert_eq!(cm.classes, strings(&case["classes"]), "{name}: classes");
        let want_counts: Vec<Vec<u64>> = case["confusion"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap())
                    .collect()
            })
            .collect();
        assert_eq!(cm.counts, want_counts, "{name}: confusion matrix");
        let r = cm.report();
        close(
            &format!("{name} accuracy"),
            r.accuracy,
            case["accuracy"].as_f64().unwrap(),
        );
        close(
            &format!("{name} balanced accuracy"),
            r.balanced_accuracy,
            case["balanced_accuracy"].as_f64().unwrap(),
        );
        let (p, rc, f1, s) = (
            floats(&case["precision"]),
            floats(&case["recall"]),
            floats(&case["f1"]),
            floats(&case["support"]),
        );
        for (i, c) in r.per_class.iter().enumerate() {
            close(&format!("{name} precision {}", c.class), c.precision, p[i]);
            close(&format!("{name} recall {}", c.class), c.recall, rc[i]);
            close(&format!("{name} f1 {}", c.class), c.f1, f1[i]);
            assert_eq!(c.support as f64, s[i], "{name} support {}", c.class);
        }
        for (avg, key) in [(&r.macro_avg, "macro"), (&r.weighted_avg, "weighted")] {
            let want = floats(&case[key]);
            close(&format!("{name} {key} precision"), avg.precision, want[0]);
            close(&format!("{name} {key} recall"), avg.recall, want[1]);
            close(&format!("{name} {key} f1"), avg.f1, want[2]);
        }
        assert_eq!(
            r.to_text(2),
            case["report2"].as_str().unwrap(),
            "{name}: text report"
        );
        assert_eq!(
            r.to_text(4),
            case["report4"].as_str().unwrap(),
            "{name}: 4-digit report"
        );
    }
}

#[test]
fn zero_division_cases_are_zero_not_nan() {
    let cases = cases();
    let absent = cases
        .iter()
        .find(|c| c["name"] == "absent_in_pred")
        .unwrap();
    let r = matrix_for(absent).report();
    let e = r.per_class.iter().find(|c| c.class == "e").unwrap();
    assert!(e.support > 0);
    assert_eq!((e.precision, e.recall, e.f1), (0.0, 0.0, 0.0));
    let cross = cases
        .iter()
        .find(|c| c["name"] == "absent_in_true")
        .unwrap();
    let r = matrix_for(cross).report();
    let syn = r.per_class.iter().find(|c| c.class == "Syn").unwrap();
    assert_eq!((syn.support, syn.recall), (0, 0.0));
}

#[test]
fn cross_dataset_indices_map_by_name() {
    // Test data labelled with its own classes; the model predicts indices into its own list.
    let test_classes = ["BENIGN", "DoS", "Mirai"];
    let model_classes = ["BENIGN", "DoS", "Syn", "UDP"];
    let y_true = [0, 1, 2, 1, 0];
    let y_pred = [0, 1, 2, 3, 1]; // model index 2 = Syn
    let cm =
        ConfusionMatrix::cross_dataset(&y_true, &test_classes, &y_pred, &model_classes).unwrap();
    assert_eq!(cm.classes, ["BENIGN", "DoS", "Mirai", "Syn", "UDP"]);
    let by_name = ConfusionMatrix::from_labels(
        &["BENIGN", "DoS", "Mirai", "DoS", "BENIGN"],
        &["BENIGN", "DoS", "Syn", "UDP", "DoS"],
    )
    .unwrap();
    assert_eq!(cm, by_name);
    assert_eq!(cm.report().accuracy, 0.4);
    let json = serde_json::to_string(&cm.report()).unwrap();
    assert!(json.contains("\"balanced_accuracy\""));
}

#[test]
fn bad_input_is_a_typed_error() {
    assert!(matches!(
        ConfusionMatrix::from_indices(&[0, 1], &[0], &["a", "b"]),
        Err(MetricsError::LengthMismatch {
            true_len: 2,
            pred_len: 1
        })
    ));
    assert!(matches!(
        ConfusionMatrix::from_indices(&[0, 2], &[0, 1], &["a", "b"]),
        Err(MetricsError::LabelOutOfRange {
            which: "true",
            label: 2,
            position: 1,
            ..
        })
    ));
    assert!(matches!(
        ConfusionMatrix::from_indices(&[], &[], &["a"]),
        Err(MetricsError::Empty)
    ));
    assert!(matches!(
        ConfusionMatrix::from_labels_with_classes(&["a"], &["z"], &["a", "b"]),
        Err(MetricsError::UnknownLabel {
            which: "predicted",
            ..
        })
    ));
    assert!(matches!(
        ConfusionMatrix::from_indices(&[0], &[0], &["a", "a"]),
        Err(MetricsError::DuplicateClass(_))
    ));
}
