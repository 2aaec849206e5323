//! [`ModelBundle`]: everything needed to score raw canonical features — the fitted preprocessing,
//! one model, and the class and feature names — saved as one directory.
//!
//! A bundle is what `cargo xtask train` writes and what `evaluate`, `explain` and `score` read.
//! Its input is the *raw* canonical feature matrix that `flowdata` produces (the bundle applies its
//! own preprocessing), its output one probability column per entry of `classes`.
use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use mlp_core::FittedMlp;
use preprocess::Pipeline;
use quant::QuantMlp;
use rf_baseline::RandomForest;

/// Errors of loading, saving or applying a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// File system error on a bundle path.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause (in the message, not the error chain, so it prints once).
        error: std::io::Error,
    },
    /// The manifest is not valid JSON of the expected shape.
    #[error("{path}: invalid bundle manifest: {error}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// The cause (in the message, not the error chain).
        error: serde_json::Error,
    },
    /// The bundle's parts disagree or a field is out of range (a corrupted or hand-edited
    /// bundle): nothing was allocated or run on it.
    #[error("{path}: field `{field}`: {reason}")]
    Invalid {
        /// The file holding the field.
        path: PathBuf,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The input has another number of features than the bundle was trained on.
    #[error("input has {got} features, the bundle expects {expected} ({names})")]
    FeatureMismatch {
        /// Expected feature count.
        expected: usize,
        /// Actual feature count.
        got: usize,
        /// The expected names, comma separated.
        names: String,
    },
    /// An error of a component crate (preprocessing, MLP, int8, forest).
    #[error("{0}")]
    Component(String),
    /// A part of the bundle could not be read (its crate's error, naming the file).
    #[error("{error}")]
    Part {
        /// The file of the part.
        path: PathBuf,
        /// The component crate's message, prefixed with the file unless it names it already.
        error: String,
    },
}

fn component<E: std::fmt::Display>(e: E) -> BundleError {
    BundleError::Component(e.to_string())
}

/// The model inside a bundle.
#[derive(Debug, Clone)]
pub enum BundleModel {
    /// The fp32 MLP.
    Mlp(FittedMlp),
    /// An int8 MLP (dynamic or static).
    Int8(QuantMlp),
    /// The histogram Random Forest.
    Forest(RandomForest),
}

impl BundleModel {
    /// Short kind name written to the manifest: `mlp`, `int8` or `forest`.
    pub fn kind(&self) -> &'static str {
        match self {
            BundleModel::Mlp(_) => "mlp",
            BundleModel::Int8(_) => "int8",
            BundleModel::Forest(_) => "forest",
        }
    }

    /// Class probabilities for already preprocessed rows.
    pub fn predict_proba(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>, BundleError> {
        match self {
            BundleModel::Mlp(m) => Ok(m.predict_proba(x)),
            BundleModel::Int8(m) => m.predict_proba(x).map_err(component),
            BundleModel::Forest(f) => f.try_predict_proba(x).map_err(component),
        }
    }
}

/// What `bundle.json` holds besides the component files.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    format: String,
    kind: String,
    feature_names: Vec<String>,
    classes: Vec<String>,
    label_level: String,
}

const FORMAT: &str = "flowxai-bundle-1";

/// Preprocessing + model + names: scores raw canonical features.
///
/// ```
/// # use flowxai::bundle::{ModelBundle, BundleModel};
/// # use ndarray::Array2;
/// // Fit a tiny forest on two features and wrap it with an identity-like preprocessing.
/// let x = Array2::from_shape_fn((40, 2), |(i, j)| (i * (j + 1)) as f32);
/// let y: Vec<usize> = (0..40).map(|i| usize::from(i >= 20)).collect();
/// let pipeline = flowxai::preprocess::PipelineParams::new(vec![]).fit(x.view()).unwrap();
/// let ds = flowxai::rf_baseline::linfa::Dataset::new(x.clone(), ndarray::Array1::from(y));
/// use flowxai::rf_baseline::linfa::traits::Fit;
/// let forest = flowxai::rf_baseline::RandomForest::params().n_trees(5).seed(1).fit(&ds).unwrap();
/// let bundle = ModelBundle {
///     preprocessing: pipeline,
///     model: BundleModel::Forest(forest),
///     feature_names: vec!["a".into(), "b".into()],
///     classes: vec!["BENIGN".into(), "attack".into()],
///     label_level: "binary".into(),
/// };
/// let p = bundle.predict_proba(x.view()).unwrap();
/// assert_eq!(p.dim(), (40, 2));
/// ```
#[derive(Debug, Clone)]
pub struct ModelBundle {
    /// Fitted on the training rows only; applied to every input first.
    pub preprocessing: Pipeline,
    /// The model, trained on preprocessed rows.
    pub model: BundleModel,
    /// The raw canonical input features, in column order.
    pub feature_names: Vec<String>,
    /// Column `j` of every output is `classes[j]`.
    pub classes: Vec<String>,
    /// `fine`, `family` or `binary`.
    pub label_level: String,
}

impl ModelBundle {
    /// Preprocess raw canonical features.
    pub fn transform(&self, raw: ArrayView2<'_, f32>) -> Result<Array2<f32>, BundleError> {
        if raw.ncols() != self.feature_names.len() {
            return Err(BundleError::FeatureMismatch {
                expected: self.feature_names.len(),
                got: raw.ncols(),
                names: self.feature_names.join(", "),
            });
        }
        self.preprocessing.transform(raw).map_err(component)
    }

    /// Class probabilities for raw canonical features.
    pub fn predict_proba(&self, raw: ArrayView2<'_, f32>) -> Result<Array2<f32>, BundleError> {
        let x = self.transform(raw)?;
        self.model.predict_proba(x.view())
    }

    /// Most probable class index per row (ties → lowest index).
    pub fn predict(&self, raw: ArrayView2<'_, f32>) -> Result<Vec<usize>, BundleError> {
        Ok(argmax_rows(self.predict_proba(raw)?.view()))
    }

    /// Write `bundle.json`, `preprocessing.json` and the model file(s) into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), BundleError> {
        std::fs::create_dir_all(dir).map_err(|error| BundleError::Io {
            path: dir.to_path_buf(),
            error,
        })?;
        let manifest = Manifest {
            format: FORMAT.into(),
            kind: self.model.kind().into(),
            feature_names: self.feature_names.clone(),
            classes: self.classes.clone(),
            label_level: self.label_level.clone(),
        };
        let path = dir.join("bundle.json");
        let json =
            serde_json::to_string_pretty(&manifest).map_err(|error| BundleError::Manifest {
                path: path.clone(),
                error,
            })?;
        std::fs::write(&path, json).map_err(|error| BundleError::Io { path, error })?;
        self.preprocessing
            .save(dir.join("preprocessing.json"))
            .map_err(component)?;
        match &self.model {
            BundleModel::Mlp(m) => m
                .save(&dir.join("model.safetensors"), &dir.join("model.json"))
                .map_err(component)?,
            BundleModel::Int8(q) => {
                q.save(dir.join("model.int8")).map_err(component)?;
            }
            BundleModel::Forest(f) => f.save(dir.join("forest.json")).map_err(component)?,
        }
        Ok(())
    }

    /// Read a bundle written by [`ModelBundle::save`].
    pub fn load(dir: &Path) -> Result<Self, BundleError> {
        let path = dir.join("bundle.json");
        let text = std::fs::read_to_string(&path).map_err(|error| BundleError::Io {
            path: path.clone(),
            error,
        })?;
        let m: Manifest = serde_json::from_str(&text).map_err(|error| BundleError::Manifest {
            path: path.clone(),
            error,
        })?;
        if m.format != FORMAT {
            return Err(BundleError::Component(format!(
                "{}: format `{}`, expected `{FORMAT}`",
                path.display(),
                m.format
            )));
        }
        let part = |file: &str, e: &dyn std::fmt::Display| {
            let path = dir.join(file);
            let message = e.to_string();
            let shown = path.display().to_string();
            BundleError::Part {
                error: if message.contains(&shown) {
                    message
                } else {
                    format!("{shown}: {message}")
                },
                path,
            }
        };
        let preprocessing = Pipeline::load(dir.join("preprocessing.json"))
            .map_err(|e| part("preprocessing.json", &e))?;
        let model = match m.kind.as_str() {
            "mlp" => BundleModel::Mlp(
                FittedMlp::load(&dir.join("model.safetensors"), &dir.join("model.json"))
                    .map_err(|e| part("model.safetensors", &e))?,
            ),
            "int8" => BundleModel::Int8(
                QuantMlp::load(dir.join("model.int8")).map_err(|e| part("model.int8", &e))?,
            ),
            "forest" => BundleModel::Forest(
                RandomForest::load(dir.join("forest.json")).map_err(|e| part("forest.json", &e))?,
            ),
            other => {
                return Err(BundleError::Component(format!(
                    "{}: unknown model kind `{other}`",
                    path.display()
                )))
            }
        };
        let bundle = ModelBundle {
            preprocessing,
            model,
            feature_names: m.feature_names,
            classes: m.classes,
            label_level: m.label_level,
        };
        bundle.validate(dir)?;
        Ok(bundle)
    }

    /// Cross-checks the parts of a bundle read from `dir`: names unique and non-empty, the
    /// preprocessing's input width = the feature count, its output width = the model's input
    /// width, the model's outputs = the class count. After this no call can panic on a width
    /// mismatch.
    fn validate(&self, dir: &Path) -> Result<(), BundleError> {
        let manifest = dir.join("bundle.json");
        let invalid = |path: PathBuf, field: &'static str, reason: String| BundleError::Invalid {
            path,
            field,
            reason,
        };
        unique_names(&self.feature_names)
            .map_err(|r| invalid(manifest.clone(), "feature_names", r))?;
        unique_names(&self.classes).map_err(|r| invalid(manifest.clone(), "classes", r))?;
        if !matches!(self.label_level.as_str(), "fine" | "family" | "binary") {
            return Err(invalid(
                manifest,
                "label_level",
                format!("`{}`, expected fine, family or binary", self.label_level),
            ));
        }
        let pre = dir.join("preprocessing.json");
        // Checked before `n_features_out`, whose size follows `n_features_in`.
        if self.preprocessing.n_features_in() != self.feature_names.len() {
            return Err(invalid(
                pre,
                "n_features_in",
                format!(
                    "{}, but bundle.json names {} features",
                    self.preprocessing.n_features_in(),
                    self.feature_names.len()
                ),
            ));
        }
        let width = self.preprocessing.n_features_out();
        let (model_file, inputs, outputs) = match &self.model {
            BundleModel::Mlp(m) => (
                "model.json",
                m.serving().n_features(),
                m.serving().n_classes(),
            ),
            BundleModel::Int8(q) => ("model.int8", q.n_inputs(), q.n_outputs()),
            BundleModel::Forest(f) => ("forest.json", f.n_features(), f.n_classes()),
        };
        if inputs != width {
            return Err(invalid(
                dir.join(model_file),
                "input width",
                format!("the model reads {inputs} columns, the preprocessing writes {width}"),
            ));
        }
        if outputs != self.classes.len() {
            return Err(invalid(
                dir.join(model_file),
                "classes",
                format!(
                    "the model has {outputs} outputs, bundle.json names {} classes",
                    self.classes.len()
                ),
            ));
        }
        Ok(())
    }
}

/// `Ok` when `names` is non-empty with no empty or repeated name.
fn unique_names(names: &[String]) -> Result<(), String> {
    if names.is_empty() {
        return Err("empty".into());
    }
    let mut seen = std::collections::HashSet::new();
    for n in names {
        if n.is_empty() {
            return Err("an empty name".into());
        }
        if !seen.insert(n.as_str()) {
            return Err(format!("`{n}` appears twice"));
        }
    }
    Ok(())
}

/// Index of the largest value per row (ties → lowest index; NaN never wins).
pub fn argmax_rows(p: ArrayView2<'_, f32>) -> Vec<usize> {
    p.rows()
        .into_iter()
        .map(|r| {
            let mut best = 0;
            let mut best_v = f32::NEG_INFINITY;
            for (j, &v) in r.iter().enumerate() {
                if v > best_v {
                    best = j;
                    best_v = v;
                }
            }
            best
        })
        .collect()
}
