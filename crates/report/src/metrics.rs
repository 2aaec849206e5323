//! Classification metrics with scikit-learn semantics (`zero_division=0`).
//!
//! Everything starts from a [`ConfusionMatrix`] over an explicit, ordered class list:
//! - [`ConfusionMatrix::from_indices`]: label indices into one class list (the usual case);
//! - [`ConfusionMatrix::from_labels`]: string labels; classes = sorted union of both, like
//!   scikit-learn's `unique_labels`;
//! - [`ConfusionMatrix::cross_dataset`]: true indices into the test set's class list, predicted
//!   indices into the model's (cross-dataset evaluation, where the label sets differ); both are
//!   mapped to names first.
//!
//! [`ConfusionMatrix::report`] gives accuracy, balanced accuracy, per-class precision/recall/F1/
//! support and their macro and weighted averages; [`ClassificationReport::to_text`] prints
//! them exactly as `sklearn.metrics.classification_report` does. A class never predicted has
//! precision 0, a class never true has recall 0 (both counted in the macro average, as in
//! scikit-learn); balanced accuracy averages recall over classes that occur in `y_true` only.
//!
//! ```
//! use report::metrics::ConfusionMatrix;
//! let classes = ["BENIGN", "Syn", "UDP"];
//! let cm = ConfusionMatrix::from_indices(&[0, 0, 1, 2], &[0, 1, 1, 1], &classes).unwrap();
//! let r = cm.report();
//! assert_eq!(r.accuracy, 0.5);
//! assert_eq!(r.per_class[2].precision, 0.0); // UDP never predicted: zero_division = 0
//! assert!(r.to_text(2).contains("    accuracy                           0.50         4"));
//! ```

use std::collections::BTreeSet;
use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// What can go wrong when building metrics.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// `y_true` and `y_pred` differ in length.
    #[error("y_true has {true_len} labels but y_pred has {pred_len}")]
    LengthMismatch {
        /// Length of `y_true`.
        true_len: usize,
        /// Length of `y_pred`.
        pred_len: usize,
    },
    /// No samples.
    #[error("no samples to evaluate")]
    Empty,
    /// A label index is not a valid index into its class list.
    #[error(
        "{which} label {label} at position {position} is out of range for {n_classes} classes"
    )]
    LabelOutOfRange {
        /// `"true"` or `"predicted"`.
        which: &'static str,
        /// The offending index.
        label: usize,
        /// Its position.
        position: usize,
        /// Length of the class list.
        n_classes: usize,
    },
    /// A string label is not in the explicit class list.
    #[error("{which} label `{label}` at position {position} is not in the class list")]
    UnknownLabel {
        /// `"true"` or `"predicted"`.
        which: &'static str,
        /// The label.
        label: String,
        /// Its position.
        position: usize,
    },
    /// A class name occurs twice in a class list.
    #[error("class `{0}` occurs twice in the class list")]
    DuplicateClass(String),
}

/// Counts of (true class, predicted class) pairs: `counts[t][p]`, rows = true, as scikit-learn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    /// Class names, in row/column order.
    pub classes: Vec<String>,
    /// `counts[t][p]` = samples of true class `t` predicted as `p`.
    pub counts: Vec<Vec<u64>>,
}

fn check_unique(classes: &[String]) -> Result<(), MetricsError> {
    let mut seen = BTreeSet::new();
    for c in classes {
        if !seen.insert(c.as_str()) {
            return Err(MetricsError::DuplicateClass(c.clone()));
        }
    }
    Ok(())
}

fn check_lengths(a: usize, b: usize) -> Result<(), MetricsError> {
    if a != b {
        return Err(MetricsError::LengthMismatch {
            true_len: a,
            pred_len: b,
        });
    }
    if a == 0 {
        return Err(MetricsError::Empty);
    }
    Ok(())
}

/// Maps label indices to names, rejecting out-of-range indices.
fn index_names<'a>(
    which: &'static str,
    idx: &[usize],
    names: &[&'a str],
) -> Result<Vec<&'a str>, MetricsError> {
    idx.iter()
        .enumerate()
        .map(|(position, &i)| {
            names.get(i).copied().ok_or(MetricsError::LabelOutOfRange {
                which,
                label: i,
                position,
                n_classes: names.len(),
            })
        })
        .collect()
}

impl ConfusionMatrix {
    /// From label indices into `classes` (scikit-learn's `labels=classes`: every listed class
    /// gets a row, also when it occurs in neither vector).
    pub fn from_indices<S: AsRef<str>>(
        y_true: &[usize],
        y_pred: &[usize],
        classes: &[S],
    ) -> Result<Self, MetricsError> {
        check_lengths(y_true.len(), y_pred.len())?;
        let classes: Vec<String> = classes.iter().map(|c| c.as_ref().to_string()).collect();
        check_unique(&classes)?;
        let k = classes.len();
        let mut counts = vec![vec![0u64; k]; k];
        for (position, (&t, &p)) in y_true.iter().zip(y_pred).enumerate() {
            if t >= k {
                return Err(MetricsError::LabelOutOfRange {
                    which: "true",
                    label: t,
                    position,
                    n_classes: k,
                });
            }
            if p >= k {
                return Err(MetricsError::LabelOutOfRange {
                    which: "predicted",
                    label: p,
                    position,
                    n_classes: k,
                });
            }
            counts[t][p] += 1;
        }
        Ok(Self { classes, counts })
    }

    /// From string labels; the classes are the sorted union of both vectors (scikit-learn's
    /// default when `labels` is not given).
    pub fn from_labels<S: AsRef<str>, T: AsRef<str>>(
        y_true: &[S],
        y_pred: &[T],
    ) -> Result<Self, MetricsError> {
        check_lengths(y_true.len(), y_pred.len())?;
        let set: BTreeSet<&str> = y_true
            .iter()
            .map(|s| s.as_ref())
            .chain(y_pred.iter().map(|s| s.as_ref()))
            .collect();
        let classes: Vec<&str> = set.into_iter().collect();
        Self::from_labels_with_classes(y_true, y_pred, &classes)
    }

    /// From string labels with an explicit class order; every label must be in `classes`.
    pub fn from_labels_with_classes<S: AsRef<str>, T: AsRef<str>, C: AsRef<str>>(
        y_true: &[S],
        y_pred: &[T],
        classes: &[C],
    ) -> Result<Self, MetricsError> {
        check_lengths(y_true.len(), y_pred.len())?;
        let index: HashMap<&str, usize> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_ref(), i))
            .collect();
        let lookup = |which: &'static str, labels: &[&str]| -> Result<Vec<usize>, MetricsError> {
            labels
                .iter()
                .enumerate()
                .map(|(position, l)| {
                    index
                        .get(l)
                        .copied()
                        .ok_or_else(|| MetricsError::UnknownLabel {
                            which,
                            label: l.to_string(),
                            position,
                        })
                })
                .collect()
        };
        let t: Vec<&str> = y_true.iter().map(|s| s.as_ref()).collect();
        let p: Vec<&str> = y_pred.iter().map(|s| s.as_ref()).collect();
        let (t, p) = (lookup("true", &t)?, lookup("predicted", &p)?);
        Self::from_indices(&t, &p, classes)
    }

    /// Cross-dataset evaluation: `y_true` indexes `true_classes` (the test data's labels),
    /// `y_pred` indexes `pred_classes` (the model's `classes`). Labels are matched by name; the
    /// matrix covers the sorted union of both class lists, so a class only the model knows gets
    /// a row with support 0 and a test class the model cannot predict gets precision 0.
    pub fn cross_dataset<S: AsRef<str>, T: AsRef<str>>(
        y_true: &[usize],
        true_classes: &[S],
        y_pred: &[usize],
        pred_classes: &[T],
    ) -> Result<Self, MetricsError> {
        check_lengths(y_true.len(), y_pred.len())?;
        let tn: Vec<&str> = true_classes.iter().map(|s| s.as_ref()).collect();
        let pn: Vec<&str> = pred_classes.iter().map(|s| s.as_ref()).collect();
        let set: BTreeSet<&str> = tn.iter().chain(pn.iter()).copied().collect();
        let classes: Vec<&str> = set.into_iter().collect();
        let t = index_names("true", y_true, &tn)?;
        let p = index_names("predicted", y_pred, &pn)?;
        Self::from_labels_with_classes(&t, &p, &classes)
    }

    /// Number of samples.
    pub fn n_samples(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Samples per true class (support).
    pub fn support(&self) -> Vec<u64> {
        self.counts.iter().map(|row| row.iter().sum()).collect()
    }

    /// Samples per predicted class.
    pub fn predicted(&self) -> Vec<u64> {
        (0..self.classes.len())
            .map(|p| self.counts.iter().map(|row| row[p]).sum())
            .collect()
    }

    /// Correct predictions per class (the diagonal).
    pub fn true_positives(&self) -> Vec<u64> {
        (0..self.classes.len()).map(|i| self.counts[i][i]).collect()
    }

    /// Fraction of correct predictions.
    pub fn accuracy(&self) -> f64 {
        let n = self.n_samples();
        if n == 0 {
            return 0.0;
        }
        self.true_positives().iter().sum::<u64>() as f64 / n as f64
    }

    /// Mean recall over the classes that occur in `y_true` (scikit-learn's
    /// `balanced_accuracy_score`, which drops classes without true samples).
    pub fn balanced_accuracy(&self) -> f64 {
        let recalls: Vec<f64> = self
            .true_positives()
            .iter()
            .zip(self.support())
            .filter(|(_, s)| *s > 0)
            .map(|(&tp, s)| tp as f64 / s as f64)
            .collect();
        if recalls.is_empty() {
            0.0
        } else {
            recalls.iter().sum::<f64>() / recalls.len() as f64
        }
    }

    /// Per-class precision, recall, F1 and support (`zero_division = 0`).
    pub fn per_class(&self) -> Vec<ClassMetrics> {
        let div = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
        let (tp, sup, pred) = (self.true_positives(), self.support(), self.predicted());
        (0..self.classes.len())
            .map(|i| {
                let (t, s, p) = (tp[i] as f64, sup[i] as f64, pred[i] as f64);
                ClassMetrics {
                    class: self.classes[i].clone(),
                    precision: div(t, p),
                    recall: div(t, s),
                    // scikit-learn's form: 2 tp / (true + predicted)
                    f1: div(2.0 * t, s + p),
                    support: sup[i],
                }
            })
            .collect()
    }

    /// All metrics at once.
    pub fn report(&self) -> ClassificationReport {
        let per_class = self.per_class();
        let k = per_class.len().max(1) as f64;
        let macro_avg = Averages {
            precision: per_class.iter().map(|c| c.precision).sum::<f64>() / k,
            recall: per_class.iter().map(|c| c.recall).sum::<f64>() / k,
            f1: per_class.iter().map(|c| c.f1).sum::<f64>() / k,
            support: self.n_samples(),
        };
        let total: f64 = per_class.iter().map(|c| c.support as f64).sum();
        let weighted = |f: fn(&ClassMetrics) -> f64| {
            if total == 0.0 {
                per_class.iter().map(f).sum::<f64>() / k
            } else {
                per_class
                    .iter()
                    .map(|c| f(c) * c.support as f64)
                    .sum::<f64>()
                    / total
            }
        };
        let weighted_avg = Averages {
            precision: weighted(|c| c.precision),
            recall: weighted(|c| c.recall),
            f1: weighted(|c| c.f1),
            support: self.n_samples(),
        };
        ClassificationReport {
            accuracy: self.accuracy(),
            balanced_accuracy: self.balanced_accuracy(),
            n_samples: self.n_samples(),
            per_class,
            macro_avg,
            weighted_avg,
            confusion: self.clone(),
        }
    }
}

/// Shorthand for [`ConfusionMatrix::from_indices`] followed by [`ConfusionMatrix::report`].
///
/// ```
/// let r = report::metrics::classification_report(&[0, 1, 1], &[0, 1, 0], &["a", "b"]).unwrap();
/// assert_eq!(r.per_class[1].recall, 0.5);
/// assert_eq!(r.balanced_accuracy, 0.75);
/// ```
pub fn classification_report<S: AsRef<str>>(
    y_true: &[usize],
    y_pred: &[usize],
    classes: &[S],
) -> Result<ClassificationReport, MetricsError> {
    Ok(ConfusionMatrix::from_indices(y_true, y_pred, classes)?.report())
}

/// Precision, recall, F1 and support of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Class name.
    pub class: String,
    /// `tp / predicted`, 0 when the class is never predicted.
    pub precision: f64,
    /// `tp / support`, 0 when the class never occurs.
    pub recall: f64,
    /// `2 tp / (support + predicted)`, 0 when both are 0.
    pub f1: f64,
    /// Number of true samples of this class.
    pub support: u64,
}

/// An averaged row (macro or support-weighted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Averages {
    /// Averaged precision.
    pub precision: f64,
    /// Averaged recall.
    pub recall: f64,
    /// Averaged F1.
    pub f1: f64,
    /// Total support.
    pub support: u64,
}

/// Everything scikit-learn's `classification_report` shows, plus balanced accuracy and the
/// confusion matrix; serialisable for `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    /// Fraction of correct predictions.
    pub accuracy: f64,
    /// Mean recall over classes present in `y_true`.
    pub balanced_accuracy: f64,
    /// Number of samples.
    pub n_samples: u64,
    /// One entry per class, in class order.
    pub per_class: Vec<ClassMetrics>,
    /// Unweighted mean over all classes (including classes with support 0).
    pub macro_avg: Averages,
    /// Mean weighted by support.
    pub weighted_avg: Averages,
    /// The underlying counts.
    pub confusion: ConfusionMatrix,
}

impl ClassificationReport {
    /// The text of `sklearn.metrics.classification_report(..., digits=digits)`, byte for byte.
    pub fn to_text(&self, digits: usize) -> String {
        let heading = "weighted avg";
        let name_width = self
            .per_class
            .iter()
            .map(|c| c.class.chars().count())
            .max()
            .unwrap_or(0);
        let w = name_width.max(heading.len()).max(digits);
        let d = digits;
        let mut s = format!(
            "{:>w$}  {:>9} {:>9} {:>9} {:>9}\n\n",
            "", "precision", "recall", "f1-score", "support"
        );
        let row = |name: &str, p: f64, r: f64, f: f64, n: u64| {
            format!("{name:>w$}  {p:>9.d$} {r:>9.d$} {f:>9.d$} {n:>9}\n")
        };
        for c in &self.per_class {
            s += &row(&c.class, c.precision, c.recall, c.f1, c.support);
        }
        s.push('\n');
        s += &format!(
            "{:>w$}  {:>9} {:>9} {:>9.d$} {:>9}\n",
            "accuracy", "", "", self.accuracy, self.n_samples
        );
        let m = &self.macro_avg;
        s += &row("macro avg", m.precision, m.recall, m.f1, m.support);
        let a = &self.weighted_avg;
        s += &row(heading, a.precision, a.recall, a.f1, a.support);
        s
    }
}

impl fmt::Display for ClassificationReport {
    /// The 2-digit text report (scikit-learn's default).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text(2))
    }
}
