//! `FlowFrame`: the in-memory table of flows every model crate consumes, and its label levels.

use std::collections::BTreeMap;

use ndarray::{Array2, Axis};
use serde::{Deserialize, Serialize};

/// A string column stored as codes into sorted unique names.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Categorical {
    /// One code per row; `names[codes[i]]` is row i's value.
    pub codes: Vec<u32>,
    /// The distinct values, sorted (byte order).
    pub names: Vec<String>,
}

impl Categorical {
    /// Build from per-row codes into an arbitrary table (`table[code]` = value, duplicates allowed):
    /// the result names only the values in use, sorted.
    pub fn from_table(codes: &[u32], table: &[String]) -> Self {
        let mut used = vec![false; table.len()];
        for &c in codes {
            used[c as usize] = true;
        }
        let mut names: Vec<String> = table
            .iter()
            .zip(&used)
            .filter(|(_, u)| **u)
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        names.dedup();
        let remap: Vec<u32> = table
            .iter()
            .map(|n| names.binary_search(n).map_or(0, |i| i as u32))
            .collect();
        Categorical {
            codes: codes.iter().map(|&c| remap[c as usize]).collect(),
            names,
        }
    }

    /// Build from per-row strings.
    pub fn from_values<S: AsRef<str>>(values: &[S]) -> Self {
        let mut names: Vec<String> = values.iter().map(|v| v.as_ref().to_string()).collect();
        names.sort();
        names.dedup();
        let codes = values
            .iter()
            .map(|v| {
                names
                    .binary_search_by(|n| n.as_str().cmp(v.as_ref()))
                    .map_or(0, |i| i as u32)
            })
            .collect();
        Categorical { codes, names }
    }

    /// The value of row `i`.
    pub fn get(&self, i: usize) -> &str {
        &self.names[self.codes[i] as usize]
    }

    /// Rows `idx` only, names re-compacted to the values still in use.
    pub fn select(&self, idx: &[usize]) -> Self {
        let codes: Vec<u32> = idx.iter().map(|&i| self.codes[i]).collect();
        Categorical::from_table(&codes, &self.names)
    }

    /// Count of rows per value.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let mut c = vec![0u64; self.names.len()];
        for &k in &self.codes {
            c[k as usize] += 1;
        }
        self.names
            .iter()
            .cloned()
            .zip(c)
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// Which label a model learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelLevel {
    /// The dataset's fine classes (CIC-DDoS2019: the thesis' 17 classes, plus WebDDoS if present).
    Fine,
    /// Attack families shared across datasets (see [`crate::FAMILIES`]).
    Family,
    /// `benign` (0) vs `attack` (1).
    Binary,
}

/// Integer targets and the class names they index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// One class index per row.
    pub y: Vec<u32>,
    /// `classes[y[i]]` is row i's class. Sorted for `Fine` and `Family`; `["benign", "attack"]`
    /// for `Binary`.
    pub classes: Vec<String>,
}

/// Flows in memory: the feature matrix plus every label level and each row's provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowFrame {
    /// Features, row-major, rows = flows, columns = `feature_names`.
    pub x: Array2<f32>,
    /// Canonical snake_case feature names (a subset of [`crate::FEATURES`], canonical order).
    pub feature_names: Vec<String>,
    /// Fine class per row.
    pub fine: Categorical,
    /// Attack family per row.
    pub family: Categorical,
    /// Benign (false) / attack (true) per row.
    pub is_attack: Vec<bool>,
    /// The raw label as found in the file (trimmed).
    pub label_raw: Categorical,
    /// Dataset id per row (`cic-ddos2019`, …).
    pub dataset: Categorical,
    /// Source file per row.
    pub source_file: Categorical,
    /// 1-based line number in the source file per row (the header is line 1).
    pub source_line: Vec<u64>,
    /// Fine classes present in the data but outside the classification task (CIC-DDoS2019:
    /// `WebDDoS`); [`FlowFrame::task_rows`] drops them.
    pub excluded_classes: Vec<String>,
    /// `true` when the rows are synthetic (resampled), see [`crate::resample_synthetic`].
    pub synthetic: bool,
}

impl FlowFrame {
    /// Number of flows.
    pub fn n_rows(&self) -> usize {
        self.x.nrows()
    }

    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.x.ncols()
    }

    /// Targets at a label level.
    pub fn targets(&self, level: LabelLevel) -> Targets {
        match level {
            LabelLevel::Fine => Targets {
                y: self.fine.codes.clone(),
                classes: self.fine.names.clone(),
            },
            LabelLevel::Family => Targets {
                y: self.family.codes.clone(),
                classes: self.family.names.clone(),
            },
            LabelLevel::Binary => Targets {
                y: self.is_attack.iter().map(|&a| a as u32).collect(),
                classes: vec!["benign".to_string(), "attack".to_string()],
            },
        }
    }

    /// Rows `idx` (in that order, repeats allowed) as a new frame.
    pub fn select(&self, idx: &[usize]) -> FlowFrame {
        FlowFrame {
            x: self.x.select(Axis(0), idx),
            feature_names: self.feature_names.clone(),
            fine: self.fine.select(idx),
            family: self.family.select(idx),
            is_attack: idx.iter().map(|&i| self.is_attack[i]).collect(),
            label_raw: self.label_raw.select(idx),
            dataset: self.dataset.select(idx),
            source_file: self.source_file.select(idx),
            source_line: idx.iter().map(|&i| self.source_line[i]).collect(),
            excluded_classes: self.excluded_classes.clone(),
            synthetic: self.synthetic,
        }
    }

    /// The rows whose fine class belongs to the classification task (drops `excluded_classes`,
    /// e.g. CIC-DDoS2019's WebDDoS), so `targets(Fine)` gives exactly the task's classes.
    pub fn task_rows(&self) -> FlowFrame {
        self.task_rows_counted().0
    }

    /// [`FlowFrame::task_rows`], and how many rows of each excluded class were dropped (only
    /// classes with rows), so a command can say what it left out.
    pub fn task_rows_counted(&self) -> (FlowFrame, std::collections::BTreeMap<String, u64>) {
        let mut dropped = std::collections::BTreeMap::new();
        let idx: Vec<usize> = (0..self.n_rows())
            .filter(|&i| {
                let fine = self.fine.get(i);
                let excluded = self.excluded_classes.iter().any(|c| c == fine);
                if excluded {
                    *dropped.entry(fine.to_string()).or_insert(0u64) += 1;
                }
                !excluded
            })
            .collect();
        (self.select(&idx), dropped)
    }

    /// The columns named `names`, in that order (e.g. the features a model was trained on).
    ///
    /// ```
    /// # use flowdata::{read_csv, ReadOptions};
    /// # let dir = std::env::temp_dir().join("flowdata-doc-feature-columns");
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # let csv = dir.join("f.csv");
    /// # std::fs::write(&csv, "Flow Duration,Protocol,Label\n5,6,BENIGN\n").unwrap();
    /// let (frame, _) = read_csv(&[&csv], &ReadOptions::default()).unwrap();
    /// let x = frame.feature_columns(&["flow_duration".to_string()]).unwrap();
    /// assert_eq!(x[[0, 0]], 5.0);
    /// assert!(frame.feature_columns(&["idle_min".to_string()]).is_err());
    /// ```
    pub fn feature_columns(&self, names: &[String]) -> crate::Result<Array2<f32>> {
        let idx = names
            .iter()
            .map(|n| {
                self.feature_names
                    .iter()
                    .position(|f| f == n)
                    .ok_or_else(|| {
                        crate::FlowDataError::InvalidArgument(format!(
                            "feature `{n}` is not among this data's {} features",
                            self.feature_names.len()
                        ))
                    })
            })
            .collect::<crate::Result<Vec<_>>>()?;
        Ok(self.x.select(Axis(1), &idx))
    }

    /// Row count per class at a label level.
    pub fn class_counts(&self, level: LabelLevel) -> BTreeMap<String, u64> {
        let t = self.targets(level);
        let mut c = vec![0u64; t.classes.len()];
        for &y in &t.y {
            c[y as usize] += 1;
        }
        t.classes
            .into_iter()
            .zip(c)
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Concatenate frames with the same feature names.
    pub fn concat(frames: &[FlowFrame]) -> crate::Result<FlowFrame> {
        let Some(first) = frames.first() else {
            return Err(crate::FlowDataError::InvalidArgument(
                "concat of no frames".into(),
            ));
        };
        for f in frames {
            if f.feature_names != first.feature_names {
                return Err(crate::FlowDataError::InvalidArgument(
                    "concat of frames with different features".into(),
                ));
            }
        }
        let views: Vec<_> = frames.iter().map(|f| f.x.view()).collect();
        let x = ndarray::concatenate(Axis(0), &views)
            .map_err(|e| crate::FlowDataError::InvalidArgument(e.to_string()))?;
        let cat = |get: &dyn Fn(&FlowFrame) -> &Categorical| {
            let mut table = Vec::new();
            let mut codes = Vec::new();
            for f in frames {
                let c = get(f);
                let base = table.len() as u32;
                table.extend(c.names.iter().cloned());
                codes.extend(c.codes.iter().map(|&k| k + base));
            }
            Categorical::from_table(&codes, &table)
        };
        let mut excluded: Vec<String> = frames
            .iter()
            .flat_map(|f| f.excluded_classes.iter().cloned())
            .collect();
        excluded.sort();
        excluded.dedup();
        Ok(FlowFrame {
            x,
            feature_names: first.feature_names.clone(),
            fine: cat(&|f| &f.fine),
            family: cat(&|f| &f.family),
            is_attack: frames
                .iter()
                .flat_map(|f| f.is_attack.iter().copied())
                .collect(),
            label_raw: cat(&|f| &f.label_raw),
            dataset: cat(&|f| &f.dataset),
            source_file: cat(&|f| &f.source_file),
            source_line: frames
                .iter()
                .flat_map(|f| f.source_line.iter().copied())
                .collect(),
            excluded_classes: excluded,
            synthetic: frames.iter().any(|f| f.synthetic),
        })
    }
}
