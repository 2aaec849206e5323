//! `cargo xtask train | evaluate | explain | synth` on users' own files.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use ndarray::{Array1, ArrayView2, Axis};
use serde_json::json;

use flowxai::bundle::{argmax_rows, BundleModel, ModelBundle};
use flowxai::flowdata::{self, FlowFrame, LabelLevel, ReadOptions};
use flowxai::mlp_core::MlpParams;
use flowxai::preprocess::Preset;
use flowxai::quant::{ActivationRange, DynamicQuantParams, StaticQuantParams, WeightGranularity};
use flowxai::report::figures::{self, ClassChoice, Format};
use flowxai::report::metrics::ConfusionMatrix;
use flowxai::rf_baseline::linfa::traits::Fit;
use flowxai::rf_baseline::RandomForest;
use flowxai::shap::{self, Background, KernelExplainer, KernelParams, TreeExplainer};

/// Flows from Parquet files (written by `convert`) or CICFlowMeter CSVs (any dialect).
pub fn load_frame(inputs: &[PathBuf]) -> Result<FlowFrame> {
    if inputs.is_empty() {
        bail!("no --input given");
    }
    let parquet = inputs
        .iter()
        .all(|p| p.extension().is_some_and(|e| e == "parquet"));
    if parquet {
        let mut frames = Vec::with_capacity(inputs.len());
        for p in inputs {
            let (frame, report) = flowdata::read_parquet(p)?;
            eprintln!("{}: {}", p.display(), report.summary());
            frames.push(frame);
        }
        Ok(FlowFrame::concat(&frames)?)
    } else {
        let (frame, report) = flowdata::read_csv(inputs, &ReadOptions::default())?;
        eprintln!("{}", report.summary());
        Ok(frame)
    }
}

/// [`load_frame`] restricted to the task's classes; the rows of excluded classes (e.g.
/// CIC-DDoS2019's WebDDoS) are counted and printed, never dropped silently.
fn task_frame(inputs: &[PathBuf]) -> Result<(FlowFrame, BTreeMap<String, u64>)> {
    let (frame, excluded) = load_frame(inputs)?.task_rows_counted();
    if !excluded.is_empty() {
        let parts: Vec<String> = excluded.iter().map(|(c, n)| format!("{c} {n}")).collect();
        eprintln!(
            "excluded from the task (the dataset manifest's excluded classes): {} rows ({})",
            excluded.values().sum::<u64>(),
            parts.join(", ")
        );
    }
    Ok((frame, excluded))
}

/// Label granularity on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Level {
    /// The dataset's own classes (CIC-DDoS2019: the thesis' 17).
    Fine,
    /// Attack families shared across datasets.
    Family,
    /// Benign vs attack.
    Binary,
}

impl Level {
    fn label_level(self) -> LabelLevel {
        match self {
            Level::Fine => LabelLevel::Fine,
            Level::Family => LabelLevel::Family,
            Level::Binary => LabelLevel::Binary,
        }
    }
}

/// Which model `train` fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelKind {
    /// The thesis' optimized MLP (76→128→256→128→64→classes).
    Mlp,
    /// scikit-learn MLPClassifier defaults (one hidden layer of 100).
    SklearnMlp,
    /// The optimized MLP, then int8 dynamic quantization (per-channel weight scales).
    Int8Dynamic,
    /// The optimized MLP, then int8 static quantization calibrated on training rows.
    Int8Static,
    /// The histogram Random Forest (scikit-learn defaults).
    Forest,
}

/// Preprocessing preset on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PresetArg {
    /// rank-based normal scores, Φ⁻¹((midrank − ½) / n) per column (flowxai's default for the
    /// forest).
    Default,
    /// normal scores, then a piecewise-linear encoding with 16 quantile bins per column
    /// (flowxai's default for the MLPs).
    PiecewiseLinear,
    /// clip 1/99 → RobustScaler, exactly the thesis.
    Thesis,
    /// signed log1p → clip 0.1/99.9 → robust scaling with a range fallback (the default before
    /// normal scores).
    LogRobust,
}

/// Options of `train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Parquet files from `convert`, or CICFlowMeter CSV files/folders.
    #[arg(long, num_args = 1.., required = true)]
    pub input: Vec<PathBuf>,
    /// Output bundle folder (bundle.json, preprocessing.json, model files, metrics.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Model to fit.
    #[arg(long, value_enum, default_value_t = ModelKind::Mlp)]
    pub model: ModelKind,
    /// Label granularity the model learns.
    #[arg(long, value_enum, default_value_t = Level::Fine)]
    pub level: Level,
    /// Preprocessing preset, fitted on the training rows only [default: piecewise-linear for
    /// the MLPs, default for the forest].
    #[arg(long, value_enum)]
    pub preset: Option<PresetArg>,
    /// Cap every class at this many rows before splitting (the thesis used 113,828).
    #[arg(long)]
    pub cap_per_class: Option<usize>,
    /// Maximum MLP epochs (early stopping may end sooner).
    #[arg(long, default_value_t = 80)]
    pub epochs: usize,
    /// Trees of the forest.
    #[arg(long, default_value_t = 100)]
    pub trees: usize,
    /// Seed of the split, sampling and training.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where MLPs train: `auto` (GPU when a CUDA build finds one, else CPU), `cpu` or `cuda`.
    #[arg(long, value_enum, default_value_t = crate::Device::Auto)]
    pub device: crate::Device,
}

/// Fit a bundle on a stratified 70/15/15 split and report its test metrics.
pub fn train(args: &TrainArgs) -> Result<()> {
    let (backend, _) = crate::resolve_device(args.device)?;
    let (mut frame, excluded) = task_frame(&args.input)?;
    let level = args.level.label_level();
    if let Some(cap) = args.cap_per_class {
        let y = frame.targets(level).y;
        frame = frame.select(&flowdata::cap_per_class(&y, cap, &[], args.seed));
    }
    if frame.synthetic {
        eprintln!("note: the input is synthetic (resampled): do not quote its accuracy");
    }
    let targets = frame.targets(level);
    let split = flowdata::stratified_split(&targets.y, crate::THESIS_SPLIT, args.seed)?;
    let preset_arg = args.preset.unwrap_or(match args.model {
        ModelKind::Forest => PresetArg::Default,
        _ => PresetArg::PiecewiseLinear,
    });
    let preset = match preset_arg {
        PresetArg::Default => Preset::Default,
        PresetArg::PiecewiseLinear => Preset::PiecewiseLinear,
        PresetArg::Thesis => Preset::Thesis,
        PresetArg::LogRobust => Preset::LogRobust,
    };
    let part = |rows: &[usize]| {
        (
            frame.x.select(Axis(0), rows),
            Array1::from(
                rows.iter()
                    .map(|&i| targets.y[i] as usize)
                    .collect::<Vec<_>>(),
            ),
        )
    };
    let (x_train_raw, y_train) = part(&split.train);
    let (x_valid_raw, y_valid) = part(&split.valid);
    let (x_test_raw, y_test) = part(&split.test);
    let pipeline = preset.params().fit(x_train_raw.view())?;
    let features = pipeline.output_feature_names(&frame.feature_names)?;
    let x_train = pipeline.transform(x_train_raw.view())?;
    let x_valid = pipeline.transform(x_valid_raw.view())?;
    let k = targets.classes.len();
    let started = Instant::now();
    let fit_mlp = |params: MlpParams| -> Result<_> {
        Ok(params
            .max_epochs(args.epochs)
            .seed(args.seed)
            .check()?
            .fit_on(
                backend.as_ref(),
                x_train.view(),
                y_train.view(),
                Some((x_valid.view(), y_valid.view())),
                Some(k),
            )?
            .with_classes(targets.classes.clone())?
            .with_feature_names(features.clone())?)
    };
    let model = match args.model {
        ModelKind::Mlp => BundleModel::Mlp(fit_mlp(MlpParams::optimized())?),
        ModelKind::SklearnMlp => BundleModel::Mlp(fit_mlp(MlpParams::sklearn_baseline())?),
        ModelKind::Int8Dynamic => BundleModel::Int8(
            DynamicQuantParams::new()
                .weight_granularity(WeightGranularity::PerChannel)
                .activation_range(ActivationRange::PerRow)
                .check()?
                .quantize(fit_mlp(MlpParams::optimized())?.layers())?,
        ),
        ModelKind::Int8Static => {
            let mlp = fit_mlp(MlpParams::optimized())?;
            let rows: Vec<usize> = (0..x_train.nrows().min(4096)).collect();
            BundleModel::Int8(
                StaticQuantParams::new()
                    .check()?
                    .calibrate(mlp.layers(), x_train.select(Axis(0), &rows).view())?,
            )
        }
        ModelKind::Forest => {
            let ds = flowxai::rf_baseline::linfa::Dataset::new(x_train.clone(), y_train.clone());
            BundleModel::Forest(
                RandomForest::params()
                    .n_trees(args.trees)
                    .seed(args.seed)
                    .fit(&ds)?
                    .with_class_names(targets.classes.clone())?
                    .with_feature_names(features.clone())?,
            )
        }
    };
    let train_seconds = started.elapsed().as_secs_f64();
    let bundle = ModelBundle {
        preprocessing: pipeline,
        model,
        feature_names: frame.feature_names.clone(),
        classes: targets.classes.clone(),
        label_level: format!("{:?}", args.level).to_lowercase(),
    };
    bundle.save(&args.out)?;
    let pred = bundle.predict(x_test_raw.view())?;
    let report =
        ConfusionMatrix::from_indices(y_test.as_slice().unwrap_or(&[]), &pred, &targets.classes)?
            .report();
    println!("{}", report.to_text(4));
    let metrics = json!({
        "train_rows": split.train.len(),
        "valid_rows": split.valid.len(),
        "test_rows": split.test.len(),
        "synthetic_input": frame.synthetic,
        "excluded_rows": excluded,
        "training_time_s": train_seconds,
        "report": report,
    });
    write_json(&args.out.join("metrics.json"), &metrics)?;
    println!(
        "trained {:?} in {train_seconds:.1} s; bundle written to {}",
        args.model,
        args.out.display()
    );
    Ok(())
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(value)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Options of `evaluate`.
#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// Bundle folder written by `train` (or by `reproduce` under results/models/).
    #[arg(long)]
    pub model: PathBuf,
    /// Parquet files or CICFlowMeter CSVs to score; their labels are the ground truth.
    #[arg(long, num_args = 1.., required = true)]
    pub input: Vec<PathBuf>,
    /// Write the full report (per class, confusion matrix) as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Score labelled flows with a bundle: classification report (labels matched by name, so a model
/// can be evaluated on another dataset's flows).
pub fn evaluate(args: &EvaluateArgs) -> Result<()> {
    let bundle = ModelBundle::load(&args.model)?;
    let (frame, excluded) = task_frame(&args.input)?;
    let x = select_bundle_features(&frame, &bundle)?;
    let level = match bundle.label_level.as_str() {
        "family" => LabelLevel::Family,
        "binary" => LabelLevel::Binary,
        _ => LabelLevel::Fine,
    };
    let targets = frame.targets(level);
    let y_true: Vec<usize> = targets.y.iter().map(|&v| v as usize).collect();
    let pred = bundle.predict(x.view())?;
    let cm = ConfusionMatrix::cross_dataset(&y_true, &targets.classes, &pred, &bundle.classes)?;
    let report = cm.report();
    if frame.synthetic {
        println!("input: synthetic (resampled) flows — accuracy below is not a real-data result");
    }
    println!("{}", report.to_text(4));
    if let Some(path) = &args.json {
        let mut value = serde_json::to_value(&report)?;
        value["excluded_rows"] = serde_json::to_value(&excluded)?;
        write_json(path, &value)?;
    }
    Ok(())
}

/// The bundle's input columns, taken by name from the frame.
fn select_bundle_features(frame: &FlowFrame, bundle: &ModelBundle) -> Result<ndarray::Array2<f32>> {
    frame
        .feature_columns(&bundle.feature_names)
        .context("the input lacks a feature the model was trained on")
}

/// Options of `explain`.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Bundle folder written by `train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Parquet files or CICFlowMeter CSVs holding the flows to explain.
    #[arg(long, num_args = 1.., required = true)]
    pub input: Vec<PathBuf>,
    /// Output folder: explanation.json and figures (SVG, PNG, PDF).
    #[arg(long)]
    pub out: PathBuf,
    /// Explain the first N flows.
    #[arg(long, default_value_t = 50)]
    pub rows: usize,
    /// KernelSHAP background rows (sampled from the input) for MLP and int8 models.
    #[arg(long, default_value_t = 100)]
    pub background: usize,
    /// Seed of the background sample and of KernelSHAP's coalition sampling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// SHAP values for flows: exact TreeSHAP for a forest, KernelSHAP for MLPs.
pub fn explain(args: &ExplainArgs) -> Result<()> {
    let bundle = ModelBundle::load(&args.model)?;
    let frame = load_frame(&args.input)?;
    let raw = select_bundle_features(&frame, &bundle)?;
    // KernelSHAP explains an MLP whose preprocessing ends with the piecewise-linear encoding
    // per feature, with the encoding inside the explained model; TreeSHAP sees the model's own
    // columns (an encoded forest's bins are named `feature [bin b]`).
    let (front, encoding) = match (bundle.preprocessing.split_piecewise_linear(), &bundle.model) {
        (Some((front, encoding)), BundleModel::Mlp(_) | BundleModel::Int8(_)) => {
            (front, Some(encoding))
        }
        _ => (bundle.preprocessing.clone(), None),
    };
    let x = front.transform(raw.view())?;
    let n = args.rows.min(x.nrows());
    let rows = x.slice(ndarray::s![..n, ..]).to_owned();
    let features = front.output_feature_names(&bundle.feature_names)?;
    let started = Instant::now();
    let expl = match &bundle.model {
        BundleModel::Forest(f) => {
            let ensemble = flowxai::adapters::forest_to_tree_ensemble(f);
            TreeExplainer::new(&ensemble)?
                .with_names(features.clone(), bundle.classes.clone())?
                .explain(rows.view())?
        }
        model => {
            let background = Background::sample(x.view(), args.background, args.seed)?;
            let params = KernelParams::new()
                .seed(args.seed)
                .feature_names(features.clone())
                .class_names(bundle.classes.clone())
                .check()?;
            // A model error stops the command with that error: no made-up probabilities.
            let f = |b: ArrayView2<'_, f32>| -> Result<ndarray::Array2<f32>, shap::ModelError> {
                Ok(match encoding {
                    Some(e) => model.predict_proba(e.transform(b)?.view())?,
                    None => model.predict_proba(b)?,
                })
            };
            KernelExplainer::new(&f, background, params)?.explain(rows.view())?
        }
    };
    let secs = started.elapsed().as_secs_f64();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let synthetic = if frame.synthetic {
        " — synthetic (resampled) input"
    } else {
        ""
    };
    let figs = [
        figures::shap_beeswarm(
            &expl,
            ClassChoice::Predicted,
            15,
            &format!("SHAP summary{synthetic}"),
        )?
        .with_name("shap_beeswarm"),
        figures::shap_bar(&expl, None, 15, &format!("Mean |SHAP|{synthetic}"))?
            .with_name("shap_bar"),
        figures::shap_waterfall(&expl, 0, None, 12, &format!("First flow{synthetic}"))?
            .with_name("shap_waterfall"),
        figures::shap_force(&expl, 0, None, &format!("First flow{synthetic}"))?
            .with_name("shap_force"),
    ];
    for f in &figs {
        f.write(&args.out, &[Format::Svg, Format::Png, Format::Pdf])?;
    }
    let path = args.out.join("explanation.json");
    std::fs::write(&path, serde_json::to_string(&expl)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let predicted = argmax_rows(expl.model_output.mapv(|v| v as f32).view());
    let worst = expl.additivity_error().into_iter().fold(0.0, f64::max);
    println!(
        "explained {n} flows in {secs:.2} s ({:.4} s/flow); largest additivity error {worst:.1e}; first flow predicted {}",
        secs / n.max(1) as f64,
        predicted.first().map(|&c| bundle.classes[c].as_str()).unwrap_or("-")
    );
    println!(
        "wrote {} and figures into {}",
        path.display(),
        args.out.display()
    );
    Ok(())
}

/// Options of `synth`.
#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Which real sample to resample: cic-ddos2019 (the balanced sample).
    #[arg(long, default_value = "cic-ddos2019")]
    pub like: String,
    /// Rows to write.
    #[arg(long)]
    pub rows: usize,
    /// Output CSV (CIC-DDoS2019 header dialect, plus a `Synthetic` column on every row).
    #[arg(long)]
    pub out: PathBuf,
    /// Folder of the real samples.
    #[arg(long, default_value = "../shared/datasets")]
    pub data_dir: PathBuf,
    /// Seed of the resampling and jitter.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Resampled real rows with ±1 % multiplicative jitter (`flowdata::resample_synthetic`), for
/// speed tests only. Every row says `synthetic (resampled)`.
pub fn synth(args: &SynthArgs) -> Result<()> {
    let source = match args.like.as_str() {
        "cic-ddos2019" => args
            .data_dir
            .join("cic-ddos2019/balanced-sample/combined_data.csv"),
        other => bail!("--like {other}: only cic-ddos2019 is supported"),
    };
    let (frame, _) = flowdata::read_csv(&[&source], &ReadOptions::default())
        .with_context(|| format!("reading {}", source.display()))?;
    let synth = flowdata::resample_synthetic(&frame, args.rows, args.seed)?;
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let long_names: Vec<&str> = synth
        .feature_names
        .iter()
        .map(|c| {
            flowdata::FEATURES
                .iter()
                .find(|f| f.canonical == c)
                .map_or(c.as_str(), |f| f.cic_long)
        })
        .collect();
    writeln!(w, "{},Label,Synthetic", long_names.join(","))?;
    let mut line = String::with_capacity(1024);
    for i in 0..synth.n_rows() {
        line.clear();
        for (j, v) in synth.x.row(i).iter().enumerate() {
            if j > 0 {
                line.push(',');
            }
            line.push_str(&v.to_string());
        }
        line.push(',');
        line.push_str(synth.label_raw.get(i));
        line.push_str(",synthetic (resampled)\n");
        w.write_all(line.as_bytes())?;
    }
    w.flush()?;
    println!(
        "wrote {} synthetic (resampled) rows from {} to {} — for speed tests only, never for accuracy",
        synth.n_rows(),
        source.display(),
        args.out.display()
    );
    Ok(())
}
