//! Test helper shared by `crates/rf-baseline/tests/*` and the root `tests/rf_real.rs`: loads the
//! real balanced CIC-DDoS2019 sample with a minimal CSV parser (the same cleaning as
//! `fixtures/sklearn_rf_reference.py`: 76 THESIS.md features, non-finite → −1, f64 → f32,
//! `UDP-lag` → `UDPLag`) and the split indices written by that script.
#![allow(dead_code)]
use std::path::Path;

use ndarray::Array2;

/// Columns that are not features (THESIS.md) plus the label.
const DROP: [&str; 7] = [
    "Source Port",
    "Destination Port",
    "Timestamp",
    "Fwd Header Length.1",
    "Inbound",
    "CWE Flag Count",
    "Label",
];

pub struct CicSample {
    pub x: Array2<f32>,
    pub y: Vec<usize>,
    pub classes: Vec<String>,
    pub feature_names: Vec<String>,
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
    pub reference: serde_json::Value,
}

impl CicSample {
    /// `datasets` = the shared datasets folder, `fixture` = sklearn_rf_reference.json.
    pub fn load(datasets: &Path, fixture: &Path) -> CicSample {
        let csv = datasets.join("cic-ddos2019/balanced-sample/combined_data.csv");
        let text =
            std::fs::read_to_string(&csv).unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
        let mut lines = text.lines();
        let header: Vec<String> = lines
            .next()
            .unwrap()
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
        let keep: Vec<usize> = (0..header.len())
            .filter(|&i| !DROP.contains(&header[i].as_str()))
            .collect();
        let label_col = header.iter().position(|h| h == "Label").unwrap();
        let mut data = Vec::new();
        let mut raw_labels = Vec::new();
        for line in lines.filter(|l| !l.trim().is_empty()) {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), header.len(), "ragged row");
            for &i in &keep {
                let v = cells[i].trim().parse::<f64>().unwrap_or(f64::NAN);
                data.push(if v.is_finite() { v as f32 } else { -1.0 });
            }
            let l = cells[label_col].trim();
            raw_labels.push(if l == "UDP-lag" {
                "UDPLag".to_string()
            } else {
                l.to_string()
            });
        }
        let n = raw_labels.len();
        let x = Array2::from_shape_vec((n, keep.len()), data).unwrap();
        let mut classes = raw_labels.clone();
        classes.sort();
        classes.dedup();
        let y = raw_labels
            .iter()
            .map(|l| classes.iter().position(|c| c == l).unwrap())
            .collect();
        let reference: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
        let idx = |k: &str| -> Vec<usize> {
            reference[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect()
        };
        let feature_names: Vec<String> = keep.iter().map(|&i| header[i].clone()).collect();
        let ref_names: Vec<String> = reference["feature_names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            feature_names, ref_names,
            "feature columns differ from the fixture"
        );
        let ref_classes: Vec<String> = reference["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(classes, ref_classes, "classes differ from the fixture");
        CicSample {
            x,
            y,
            classes,
            feature_names,
            train: idx("train"),
            val: idx("val"),
            test: idx("test"),
            reference,
        }
    }

    pub fn rows(&self, idx: &[usize]) -> (Array2<f32>, Vec<usize>) {
        (
            self.x.select(ndarray::Axis(0), idx),
            idx.iter().map(|&i| self.y[i]).collect(),
        )
    }

    /// scikit-learn's mean over seeds of `key` (e.g. `test_macro_f1`).
    pub fn sklearn_mean(&self, key: &str) -> f64 {
        self.reference["mean_over_seeds"][key].as_f64().unwrap()
    }
}

/// scikit-learn's `f1_score(average="macro")` over the classes present in `truth` or `pred`.
pub fn macro_f1(truth: &[usize], pred: &[usize], n_classes: usize) -> f64 {
    let mut tp = vec![0usize; n_classes];
    let mut fp = vec![0usize; n_classes];
    let mut fn_ = vec![0usize; n_classes];
    for (&t, &p) in truth.iter().zip(pred) {
        if t == p {
            tp[t] += 1;
        } else {
            fp[p] += 1;
            fn_[t] += 1;
        }
    }
    let mut sum = 0.0;
    let mut k = 0;
    for c in 0..n_classes {
        if tp[c] + fp[c] + fn_[c] == 0 {
            continue;
        }
        k += 1;
        let denom = (2 * tp[c] + fp[c] + fn_[c]) as f64;
        sum += if denom > 0.0 {
            2.0 * tp[c] as f64 / denom
        } else {
            0.0
        };
    }
    sum / k as f64
}

pub fn accuracy(truth: &[usize], pred: &[usize]) -> f64 {
    truth.iter().zip(pred).filter(|(a, b)| a == b).count() as f64 / truth.len() as f64
}
