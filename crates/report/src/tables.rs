//! Result tables from plain row structs, rendered as Markdown and HTML.
//!
//! ```
//! use report::tables::{model_comparison_table, ModelComparisonRow};
//!
//! let row = ModelComparisonRow { model: "MLP fp32".into(), accuracy: 0.9712, ..Default::default() };
//! let table = model_comparison_table(&[row]);
//! assert!(table.to_markdown().contains("| MLP fp32 | 97.12 %"));
//! assert!(table.to_html().contains("<td>MLP fp32</td>"));
//! ```
use serde::{Deserialize, Serialize};
use shap::Explanation;

use crate::figures::{fmt_si, mean_abs_shap, FigureError};

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Align {
    /// Text columns.
    Left,
    /// Number columns.
    Right,
}

/// A table of preformatted cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Caption shown above the table.
    pub caption: String,
    /// Column headers.
    pub headers: Vec<String>,
    /// One alignment per column.
    pub align: Vec<Align>,
    /// Rows of cells; every row has `headers.len()` cells.
    pub rows: Vec<Vec<String>>,
    /// Optional note shown below the table (sources, units, "synthetic (resampled)" labels).
    pub note: Option<String>,
}

impl Table {
    /// An empty table; the first column is left-aligned, the others right-aligned.
    pub fn new<S: AsRef<str>>(caption: &str, headers: &[S]) -> Self {
        let align = (0..headers.len())
            .map(|i| if i == 0 { Align::Left } else { Align::Right })
            .collect();
        Table {
            caption: caption.to_string(),
            headers: headers.iter().map(|h| h.as_ref().to_string()).collect(),
            align,
            rows: Vec::new(),
            note: None,
        }
    }

    /// Appends a row; a short row is padded with empty cells and extra cells are dropped, so a
    /// table is always rectangular.
    pub fn push_row(&mut self, mut cells: Vec<String>) -> &mut Self {
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
        self
    }

    /// Sets the note shown below the table.
    pub fn with_note(mut self, note: &str) -> Self {
        self.note = Some(note.to_string());
        self
    }

    /// GitHub-flavoured Markdown (caption in bold above, note in italics below).
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        if !self.caption.is_empty() {
            s.push_str(&format!("**{}**\n\n", md_escape(&self.caption)));
        }
        let row = |cells: &[String]| {
            let inner: Vec<String> = cells.iter().map(|c| md_escape(c)).collect();
            format!("| {} |\n", inner.join(" | "))
        };
        s.push_str(&row(&self.headers));
        let rule: Vec<&str> = self
            .align
            .iter()
            .map(|a| if *a == Align::Right { "---:" } else { ":---" })
            .collect();
        s.push_str(&format!("| {} |\n", rule.join(" | ")));
        for r in &self.rows {
            s.push_str(&row(r));
        }
        if let Some(note) = &self.note {
            s.push_str(&format!("\n*{}*\n", md_escape(note)));
        }
        s
    }

    /// An HTML `<table>` with `<caption>`; cells are escaped.
    pub fn to_html(&self) -> String {
        let mut s = String::from("<table>\n");
        if !self.caption.is_empty() {
            s.push_str(&format!(
                "<caption>{}</caption>\n",
                html_escape(&self.caption)
            ));
        }
        let class = |i: usize| {
            if self.align.get(i) == Some(&Align::Right) {
                " class=\"num\""
            } else {
                ""
            }
        };
        s.push_str("<thead><tr>");
        for (i, h) in self.headers.iter().enumerate() {
            s.push_str(&format!("<th{}>{}</th>", class(i), html_escape(h)));
        }
        s.push_str("</tr></thead>\n<tbody>\n");
        for r in &self.rows {
            s.push_str("<tr>");
            for (i, c) in r.iter().enumerate() {
                s.push_str(&format!("<td{}>{}</td>", class(i), html_escape(c)));
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</tbody>\n</table>\n");
        if let Some(note) = &self.note {
            s.push_str(&format!("<p class=\"note\">{}</p>\n", html_escape(note)));
        }
        s
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes a Markdown table cell: pipes would split the cell, newlines the row.
pub fn md_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

const NONE: &str = "–";

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.2} %", v * 100.0)
    } else {
        NONE.into()
    }
}
fn dec(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        NONE.into()
    }
}
fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| NONE.into())
}
/// Bytes as B / KiB / MiB / GiB with 2 decimals.
pub fn fmt_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0))
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.2} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}
fn rate(v: f64) -> String {
    fmt_si(v)
}
fn secs(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// One model in the model comparison table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelComparisonRow {
    /// Model name.
    pub model: String,
    /// Accuracy in [0, 1].
    pub accuracy: f64,
    /// Macro-averaged precision in [0, 1].
    pub macro_precision: f64,
    /// Macro-averaged recall in [0, 1].
    pub macro_recall: f64,
    /// Macro-averaged F1 in [0, 1].
    pub macro_f1: f64,
    /// Training wall time in seconds.
    pub training_time_s: Option<f64>,
    /// Serialised model size in bytes.
    pub size_bytes: Option<u64>,
    /// Inference throughput in flows/s.
    pub throughput_flows_s: Option<f64>,
    /// Latency of one batch in milliseconds.
    pub latency_ms: Option<f64>,
    /// Peak memory in bytes.
    pub memory_bytes: Option<u64>,
}

/// Model comparison: accuracy, macro precision/recall/F1, training time, size, throughput,
/// latency, memory.
pub fn model_comparison_table(rows: &[ModelComparisonRow]) -> Table {
    let mut t = Table::new(
        "Model comparison",
        &[
            "model",
            "accuracy",
            "macro precision",
            "macro recall",
            "macro F1",
            "training time (s)",
            "size",
            "throughput (flows/s)",
            "latency (ms)",
            "memory",
        ],
    );
    for r in rows {
        t.push_row(vec![
            r.model.clone(),
            pct(r.accuracy),
            dec(r.macro_precision),
            dec(r.macro_recall),
            dec(r.macro_f1),
            opt(r.training_time_s, secs),
            r.size_bytes.map(fmt_bytes).unwrap_or_else(|| NONE.into()),
            opt(r.throughput_flows_s, rate),
            opt(r.latency_ms, |v| format!("{v:.3}")),
            r.memory_bytes.map(fmt_bytes).unwrap_or_else(|| NONE.into()),
        ]);
    }
    t
}

/// One precision variant in the quantization table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuantizationRow {
    /// Model name.
    pub model: String,
    /// Numeric format, e.g. `"fp32"`, `"int8 dynamic"`.
    pub precision: String,
    /// Accuracy in [0, 1].
    pub accuracy: f64,
    /// Macro F1 in [0, 1].
    pub macro_f1: f64,
    /// Serialised size in bytes.
    pub size_bytes: u64,
    /// Throughput in flows/s.
    pub throughput_flows_s: Option<f64>,
    /// Fraction of flows whose predicted class equals the fp32 model's, in [0, 1].
    pub agreement_with_fp32: Option<f64>,
    /// Largest |probability difference| to the fp32 model.
    pub max_abs_prob_diff: Option<f64>,
}

/// Quantization: accuracy, F1, size, throughput and agreement with fp32 per numeric format.
pub fn quantization_table(rows: &[QuantizationRow]) -> Table {
    let mut t = Table::new(
        "Quantization",
        &[
            "model",
            "precision",
            "accuracy",
            "macro F1",
            "size",
            "throughput (flows/s)",
            "agreement with fp32",
            "max |Δp|",
        ],
    );
    t.align[1] = Align::Left;
    for r in rows {
        t.push_row(vec![
            r.model.clone(),
            r.precision.clone(),
            pct(r.accuracy),
            dec(r.macro_f1),
            fmt_bytes(r.size_bytes),
            opt(r.throughput_flows_s, rate),
            opt(r.agreement_with_fp32, pct),
            opt(r.max_abs_prob_diff, |v| format!("{v:.2e}")),
        ]);
    }
    t
}

/// One feature in the SHAP top-features table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShapFeatureRow {
    /// 1-based rank by mean |SHAP value|.
    pub rank: usize,
    /// Canonical feature name.
    pub feature: String,
    /// Mean |SHAP value|.
    pub mean_abs_shap: f64,
    /// The feature's rank in the thesis' claimed list, when it is there.
    pub thesis_rank: Option<usize>,
}

/// The `k` features with the largest mean |SHAP value| (one class, or `None` = averaged over
/// classes), ties broken by feature index.
pub fn shap_top_features(
    expl: &Explanation,
    class: Option<usize>,
    k: usize,
) -> Result<Vec<ShapFeatureRow>, FigureError> {
    let imp = mean_abs_shap(expl, class)?;
    let mut idx: Vec<usize> = (0..imp.len()).collect();
    idx.sort_by(|&a, &b| imp[b].total_cmp(&imp[a]).then(a.cmp(&b)));
    Ok(idx
        .into_iter()
        .take(k)
        .enumerate()
        .map(|(r, j)| ShapFeatureRow {
            rank: r + 1,
            feature: expl.feature_names[j].clone(),
            mean_abs_shap: imp[j],
            thesis_rank: None,
        })
        .collect())
}

/// SHAP top features: rank, feature, mean |SHAP value|, thesis rank.
pub fn shap_top_features_table(rows: &[ShapFeatureRow]) -> Table {
    let mut t = Table::new(
        "Top features by mean |SHAP value|",
        &["rank", "feature", "mean |SHAP|", "thesis rank"],
    );
    t.align = vec![Align::Right, Align::Left, Align::Right, Align::Right];
    for r in rows {
        t.push_row(vec![
            r.rank.to_string(),
            r.feature.clone(),
            format!("{:.5}", r.mean_abs_shap),
            r.thesis_rank
                .map(|v| v.to_string())
                .unwrap_or_else(|| NONE.into()),
        ]);
    }
    t
}

/// One train → test dataset pair in the cross-dataset table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CrossDatasetRow {
    /// Dataset the model was trained on.
    pub train_dataset: String,
    /// Dataset it was evaluated on.
    pub test_dataset: String,
    /// Label space used for the comparison (e.g. `"benign/attack"`, `"coarse families"`).
    pub label_space: String,
    /// Flows evaluated.
    pub flows: u64,
    /// Accuracy in [0, 1].
    pub accuracy: f64,
    /// Macro F1 in [0, 1].
    pub macro_f1: f64,
    /// The thesis' claimed accuracy for this pair, when it states one.
    pub thesis_accuracy: Option<f64>,
}

/// Cross-dataset generalisation: train → test pair, label space, accuracy, F1, thesis claim.
pub fn cross_dataset_table(rows: &[CrossDatasetRow]) -> Table {
    let mut t = Table::new(
        "Cross-dataset evaluation",
        &[
            "trained on",
            "tested on",
            "label space",
            "flows",
            "accuracy",
            "macro F1",
            "thesis accuracy",
        ],
    );
    t.align[1] = Align::Left;
    t.align[2] = Align::Left;
    for r in rows {
        t.push_row(vec![
            r.train_dataset.clone(),
            r.test_dataset.clone(),
            r.label_space.clone(),
            r.flows.to_string(),
            pct(r.accuracy),
            dec(r.macro_f1),
            opt(r.thesis_accuracy, pct),
        ]);
    }
    t
}

/// One class in the per-class report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PerClassRow {
    /// Class name (or `"macro avg"`, `"weighted avg"`).
    pub class: String,
    /// Precision in [0, 1].
    pub precision: f64,
    /// Recall in [0, 1].
    pub recall: f64,
    /// F1 in [0, 1].
    pub f1: f64,
    /// Flows of this class in the evaluated set.
    pub support: u64,
}

/// Per-class report like scikit-learn's `classification_report` (4 decimals).
pub fn per_class_table(rows: &[PerClassRow]) -> Table {
    let mut t = Table::new(
        "Per-class report",
        &["class", "precision", "recall", "F1", "support"],
    );
    for r in rows {
        t.push_row(vec![
            r.class.clone(),
            dec(r.precision),
            dec(r.recall),
            dec(r.f1),
            r.support.to_string(),
        ]);
    }
    t
}
