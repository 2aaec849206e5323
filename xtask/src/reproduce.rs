//! `cargo xtask reproduce`: every experiment of the thesis on the real samples, one command.
//!
//! Orchestration only: each number comes from a library crate; this file decides what is run on
//! which rows and writes `results/` (RESULTS.md, report.html, figures/, results.json, the Parquet
//! conversions and the trained model bundles).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde_json::{json, Value};

use flowxai::bundle::{argmax_rows, BundleModel, ModelBundle};
use flowxai::flowdata::{self, FlowFrame, LabelLevel, ReadOptions};
use flowxai::mlp_core::backend::Backend;
use flowxai::mlp_core::{Activation, FittedMlp, HiddenSpec, MlpParams};
use flowxai::preprocess::{FittedStep, PiecewiseLinearParams, Pipeline, PreprocessError, Preset};
use flowxai::quant::{ActivationRange, DynamicQuantParams, StaticQuantParams, WeightGranularity};
use flowxai::report::figures::{self, ClassChoice, Format, ThroughputBar, TrainingHistory};
use flowxai::report::metrics::{ClassificationReport, ConfusionMatrix};
use flowxai::report::tables::{self, Table};
use flowxai::report::{Figure, ReportBuilder, Section};
use flowxai::rf_baseline::linfa::traits::Fit;
use flowxai::rf_baseline::{self, RandomForest};
use flowxai::shap::{self, Background, Explanation, KernelExplainer, KernelParams, TreeExplainer};

use crate::measure;
use crate::Device;

/// Options of `cargo xtask reproduce`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReproduceArgs {
    /// Folder holding the real CICFlowMeter samples (the layout of ../shared/datasets/README.md:
    /// cic-ddos2019/, cse-cic-ids2018/, tii-ssrc-23/).
    #[arg(long, default_value = "../shared/datasets")]
    pub data_dir: PathBuf,
    /// Output folder: RESULTS.md, report.html, figures/, results.json, parquet/, models/.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Where the MLP trains: `auto` (GPU when a CUDA build finds one, else CPU), `cpu` or `cuda`.
    #[arg(long, value_enum, default_value_t = Device::Auto)]
    pub device: Device,
    /// Smaller everything (fewer rows per class, epochs, trees and explained flows) for CI: the
    /// numbers are real but noisier.
    #[arg(long)]
    pub quick: bool,
    /// Seed of every split, sample, initialisation and explainer (the thesis used 42).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// How big each experiment is.
struct Scale {
    rows_per_class: usize,
    mlp_epochs: usize,
    sklearn_epochs: usize,
    trees: usize,
    kernel_flows: usize,
    kernel_background: usize,
    tree_flows: usize,
    timing_rows: usize,
}

impl Scale {
    fn new(quick: bool) -> Self {
        if quick {
            Scale {
                rows_per_class: 150,
                mlp_epochs: 15,
                sklearn_epochs: 40,
                trees: 30,
                kernel_flows: 6,
                kernel_background: 20,
                tree_flows: 40,
                timing_rows: 8192,
            }
        } else {
            Scale {
                rows_per_class: 500,
                mlp_epochs: 80,
                sklearn_epochs: 1200,
                trees: 100,
                kernel_flows: 60,
                kernel_background: 100,
                tree_flows: 300,
                timing_rows: 8192,
            }
        }
    }
}

/// One input set converted to Parquet.
struct SourceSpec {
    name: &'static str,
    paths: &'static [&'static str],
}

const SOURCES: &[SourceSpec] = &[
    SourceSpec {
        name: "cic-ddos2019-balanced-sample",
        paths: &["cic-ddos2019/balanced-sample/combined_data.csv"],
    },
    SourceSpec {
        name: "cic-ddos2019-raw-heads",
        paths: &["cic-ddos2019/raw-heads"],
    },
    SourceSpec {
        name: "cse-cic-ids2018-sample",
        paths: &["cse-cic-ids2018/ids2018_sample.csv"],
    },
    SourceSpec {
        name: "tii-ssrc-23-10lines",
        paths: &["tii-ssrc-23/10lines.csv"],
    },
    SourceSpec {
        name: "tii-ssrc-23-clustered",
        paths: &["tii-ssrc-23/data_clustered.csv"],
    },
    SourceSpec {
        name: "tii-ssrc-23-clustered-agglomerative",
        paths: &["tii-ssrc-23/data_clustered_agglomerative.csv"],
    },
];

/// The thesis' published table (THESIS.md; claims no public notebook backs).
struct ThesisRow {
    model: &'static str,
    accuracy: f64,
    precision: f64,
    recall: f64,
    f1: f64,
    train_s: f64,
    size_mb: f64,
    flows_s: f64,
}

const THESIS_TABLE: &[ThesisRow] = &[
    ThesisRow {
        model: "optimized MLP",
        accuracy: 0.554,
        precision: 0.58,
        recall: 0.55,
        f1: 0.56,
        train_s: 620.0,
        size_mb: 3.8,
        flows_s: 800e3,
    },
    ThesisRow {
        model: "sklearn base",
        accuracy: 0.370,
        precision: 0.41,
        recall: 0.37,
        f1: 0.38,
        train_s: 340.0,
        size_mb: 2.1,
        flows_s: 1.2e6,
    },
    ThesisRow {
        model: "quantized MLP",
        accuracy: 0.538,
        precision: 0.56,
        recall: 0.54,
        f1: 0.55,
        train_s: 620.0,
        size_mb: 1.2,
        flows_s: 1.8e6,
    },
    ThesisRow {
        model: "Random Forest",
        accuracy: 0.469,
        precision: 0.52,
        recall: 0.47,
        f1: 0.49,
        train_s: 180.0,
        size_mb: 15.3,
        flows_s: 600e3,
    },
];

/// The thesis' claimed top SHAP features, in its own (CIC-DDoS2019 header) spelling (THESIS.md).
const THESIS_TOP_FEATURES: &[&str] = &[
    "Flow Bytes/s",
    "Packet Length Mean",
    "Flow IAT Min",
    "Bwd Packets/s",
    "Total Length of Fwd Packets",
    "Packet Length Variance",
    "Fwd Header Length",
];

/// 1-based rank of a canonical feature in the thesis' claimed top list.
fn thesis_rank(canonical: &str) -> Option<usize> {
    let spec = flowdata::FEATURES
        .iter()
        .find(|f| f.canonical == canonical)?;
    THESIS_TOP_FEATURES
        .iter()
        .position(|n| *n == spec.cic_long)
        .map(|i| i + 1)
}

/// Features and targets of one part of a split, preprocessed.
#[derive(Clone)]
struct Part {
    x: Array2<f32>,
    y: Vec<usize>,
}

/// Train / validation / test parts after fitting `pipeline` on the training rows.
#[derive(Clone)]
struct Prepared {
    pipeline: Pipeline,
    train: Part,
    valid: Part,
    test: Part,
    /// Raw (unprocessed) test rows, for the per-class histograms.
    raw_test: Array2<f32>,
    classes: Vec<String>,
    /// Names of the pipeline's output columns.
    features: Vec<String>,
    /// Raw canonical input names.
    input_features: Vec<String>,
    level: LabelLevel,
}

/// A model's evaluation on the test rows.
struct Evaluated {
    name: String,
    preset: Preset,
    report: ClassificationReport,
    train_seconds: Option<f64>,
    size_bytes: u64,
    flows_per_s: f64,
    latency_ms: f64,
    /// Peak RSS of a fresh process loading the saved bundle and scoring one timing batch.
    memory_bytes: Option<u64>,
    proba: Array2<f32>,
}

/// Models trained on one [`Prepared`].
struct Trained {
    optimized: FittedMlp,
    /// What the MLPs read (see [`mlp_input`]); the forest reads the [`Prepared`] itself.
    mlp_input: Prepared,
    forest: RandomForest,
    evaluated: Vec<Evaluated>,
}

struct Run {
    args: ReproduceArgs,
    scale: Scale,
    /// Where the optimized MLP trains (`--device`).
    backend: Box<dyn Backend>,
    progress: ProgressBar,
    figures: Vec<(String, Figure)>,
}

pub fn run(args: &ReproduceArgs) -> Result<()> {
    if !args.data_dir.is_dir() {
        bail!(
            "data directory {} not found: flowxai reads the real CICFlowMeter samples from there \
             (see README.md, 'Where the data comes from'; the samples ship in ../shared/datasets/, \
             the full datasets come from the Canadian Institute for Cybersecurity and TII). \
             Pass --data-dir <folder>.",
            args.data_dir.display()
        );
    }
    let (backend, device) = crate::resolve_device(args.device)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let started = Instant::now();
    let progress = ProgressBar::new(7);
    progress.set_style(
        ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut run = Run {
        args: args.clone(),
        scale: Scale::new(args.quick),
        backend,
        progress,
        figures: Vec::new(),
    };
    run.say(format!(
        "flowxai reproduce: data {}, out {}, device {device}, seed {}{}",
        args.data_dir.display(),
        args.out.display(),
        args.seed,
        if args.quick { ", --quick" } else { "" }
    ));

    // 1. Conversion
    run.progress.set_message("converting CSV → Parquet");
    let (conversion_json, conversion_table, frames) = run.convert_all()?;
    run.step(format!(
        "1/6 converted {} sources to Parquet ({} rows kept)",
        frames.len(),
        frames.values().map(|f| f.n_rows()).sum::<usize>()
    ));

    // 2. CIC-DDoS2019 17 classes, both presets
    run.progress.set_message("CIC-DDoS2019 multi-class models");
    let cic = run.cic_frame(&frames)?;
    let split = flowdata::stratified_split(
        &cic.targets(LabelLevel::Fine).y,
        crate::THESIS_SPLIT,
        args.seed,
    )?;
    let mut multiclass_runs = Vec::new();
    let mut trained_by_preset = BTreeMap::new();
    for preset in [Preset::Thesis, Preset::Default] {
        let prepared = prepare(&cic, &split, LabelLevel::Fine, preset, None)?;
        let trained = run.train_all(&prepared, preset, true)?;
        multiclass_runs.push((preset, prepared));
        trained_by_preset.insert(preset_name(preset), trained);
    }
    let default_trained = &trained_by_preset["default"];
    let default_prepared = &multiclass_runs[1].1;
    let best = default_trained
        .evaluated
        .iter()
        .max_by(|a, b| a.report.macro_avg.f1.total_cmp(&b.report.macro_avg.f1))
        .map(|e| format!("{} {:.3}", e.name, e.report.macro_avg.f1))
        .unwrap_or_default();
    run.step(format!(
        "2/6 CIC-DDoS2019 {} classes, {} train / {} test flows; best macro-F1 (default preprocessing): {best}",
        default_prepared.classes.len(),
        default_prepared.train.y.len(),
        default_prepared.test.y.len()
    ));
    run.multiclass_figures(default_prepared, default_trained)?;

    // 3. Binary
    run.progress.set_message("CIC-DDoS2019 benign vs attack");
    let binary = prepare(&cic, &split, LabelLevel::Binary, Preset::Default, None)?;
    let binary_trained = run.train_all(&binary, Preset::Default, false)?;
    run.step(format!(
        "3/6 binary benign/attack: MLP accuracy {:.3}, forest accuracy {:.3}",
        binary_trained.evaluated[0].report.accuracy, binary_trained.evaluated[1].report.accuracy
    ));

    // 4. Cross-dataset
    run.progress.set_message("cross-dataset tests");
    let cross = run.cross_dataset(&cic, &split, &frames)?;
    run.step(format!(
        "4/6 cross-dataset: {} train→test pairs evaluated",
        cross.len()
    ));

    // 5. SHAP
    run.progress.set_message("SHAP explanations");
    let (kernel_expl, kernel_json) = run.kernel_shap(default_prepared, default_trained)?;
    let (tree_expl, tree_json) = run.tree_shap(default_prepared, &default_trained.forest)?;
    run.step(format!(
        "5/6 SHAP: KernelSHAP {} flows ({:.3} s/flow), TreeSHAP {} flows ({:.4} s/flow); max additivity error {:.1e}",
        kernel_expl.values.dim().0,
        kernel_json["seconds_per_flow"].as_f64().unwrap_or(f64::NAN),
        tree_expl.values.dim().0,
        tree_json["seconds_per_flow"].as_f64().unwrap_or(f64::NAN),
        kernel_json["max_additivity_error"]
            .as_f64()
            .unwrap_or(0.0)
            .max(tree_json["max_additivity_error"].as_f64().unwrap_or(0.0))
    ));
    run.shap_figures(default_prepared, &kernel_expl, &tree_expl)?;

    // 6. Report
    run.progress.set_message("writing the report");
    let results = json!({
        "meta": {
            "seed": args.seed,
            "quick": args.quick,
            "device": device.to_string(),
            "data_dir": args.data_dir.display().to_string(),
            "machine": crate::machine(),
            "flowxai_version": env!("CARGO_PKG_VERSION"),
            "note": "Accuracy numbers are from real CICFlowMeter rows. Throughput and latency are timed on tiled (repeated) real test rows and vary with the machine; everything else is deterministic for the seed.",
        },
        "conversion": conversion_json,
        "multiclass": {
            "dataset": "cic-ddos2019 (balanced sample ∪ raw heads, WebDDoS excluded, capped per class)",
            "rows_per_class_cap": run.scale.rows_per_class,
            "split": {"train": split.train.len(), "valid": split.valid.len(), "test": split.test.len(), "stratified": true, "seed": args.seed},
            "classes": default_prepared.classes,
            "runs": multiclass_runs.iter().map(|(p, _)| preset_name(*p)).zip(trained_by_preset.values())
                .flat_map(|(_, t)| t.evaluated.iter().map(evaluated_json)).collect::<Vec<_>>(),
        },
        "binary": {
            "classes": binary.classes,
            "runs": binary_trained.evaluated.iter().map(evaluated_json).collect::<Vec<_>>(),
        },
        "cross_dataset": cross.iter().map(|c| c.json.clone()).collect::<Vec<_>>(),
        "shap": {"kernel": kernel_json, "tree": tree_json},
        "thesis_claims": THESIS_TABLE.iter().map(|t| json!({
            "model": t.model, "accuracy": t.accuracy, "precision": t.precision, "recall": t.recall,
            "f1": t.f1, "training_time_s": t.train_s, "size_mb": t.size_mb, "throughput_flows_s": t.flows_s,
        })).collect::<Vec<_>>(),
    });
    let results_path = args.out.join("results.json");
    std::fs::write(&results_path, serde_json::to_string_pretty(&results)?)
        .with_context(|| format!("cannot write {}", results_path.display()))?;

    let n_figures = run.figures.len();
    let report = run.build_report(ReportInputs {
        conversion_table,
        multiclass: &trained_by_preset,
        default_prepared,
        binary: &binary_trained,
        cross: &cross,
        kernel: &kernel_expl,
        tree: &tree_expl,
        kernel_json: &kernel_json,
        tree_json: &tree_json,
        device: &device.to_string(),
    })?;
    let written = report
        .write(&args.out)
        .with_context(|| format!("cannot write the report into {}", args.out.display()))?;
    run.step(format!(
        "6/6 report: {} figures, {} and {} written",
        n_figures,
        args.out.join("RESULTS.md").display(),
        args.out.join("report.html").display()
    ));
    let _ = written;
    run.progress.finish_and_clear();
    println!(
        "reproduce finished in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}

fn preset_name(p: Preset) -> &'static str {
    match p {
        Preset::Thesis => "thesis",
        Preset::Default => "default",
        Preset::LogRobust => "log-robust",
        Preset::PiecewiseLinear => "piecewise-linear",
    }
}

fn level_name(l: LabelLevel) -> &'static str {
    match l {
        LabelLevel::Fine => "fine",
        LabelLevel::Family => "family",
        LabelLevel::Binary => "binary",
    }
}

fn evaluated_json(e: &Evaluated) -> Value {
    json!({
        "model": e.name,
        "preprocessing": preset_name(e.preset),
        "accuracy": e.report.accuracy,
        "balanced_accuracy": e.report.balanced_accuracy,
        "macro_precision": e.report.macro_avg.precision,
        "macro_recall": e.report.macro_avg.recall,
        "macro_f1": e.report.macro_avg.f1,
        "weighted_f1": e.report.weighted_avg.f1,
        "test_rows": e.report.n_samples,
        "training_time_s": e.train_seconds,
        "size_bytes": e.size_bytes,
        "throughput_flows_s": e.flows_per_s,
        "latency_ms_single_flow": e.latency_ms,
        "serving_peak_rss_bytes": e.memory_bytes,
        "per_class": e.report.per_class,
        "confusion_matrix": e.report.confusion.counts,
        "classes": e.report.confusion.classes,
    })
}

/// Fit `preset` on the training rows of `frame` and transform every part.
fn prepare(
    frame: &FlowFrame,
    split: &flowdata::Split,
    level: LabelLevel,
    preset: Preset,
    features: Option<&[String]>,
) -> Result<Prepared> {
    let input_features: Vec<String> = features
        .map(|f| f.to_vec())
        .unwrap_or_else(|| frame.feature_names.clone());
    let x = frame.feature_columns(&input_features)?;
    let targets = frame.targets(level);
    let part_raw = |rows: &[usize]| -> (Array2<f32>, Vec<usize>) {
        (
            x.select(Axis(0), rows),
            rows.iter().map(|&i| targets.y[i] as usize).collect(),
        )
    };
    let (train_raw, y_train) = part_raw(&split.train);
    let (valid_raw, y_valid) = part_raw(&split.valid);
    let (test_raw, y_test) = part_raw(&split.test);
    let pipeline = preset.params().fit(train_raw.view())?;
    let features = pipeline
        .output_features()
        .iter()
        .map(|&j| input_features[j].clone())
        .collect();
    Ok(Prepared {
        train: Part {
            x: pipeline.transform(train_raw.view())?,
            y: y_train,
        },
        valid: Part {
            x: pipeline.transform(valid_raw.view())?,
            y: y_valid,
        },
        test: Part {
            x: pipeline.transform(test_raw.view())?,
            y: y_test,
        },
        raw_test: test_raw,
        pipeline,
        classes: targets.classes,
        features,
        input_features,
        level,
    })
}

/// What the MLPs read when the run's preset is `preset`: under the default, `p`'s normal scores
/// followed by the piecewise-linear encoding fitted on `p`'s training rows (the same as fitting
/// [`Preset::PiecewiseLinear`] on the raw rows, without fitting the normal scores twice); under
/// any other preset, `p` itself (the thesis preset stays the thesis' input).
fn mlp_input(p: &Prepared, preset: Preset) -> Result<Prepared> {
    if preset != Preset::Default {
        return Ok(p.clone());
    }
    let encoding = PiecewiseLinearParams::default().fit(p.train.x.view())?;
    let pipeline = p
        .pipeline
        .then(FittedStep::PiecewiseLinear(encoding.clone()))?;
    let part = |q: &Part| -> Result<Part> {
        Ok(Part {
            x: encoding.transform(q.x.view())?,
            y: q.y.clone(),
        })
    };
    Ok(Prepared {
        train: part(&p.train)?,
        valid: part(&p.valid)?,
        test: part(&p.test)?,
        features: pipeline.output_feature_names(&p.input_features)?,
        pipeline,
        ..p.clone()
    })
}

/// The preset named in tables for what `q` holds (an encoded MLP input reads
/// `piecewise-linear`).
fn input_preset(q: &Prepared, run_preset: Preset) -> Preset {
    if q.pipeline.split_piecewise_linear().is_some() {
        Preset::PiecewiseLinear
    } else {
        run_preset
    }
}

/// The thesis' optimized MLP on a prepared split (early stopping on the validation part).
fn fit_optimized(
    backend: &dyn Backend,
    p: &Prepared,
    epochs: usize,
    seed: u64,
) -> Result<FittedMlp> {
    let y_train = Array1::from(p.train.y.clone());
    let y_valid = Array1::from(p.valid.y.clone());
    Ok(MlpParams::optimized()
        .max_epochs(epochs)
        .seed(seed)
        .check()?
        .fit_on(
            backend,
            p.train.x.view(),
            y_train.view(),
            Some((p.valid.x.view(), y_valid.view())),
            Some(p.classes.len()),
        )?
        .with_classes(p.classes.clone())?
        .with_feature_names(p.features.clone())?)
}

/// The Random Forest (scikit-learn defaults) on a prepared split.
fn fit_forest(p: &Prepared, trees: usize, seed: u64) -> Result<RandomForest> {
    let ds = rf_baseline::linfa::Dataset::new(p.train.x.clone(), Array1::from(p.train.y.clone()));
    Ok(RandomForest::params()
        .n_trees(trees)
        .seed(seed)
        .fit(&ds)?
        .with_class_names(p.classes.clone())?
        .with_feature_names(p.features.clone())?)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

impl Run {
    fn step(&mut self, line: String) {
        self.progress.inc(1);
        self.say(line);
    }

    /// A line above the progress bar, or on stdout when the bar is hidden (not a terminal).
    fn say(&self, line: String) {
        if self.progress.is_hidden() {
            println!("{line}");
        } else {
            self.progress.println(line);
        }
    }

    fn convert_all(&mut self) -> Result<(Value, Table, BTreeMap<String, FlowFrame>)> {
        let dir = self.args.out.join("parquet");
        std::fs::create_dir_all(&dir)?;
        let mut json_rows = Vec::new();
        let mut table = Table::new(
            "CSV → Parquet conversion of the real samples (rows read = kept + rejected)",
            &[
                "source",
                "dialect",
                "rows read",
                "kept",
                "rejected (by reason)",
                "features",
            ],
        );
        let mut frames = BTreeMap::new();
        for src in SOURCES {
            let inputs: Vec<PathBuf> = src
                .paths
                .iter()
                .map(|p| self.args.data_dir.join(p))
                .collect();
            if let Some(missing) = inputs.iter().find(|p| !p.exists()) {
                bail!(
                    "{} not found: the data directory {} lacks the {} sample (see ../shared/datasets/README.md)",
                    missing.display(),
                    self.args.data_dir.display(),
                    src.name
                );
            }
            let out = dir.join(format!("{}.parquet", src.name));
            let report = flowdata::convert_csv_to_parquet(&inputs, &out, &ReadOptions::default())
                .with_context(|| format!("converting {}", src.name))?;
            report.write_json(&dir.join(format!("{}.parquet.report.json", src.name)))?;
            let (frame, _) = flowdata::read_parquet(&out)?;
            if frame.n_rows() as u64 != report.rows_kept {
                bail!(
                    "{}: Parquet holds {} rows but the conversion kept {}",
                    out.display(),
                    frame.n_rows(),
                    report.rows_kept
                );
            }
            let rejected = report
                .rejected
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            table.push_row(vec![
                src.name.to_string(),
                report.dialect.clone(),
                report.rows_read.to_string(),
                report.rows_kept.to_string(),
                if rejected.is_empty() {
                    "0".into()
                } else {
                    rejected
                },
                frame.n_features().to_string(),
            ]);
            json_rows.push(json!({
                "source": src.name,
                "rows_read": report.rows_read,
                "rows_kept": report.rows_kept,
                "rows_rejected": report.rows_rejected(),
                "rejected": report.rejected,
                "labels": report.labels,
                "features": frame.n_features(),
            }));
            frames.insert(src.name.to_string(), frame);
        }
        Ok((Value::Array(json_rows), table, frames))
    }

    /// All real CIC-DDoS2019 rows (balanced sample ∪ raw heads), WebDDoS excluded, each class
    /// capped at `rows_per_class` (the thesis capped every class at 113,828 rows).
    fn cic_frame(&self, frames: &BTreeMap<String, FlowFrame>) -> Result<FlowFrame> {
        let all = FlowFrame::concat(&[
            frames["cic-ddos2019-balanced-sample"].clone(),
            frames["cic-ddos2019-raw-heads"].clone(),
        ])?
        .task_rows();
        let y = all.targets(LabelLevel::Fine).y;
        let rows = flowdata::cap_per_class(&y, self.scale.rows_per_class, &[], self.args.seed);
        Ok(all.select(&rows))
    }

    fn models_dir(&self, experiment: &str, preset: Preset, model: &str) -> PathBuf {
        self.args
            .out
            .join("models")
            .join(experiment)
            .join(preset_name(preset))
            .join(model)
    }

    /// Train and evaluate every model of one experiment. `full` adds the small MLP and int8.
    fn train_all(&mut self, p: &Prepared, preset: Preset, full: bool) -> Result<Trained> {
        let seed = self.args.seed;
        let experiment = level_name(p.level);
        let pm = mlp_input(p, preset)?;
        let timing = measure::tiled_batch(p.test.x.view(), self.scale.timing_rows);
        let timing_mlp = measure::tiled_batch(pm.test.x.view(), self.scale.timing_rows);
        let mut evaluated = Vec::new();
        // Save the bundle (its model file's size is the size column), then evaluate. MLPs read
        // `pm`, the forest `p`.
        let mut record =
            |name: &str, slug: &str, train_s: Option<f64>, model: BundleModel| -> Result<()> {
                let (q, timing) = match model {
                    BundleModel::Forest(_) => (p, &timing),
                    _ => (&pm, &timing_mlp),
                };
                let dir = self.save_bundle(q, experiment, preset, slug, model.clone())?;
                let file = match &model {
                    BundleModel::Mlp(_) => "model.safetensors",
                    BundleModel::Int8(_) => "model.int8",
                    BundleModel::Forest(_) => "forest.json",
                };
                let mut e = self.evaluate(
                    name,
                    input_preset(q, preset),
                    q,
                    train_s,
                    file_size(&dir.join(file)),
                    timing,
                    &model,
                )?;
                // Serving memory: peak RSS of a fresh process that loads the bundle and scores
                // one timing batch (measured in a child, so this run's heap does not hide it).
                e.memory_bytes = measure::serving_peak_rss(&dir, timing.nrows());
                evaluated.push(e);
                Ok(())
            };

        let t = Instant::now();
        let optimized = fit_optimized(self.backend.as_ref(), &pm, self.scale.mlp_epochs, seed)?
            .with_preprocessing(Some(serde_json::from_str(&pm.pipeline.to_json()?)?));
        record(
            "optimized MLP",
            "optimized-mlp",
            Some(t.elapsed().as_secs_f64()),
            BundleModel::Mlp(optimized.clone()),
        )?;

        let t = Instant::now();
        let forest = fit_forest(p, self.scale.trees, seed)?;
        record(
            "Random Forest",
            "random-forest",
            Some(t.elapsed().as_secs_f64()),
            BundleModel::Forest(forest.clone()),
        )?;

        if full {
            // int8 dynamic: per-channel weight scales, one input range per flow (PyTorch
            // quantize_dynamic's numbers for each flow alone; a batch-wide range let heavy-tailed
            // flows coarsen all others: 85.7 % → 99.2 % agreement with fp32); static (calibrated
            // on at most 2,048 training rows): first-layer input calibrated per feature.
            let dynamic = DynamicQuantParams::new()
                .weight_granularity(WeightGranularity::PerChannel)
                .activation_range(ActivationRange::PerRow)
                .check()?
                .quantize(optimized.layers())?;
            record(
                "int8 dynamic MLP",
                "int8-dynamic",
                None,
                BundleModel::Int8(dynamic),
            )?;
            let calib_rows: Vec<usize> = (0..pm.train.x.nrows().min(2048)).collect();
            let calib = pm.train.x.select(Axis(0), &calib_rows);
            let stat = StaticQuantParams::new()
                .check()?
                .calibrate(optimized.layers(), calib.view())?;
            record(
                "int8 static MLP",
                "int8-static",
                None,
                BundleModel::Int8(stat),
            )?;

            // scikit-learn-style MLP: the thesis' MLPClassifier((16, 12)) with sklearn's Adam
            let t = Instant::now();
            let y_train = Array1::from(pm.train.y.clone());
            let small = MlpParams::sklearn_baseline()
                .hidden(vec![
                    HiddenSpec::new(16, false, Activation::Relu, 0.0),
                    HiddenSpec::new(12, false, Activation::Relu, 0.0),
                ])
                .max_epochs(self.scale.sklearn_epochs)
                .seed(seed)
                .check()?
                .fit(
                    pm.train.x.view(),
                    y_train.view(),
                    None,
                    Some(pm.classes.len()),
                )?
                .with_classes(pm.classes.clone())?
                .with_feature_names(pm.features.clone())?;
            record(
                "sklearn-style MLP (16,12)",
                "sklearn-mlp",
                Some(t.elapsed().as_secs_f64()),
                BundleModel::Mlp(small),
            )?;
        }
        Ok(Trained {
            optimized,
            mlp_input: pm,
            forest,
            evaluated,
        })
    }

    fn save_bundle(
        &self,
        p: &Prepared,
        experiment: &str,
        preset: Preset,
        model: &str,
        bundle_model: BundleModel,
    ) -> Result<PathBuf> {
        let dir = self.models_dir(experiment, preset, model);
        ModelBundle {
            preprocessing: p.pipeline.clone(),
            model: bundle_model,
            feature_names: p.input_features.clone(),
            classes: p.classes.clone(),
            label_level: level_name(p.level).into(),
        }
        .save(&dir)?;
        Ok(dir)
    }

    #[allow(clippy::too_many_arguments)]
    fn evaluate(
        &self,
        name: &str,
        preset: Preset,
        p: &Prepared,
        train_seconds: Option<f64>,
        size_bytes: u64,
        timing: &Array2<f32>,
        model: &BundleModel,
    ) -> Result<Evaluated> {
        let predict = |x: ArrayView2<'_, f32>| model.predict_proba(x);
        let proba = predict(p.test.x.view())?;
        let pred = argmax_rows(proba.view());
        let report = ConfusionMatrix::from_indices(&p.test.y, &pred, &p.classes)?.report();
        let flows_per_s = measure::flows_per_second(timing.view(), 20, |x| {
            let _ = std::hint::black_box(predict(x));
        });
        let latency_ms = measure::single_flow_latency_ms(p.test.x.view(), 200, |x| {
            let _ = std::hint::black_box(predict(x));
        });
        Ok(Evaluated {
            name: name.into(),
            preset,
            report,
            train_seconds,
            size_bytes,
            flows_per_s,
            latency_ms,
            memory_bytes: None,
            proba,
        })
    }

    fn add_figure(&mut self, fig: Figure) {
        let name = fig.name.clone();
        self.figures.push((name, fig));
    }

    fn multiclass_figures(&mut self, p: &Prepared, t: &Trained) -> Result<()> {
        for e in &t.evaluated {
            if e.name != "optimized MLP" && e.name != "Random Forest" {
                continue;
            }
            let counts = Array2::from_shape_fn((p.classes.len(), p.classes.len()), |(i, j)| {
                e.report.confusion.counts[i][j]
            });
            let slug = if e.name == "Random Forest" {
                "rf"
            } else {
                "mlp"
            };
            for normalize in [false, true] {
                let fig = figures::confusion_matrix(
                    counts.view(),
                    &p.classes,
                    normalize,
                    &format!(
                        "{} — CIC-DDoS2019 test flows ({})",
                        e.name,
                        if normalize {
                            "row-normalised"
                        } else {
                            "counts"
                        }
                    ),
                )?
                .with_name(&format!(
                    "confusion_{slug}_{}",
                    if normalize { "normalised" } else { "counts" }
                ));
                self.add_figure(fig);
            }
        }
        let h = t.optimized.history();
        let col = |f: &dyn Fn(&flowxai::mlp_core::EpochRecord) -> Option<f64>| -> Vec<f64> {
            h.iter().filter_map(f).collect()
        };
        let (tl, vl, ta, va, lr) = (
            col(&|r| Some(r.train_loss)),
            col(&|r| r.val_loss),
            col(&|r| Some(r.train_accuracy)),
            col(&|r| r.val_accuracy),
            col(&|r| Some(r.learning_rate)),
        );
        let fig = figures::training_curves(
            &TrainingHistory {
                train_loss: &tl,
                val_loss: &vl,
                train_accuracy: &ta,
                val_accuracy: &va,
                learning_rate: &lr,
            },
            "optimized MLP training (CIC-DDoS2019, default preprocessing)",
        )?
        .with_name("training_curves_mlp");
        self.add_figure(fig);

        let bars: Vec<ThroughputBar> = t
            .evaluated
            .iter()
            .map(|e| ThroughputBar {
                label: e.name.clone(),
                flows_per_s: e.flows_per_s,
            })
            .collect();
        let fig = figures::throughput_bars(
            &bars,
            "Inference throughput on this machine (tiled real test rows, batches of 8,192, best of 20)",
        )?
        .with_name("throughput");
        self.add_figure(fig);

        // The interpretable tree the thesis draws (depth 4 here; THESIS.md: 6 for multi-class).
        let (_, tree) =
            rf_baseline::fit_tree_figure(p.train.x.view(), &p.train.y, &p.features, &p.classes, 4)?;
        let nodes: Vec<figures::TreeNode> = tree
            .nodes
            .iter()
            .map(|n| figures::TreeNode {
                id: n.id,
                feature: n.feature.clone(),
                threshold: n.threshold.map(f64::from),
                samples: n.samples as u64,
                class_counts: n.class_counts.iter().map(|&c| c as u64).collect(),
                children: n.left.zip(n.right),
            })
            .collect();
        let fig = figures::decision_tree(
            &nodes,
            &p.classes,
            figures::SplitRule::Less,
            Some(4),
            "Decision tree of depth 4 (linfa-trees, gini) on the preprocessed training flows",
        )?
        .with_name("decision_tree");
        self.add_figure(fig);
        let dot_path = self.args.out.join("decision_tree.dot");
        std::fs::write(&dot_path, tree.to_dot())
            .with_context(|| format!("cannot write {}", dot_path.display()))?;
        Ok(())
    }

    /// KernelSHAP of the optimized MLP per feature of `p`: when the MLP reads a piecewise-linear
    /// encoding, the encoding runs inside the explained model, so each feature's bins share
    /// one attribution.
    fn kernel_shap(&self, p: &Prepared, t: &Trained) -> Result<(Explanation, Value)> {
        let mlp = &t.optimized;
        let seed = self.args.seed;
        let background = Background::sample(p.train.x.view(), self.scale.kernel_background, seed)?;
        // shap's defaults: nsamples auto, l1_reg num_features(10), identity link.
        let params = KernelParams::new()
            .seed(seed)
            .feature_names(p.features.clone())
            .class_names(p.classes.clone())
            .check()?;
        let encoding = t
            .mlp_input
            .pipeline
            .split_piecewise_linear()
            .map(|(_, e)| e);
        // A failing encoding stops the run with its error (never NaN in the explanation).
        let model = |x: ArrayView2<'_, f32>| -> Result<Array2<f32>, PreprocessError> {
            Ok(match encoding {
                Some(e) => mlp.predict_proba(e.transform(x)?.view()),
                None => mlp.predict_proba(x),
            })
        };
        let explainer = KernelExplainer::new(&model, background, params)?;
        let rows = spread_rows(&p.test.y, self.scale.kernel_flows);
        let x = p.test.x.select(Axis(0), &rows);
        let t = Instant::now();
        let expl = explainer.explain(x.view())?;
        let secs = t.elapsed().as_secs_f64();
        let json = shap_json(
            &expl,
            "KernelSHAP on the optimized MLP",
            secs,
            json!({
                "background_rows": self.scale.kernel_background,
                "nsamples": "auto (2M + 2048)",
                "l1_reg": "num_features(10)",
                "link": "identity",
            }),
        );
        Ok((expl, json))
    }

    fn tree_shap(&self, p: &Prepared, forest: &RandomForest) -> Result<(Explanation, Value)> {
        let ensemble = flowxai::adapters::forest_to_tree_ensemble(forest);
        let explainer =
            TreeExplainer::new(&ensemble)?.with_names(p.features.clone(), p.classes.clone())?;
        let rows = spread_rows(&p.test.y, self.scale.tree_flows);
        let x = p.test.x.select(Axis(0), &rows);
        let t = Instant::now();
        let expl = explainer.explain(x.view())?;
        let secs = t.elapsed().as_secs_f64();
        let json = shap_json(
            &expl,
            "exact path-dependent TreeSHAP on the Random Forest",
            secs,
            json!({
                "trees": forest.trees().len(),
            }),
        );
        Ok((expl, json))
    }

    fn shap_figures(
        &mut self,
        p: &Prepared,
        kernel: &Explanation,
        tree: &Explanation,
    ) -> Result<()> {
        for (slug, who, e) in [
            ("mlp", "optimized MLP, KernelSHAP", kernel),
            ("rf", "Random Forest, TreeSHAP", tree),
        ] {
            let fig = figures::shap_beeswarm(
                e,
                ClassChoice::Predicted,
                15,
                &format!("SHAP summary — {who} (predicted class per flow)"),
            )?
            .with_name(&format!("shap_beeswarm_{slug}"));
            self.add_figure(fig);
            let fig = figures::shap_bar(e, None, 15, &format!("Mean |SHAP| over classes — {who}"))?
                .with_name(&format!("shap_bar_{slug}"));
            self.add_figure(fig);
        }
        let e = kernel;
        let fig = figures::shap_waterfall(
            e,
            0,
            None,
            12,
            "Waterfall for one test flow (optimized MLP, predicted class)",
        )?
        .with_name("shap_waterfall_mlp");
        self.add_figure(fig);
        let fig = figures::shap_force(
            e,
            0,
            None,
            "Force plot for one test flow (optimized MLP, predicted class)",
        )?
        .with_name("shap_force_mlp");
        self.add_figure(fig);
        let fig = figures::shap_heatmap(
            e,
            ClassChoice::Predicted,
            20,
            "SHAP heatmap: explained flows × features (optimized MLP)",
        )?
        .with_name("shap_heatmap_mlp");
        self.add_figure(fig);

        // Per-class histograms of the three most important raw features.
        let imp = figures::mean_abs_shap(tree, None)?;
        let mut order: Vec<usize> = (0..imp.len()).collect();
        order.sort_by(|&a, &b| imp[b].total_cmp(&imp[a]).then(a.cmp(&b)));
        for &j in order.iter().take(3) {
            let name = &p.features[j];
            let Some(raw_j) = p.input_features.iter().position(|f| f == name) else {
                continue;
            };
            let values: Vec<f32> = p.raw_test.column(raw_j).to_vec();
            let fig = figures::class_feature_histograms(
                name,
                &values,
                &p.test.y,
                &p.classes,
                30,
                true,
                &format!("{name} per class (raw values, test flows)"),
            )?
            .with_name(&format!("histogram_{name}"));
            self.add_figure(fig);
        }
        Ok(())
    }
}

/// Up to `n` row indices spread over the classes (round-robin over classes, in row order), so
/// every class is explained.
fn spread_rows(y: &[usize], n: usize) -> Vec<usize> {
    let k = y.iter().copied().max().map_or(0, |m| m + 1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &c) in y.iter().enumerate() {
        by_class[c].push(i);
    }
    let mut rows = Vec::with_capacity(n);
    let mut depth = 0;
    while rows.len() < n.min(y.len()) {
        for class_rows in &by_class {
            if let Some(&r) = class_rows.get(depth) {
                if rows.len() < n {
                    rows.push(r);
                }
            }
        }
        depth += 1;
    }
    rows
}

fn shap_json(expl: &Explanation, method: &str, secs: f64, extra: Value) -> Value {
    let n = expl.values.dim().0.max(1);
    let errors = expl.additivity_error();
    let ranking = shap::GlobalImportance::from_explanation(expl).ranking();
    json!({
        "method": method,
        "flows": expl.values.dim().0,
        "features": expl.values.dim().1,
        "seconds": secs,
        "seconds_per_flow": secs / n as f64,
        "max_additivity_error": errors.iter().copied().fold(0.0, f64::max),
        "base_values": expl.base_values,
        "top_features": ranking.iter().take(20).map(|r| json!({"rank": r.rank, "feature": r.feature, "mean_abs_shap": r.importance})).collect::<Vec<_>>(),
        "settings": extra,
    })
}

/// A cross-dataset result.
struct CrossResult {
    row: tables::CrossDatasetRow,
    json: Value,
}

impl Run {
    fn cross_dataset(
        &mut self,
        cic: &FlowFrame,
        split: &flowdata::Split,
        frames: &BTreeMap<String, FlowFrame>,
    ) -> Result<Vec<CrossResult>> {
        let mut out = Vec::new();
        let targets: [(&str, &str, Option<f64>); 2] = [
            ("cse-cic-ids2018-sample", "CSE-CIC-IDS2018", Some(0.387)),
            ("tii-ssrc-23-clustered", "TII-SSRC-23", Some(0.421)),
        ];
        for (source, label, thesis_acc) in targets {
            let test = &frames[source];
            let shared: Vec<String> = cic
                .feature_names
                .iter()
                .filter(|f| test.feature_names.contains(f))
                .cloned()
                .collect();
            if shared.is_empty() {
                bail!("{source}: no canonical feature shared with CIC-DDoS2019");
            }
            let x_test_raw = test.feature_columns(&shared)?;
            for level in [LabelLevel::Binary, LabelLevel::Family] {
                let p = prepare(cic, split, level, Preset::Default, Some(&shared))?;
                let pm = mlp_input(&p, Preset::Default)?;
                let mlp = fit_optimized(
                    self.backend.as_ref(),
                    &pm,
                    self.scale.mlp_epochs,
                    self.args.seed,
                )?;
                let forest = fit_forest(&p, self.scale.trees, self.args.seed)?;
                let x_test = p.pipeline.transform(x_test_raw.view())?;
                let x_test_mlp = pm.pipeline.transform(x_test_raw.view())?;
                let test_targets = test.targets(level);
                let y_true: Vec<usize> = test_targets.y.iter().map(|&v| v as usize).collect();
                let label_space = match level {
                    LabelLevel::Binary => "benign / attack",
                    _ => "attack families",
                };
                for (model, proba) in [
                    ("optimized MLP", mlp.predict_proba(x_test_mlp.view())),
                    ("Random Forest", forest.predict_proba(x_test.view())),
                ] {
                    let pred = argmax_rows(proba.view());
                    let cm = ConfusionMatrix::cross_dataset(
                        &y_true,
                        &test_targets.classes,
                        &pred,
                        &p.classes,
                    )?;
                    let rep = cm.report();
                    let features_note = if shared.len() < cic.n_features() {
                        format!(
                            "{} shared features (model restricted to them)",
                            shared.len()
                        )
                    } else {
                        format!("all {} features", shared.len())
                    };
                    out.push(CrossResult {
                        row: tables::CrossDatasetRow {
                            train_dataset: format!("CIC-DDoS2019 ({model})"),
                            test_dataset: format!("{label} sample, {features_note}"),
                            label_space: label_space.into(),
                            flows: rep.n_samples,
                            accuracy: rep.accuracy,
                            macro_f1: rep.macro_avg.f1,
                            thesis_accuracy: if level == LabelLevel::Binary
                                && model == "optimized MLP"
                            {
                                thesis_acc
                            } else {
                                None
                            },
                        },
                        json: json!({
                            "train": "cic-ddos2019",
                            "test": source,
                            "model": model,
                            "label_space": level_name(level),
                            "features": shared,
                            "flows": rep.n_samples,
                            "accuracy": rep.accuracy,
                            "balanced_accuracy": rep.balanced_accuracy,
                            "macro_f1": rep.macro_avg.f1,
                            "classes": cm.classes,
                            "confusion_matrix": cm.counts,
                        }),
                    });
                }
            }
        }
        Ok(out)
    }
}

struct ReportInputs<'a> {
    conversion_table: Table,
    multiclass: &'a BTreeMap<&'static str, Trained>,
    default_prepared: &'a Prepared,
    binary: &'a Trained,
    cross: &'a [CrossResult],
    kernel: &'a Explanation,
    tree: &'a Explanation,
    kernel_json: &'a Value,
    tree_json: &'a Value,
    device: &'a str,
}

fn comparison_rows(evaluated: &[Evaluated]) -> Vec<tables::ModelComparisonRow> {
    evaluated
        .iter()
        .map(|e| tables::ModelComparisonRow {
            model: format!("{} [{} preprocessing]", e.name, preset_name(e.preset)),
            accuracy: e.report.accuracy,
            macro_precision: e.report.macro_avg.precision,
            macro_recall: e.report.macro_avg.recall,
            macro_f1: e.report.macro_avg.f1,
            training_time_s: e.train_seconds,
            size_bytes: Some(e.size_bytes),
            throughput_flows_s: Some(e.flows_per_s),
            latency_ms: Some(e.latency_ms),
            memory_bytes: e.memory_bytes,
        })
        .collect()
}

impl Run {
    fn build_report(&mut self, r: ReportInputs<'_>) -> Result<ReportBuilder> {
        let args = &self.args;
        let quick_note = if args.quick {
            " This is a `--quick` run (fewer rows, epochs, trees and explained flows): its numbers are real but noisier than the full run's."
        } else {
            ""
        };
        let mut b = ReportBuilder::new("flowxai results").intro(&format!(
            "Regenerated by `cargo xtask reproduce{}` (seed {}, device {}, {}).{quick_note} \
             Accuracy is measured on real CICFlowMeter flows from `{}` only. Throughput and latency \
             are timed on tiled (repeated) real test rows on this machine. The thesis' own \
             published numbers appear in separate columns labelled *thesis (claimed)*: no public \
             notebook backs them.",
            if args.quick { " --quick" } else { "" },
            args.seed,
            r.device,
            crate::machine(),
            args.data_dir.display()
        ));
        b = b.section(
            Section::new("Data")
                .text("Every sample is converted to Parquet with full row accounting. The multi-class task uses all real CIC-DDoS2019 rows available here (the balanced sample ∪ the raw file heads), WebDDoS excluded, each class capped at the same number of rows (the thesis capped every class at 113,828 rows), split 70/15/15 stratified with the seed (the thesis split 70/15/15 at random; stratification keeps every class in every part of a small sample).")
                .table(r.conversion_table),
        );

        // Multi-class comparison.
        let mut rows = Vec::new();
        for t in r.multiclass.values() {
            rows.extend(comparison_rows(&t.evaluated));
        }
        let mut side = Table::new(
            "flowxai (measured, default preprocessing) beside the thesis (claimed)",
            &[
                "model",
                "accuracy: thesis (claimed)",
                "accuracy: flowxai",
                "macro-F1: thesis (claimed)",
                "macro-F1: flowxai",
                "throughput: thesis (claimed)",
                "throughput: flowxai",
            ],
        );
        let ours = &r.multiclass["default"].evaluated;
        for (thesis, ours_name) in THESIS_TABLE.iter().zip([
            "optimized MLP",
            "sklearn-style MLP (16,12)",
            "int8 dynamic MLP",
            "Random Forest",
        ]) {
            if let Some(e) = ours.iter().find(|e| e.name == ours_name) {
                side.push_row(vec![
                    format!("{} / {}", thesis.model, e.name),
                    format!("{:.1}%", thesis.accuracy * 100.0),
                    format!("{:.1}%", e.report.accuracy * 100.0),
                    format!("{:.2}", thesis.f1),
                    format!("{:.3}", e.report.macro_avg.f1),
                    format!("{} flows/s", figures::fmt_si(thesis.flows_s)),
                    format!("{} flows/s", figures::fmt_si(e.flows_per_s)),
                ]);
            }
        }
        let mut thesis_table = Table::new(
            "The thesis' published table (claimed; THESIS.md)",
            &[
                "model",
                "accuracy",
                "precision",
                "recall",
                "F1",
                "time (s)",
                "size (MB)",
                "throughput",
            ],
        );
        for t in THESIS_TABLE {
            thesis_table.push_row(vec![
                t.model.into(),
                format!("{:.1}%", t.accuracy * 100.0),
                format!("{:.2}", t.precision),
                format!("{:.2}", t.recall),
                format!("{:.2}", t.f1),
                format!("{:.0}", t.train_s),
                format!("{:.1}", t.size_mb),
                format!("{} flows/s", figures::fmt_si(t.flows_s)),
            ]);
        }
        let mut sec = Section::new("CIC-DDoS2019, 17 classes")
            .text(&format!(
                "{} training, {} validation and {} test flows; classes: {}. Both preprocessing presets: `thesis` (clip 1st/99th percentile → RobustScaler, as the thesis, for every model) and flowxai's `default` (rank-based normal scores: every feature becomes Φ⁻¹((midrank − ½) / n) of its training column). Under the default the MLPs read those scores through a piecewise-linear encoding with 16 quantile bins per feature (rows marked `piecewise-linear`; 76 features become about 300 inputs; what it does over several seeds is measured by `cargo run --release -p xtask --example preset_sweep -- default piecewise-linear default:forest`, not by this run); the forest reads the scores themselves. SHAP values of the MLP are per feature: the encoding runs inside the explained model.",
                r.default_prepared.train.y.len(),
                r.default_prepared.valid.y.len(),
                r.default_prepared.test.y.len(),
                r.default_prepared.classes.join(", ")
            ))
            .table(tables::model_comparison_table(&rows))
            .table(side)
            .table(thesis_table);
        for name in [
            "confusion_mlp_counts",
            "confusion_mlp_normalised",
            "confusion_rf_normalised",
            "training_curves_mlp",
            "throughput",
            "decision_tree",
        ] {
            if let Some(f) = self.take_figure(name) {
                sec = sec.figure(f);
            }
        }
        b = b.section(sec);

        // Per-class report of the optimized MLP.
        if let Some(e) = ours.iter().find(|e| e.name == "optimized MLP") {
            let mut pc: Vec<tables::PerClassRow> = e
                .report
                .per_class
                .iter()
                .map(|c| tables::PerClassRow {
                    class: c.class.clone(),
                    precision: c.precision,
                    recall: c.recall,
                    f1: c.f1,
                    support: c.support,
                })
                .collect();
            for (name, a) in [
                ("macro avg", &e.report.macro_avg),
                ("weighted avg", &e.report.weighted_avg),
            ] {
                pc.push(tables::PerClassRow {
                    class: name.into(),
                    precision: a.precision,
                    recall: a.recall,
                    f1: a.f1,
                    support: a.support,
                });
            }
            b = b.section(
                Section::new("Per-class report: optimized MLP, default preprocessing")
                    .table(tables::per_class_table(&pc)),
            );
        }

        // Quantization.
        let fp32 = ours.iter().find(|e| e.name == "optimized MLP");
        let mut q = Vec::new();
        for e in ours
            .iter()
            .filter(|e| e.name.contains("MLP") && !e.name.contains("sklearn"))
        {
            let (agree, max_diff) = match fp32 {
                Some(f) => {
                    let a = argmax_rows(f.proba.view());
                    let b2 = argmax_rows(e.proba.view());
                    let agree = a.iter().zip(&b2).filter(|(x, y)| x == y).count() as f64
                        / a.len().max(1) as f64;
                    let diff = f
                        .proba
                        .iter()
                        .zip(e.proba.iter())
                        .map(|(x, y)| f64::from((x - y).abs()))
                        .fold(0.0, f64::max);
                    (Some(agree), Some(diff))
                }
                None => (None, None),
            };
            q.push(tables::QuantizationRow {
                model: "optimized MLP".into(),
                precision: match e.name.as_str() {
                    "int8 dynamic MLP" => "int8 dynamic".into(),
                    "int8 static MLP" => "int8 static".into(),
                    _ => "fp32".into(),
                },
                accuracy: e.report.accuracy,
                macro_f1: e.report.macro_avg.f1,
                size_bytes: e.size_bytes,
                throughput_flows_s: Some(e.flows_per_s),
                agreement_with_fp32: agree,
                max_abs_prob_diff: max_diff,
            });
        }
        b = b.section(
            Section::new("int8 quantization (default preprocessing)")
                .text("Sizes are the saved files (fp32: safetensors; int8: int8 weights + scales). Dynamic int8 uses PyTorch `quantize_dynamic` arithmetic (7-bit activations) with per-channel weight scales and one input range per flow (a flow's prediction does not depend on its batch); static int8 calibrates the first layer's input per feature; PyTorch's per-tensor default is available in `quant` (`WeightGranularity::PerTensor`) and not measured by this run. The thesis claimed 3.8 MB → 1.2 MB for a network of ≈ 86k parameters, which is 0.34 MB in fp32.")
                .table(tables::quantization_table(&q)),
        );

        // Binary.
        b = b.section(Section::new("CIC-DDoS2019, benign vs attack").table(
            tables::model_comparison_table(&comparison_rows(&r.binary.evaluated)),
        ));

        // Cross-dataset.
        let cross_rows: Vec<tables::CrossDatasetRow> =
            r.cross.iter().map(|c| c.row.clone()).collect();
        b = b.section(
            Section::new("Cross-dataset: trained on CIC-DDoS2019, tested elsewhere")
                .text("Label spaces differ between datasets, so labels are mapped to shared attack families and to benign/attack (the manifests in `datasets/` state each mapping). The TII-SSRC-23 sample carries only 8 features, so those models are trained on CIC-DDoS2019 restricted to the same 8 features. The thesis' claims (accuracy 42.1% on TII-SSRC-23, 38.7% on CIC-IDS2018) do not state their label mapping.")
                .table(tables::cross_dataset_table(&cross_rows)),
        );

        // SHAP.
        let top = |e: &Explanation| -> Result<Table> {
            let mut rows = tables::shap_top_features(e, None, 15)?;
            for row in &mut rows {
                row.thesis_rank = thesis_rank(&row.feature);
            }
            Ok(tables::shap_top_features_table(&rows))
        };
        let mut sec = Section::new("SHAP explanations")
            .text(&format!(
                "KernelSHAP on the optimized MLP: {} test flows spread over the classes, {} background rows, nsamples auto, {:.3} s per flow, largest additivity error {:.1e}. Exact TreeSHAP on the Random Forest: {} flows, {:.4} s per flow, largest additivity error {:.1e}. Values explain class probabilities.",
                r.kernel.values.dim().0,
                self.scale.kernel_background,
                r.kernel_json["seconds_per_flow"].as_f64().unwrap_or(f64::NAN),
                r.kernel_json["max_additivity_error"].as_f64().unwrap_or(f64::NAN),
                r.tree.values.dim().0,
                r.tree_json["seconds_per_flow"].as_f64().unwrap_or(f64::NAN),
                r.tree_json["max_additivity_error"].as_f64().unwrap_or(f64::NAN),
            ))
            .table(top(r.kernel)?)
            .table(top(r.tree)?);
        let names: Vec<String> = self.figures.iter().map(|(n, _)| n.clone()).collect();
        for name in names {
            if let Some(f) = self.take_figure(&name) {
                sec = sec.figure(f);
            }
        }
        b = b.section(sec);
        Ok(b.figure_formats(&[Format::Svg, Format::Png, Format::Pdf]))
    }

    /// Remove a figure from the pending list (each figure appears in one section).
    fn take_figure(&mut self, name: &str) -> Option<Figure> {
        let i = self.figures.iter().position(|(n, _)| n == name)?;
        Some(self.figures.remove(i).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thesis_top_feature_is_a_canonical_feature() {
        for (i, name) in THESIS_TOP_FEATURES.iter().enumerate() {
            let spec = flowdata::FEATURES
                .iter()
                .find(|f| f.cic_long == *name)
                .unwrap_or_else(|| panic!("{name} is not a CIC-DDoS2019 feature"));
            assert_eq!(thesis_rank(spec.canonical), Some(i + 1));
        }
        assert_eq!(thesis_rank("protocol"), None);
    }

    #[test]
    fn spread_rows_covers_every_class_first() {
        let y = [0, 0, 0, 1, 1, 2];
        assert_eq!(spread_rows(&y, 3), vec![0, 3, 5]);
        assert_eq!(spread_rows(&y, 5), vec![0, 3, 5, 1, 4]);
        assert_eq!(spread_rows(&y, 10).len(), 6);
    }
}
