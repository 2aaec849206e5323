//! [`ScoringModel`]: a loaded [`ModelBundle`] plus its content hash and a ready explainer.
use std::path::{Path, PathBuf};

use ndarray::{s, Array2, Array3, ArrayView2};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use flowxai::bundle::{argmax_rows, BundleModel, ModelBundle};
use flowxai::preprocess::PiecewiseLinear;
use flowxai::shap::{
    self, Background, KernelExplainer, KernelParams, L1Reg, NSamples, TreeExplainer,
};

use crate::error::ScaleError;

/// Content hash of a bundle directory: SHA-256 over every regular file, in name order, as
/// `name \0 length(u64 LE) bytes`. Written `sha256:<64 hex>`.
///
/// The hash names the exact model bytes, so a plan built against one bundle cannot silently run
/// against another (see [`ScoringModel::check_plan_hash`]).
pub fn content_hash(dir: &Path) -> Result<String, ScaleError> {
    let io = |path: &Path, source| ScaleError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .map(|entry| entry.map(|e| e.path()).map_err(|e| io(dir, e)))
        .collect::<Result<Vec<_>, _>>()?;
    names.retain(|p| p.is_file());
    names.sort();
    let mut hasher = Sha256::new();
    for path in &names {
        let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        hasher.update(name.unwrap_or_default().as_bytes());
        hasher.update([0u8]);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256:{hex}"))
}

/// How flows are explained (the cost bound of `explain` and `mean_abs_shap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExplainMethod {
    /// Exact path-dependent TreeSHAP (forest bundles): cost ∝ trees × leaves × depth² per flow.
    Tree,
    /// KernelSHAP against one reference flow (MLP and int8 bundles): at most `nsamples` model
    /// rows per flow.
    Kernel {
        /// Coalitions per flow.
        nsamples: usize,
    },
}

/// The explainer a bundle's model kind gets, built once at load.
enum Explainer {
    /// Exact TreeSHAP, its tree arrays converted from the forest.
    Tree(TreeExplainer),
    /// KernelSHAP with this many coalitions per flow (built per call: it borrows the model).
    Kernel { nsamples: usize },
}

/// A model bundle loaded once per process, with the hash plans must carry.
///
/// ```no_run
/// let model = flowxai_datafusion::ScoringModel::load("results/models/mlp".as_ref()).unwrap();
/// println!("{} ({}), classes {:?}", model.hash(), model.kind(), model.classes());
/// ```
pub struct ScoringModel {
    bundle: ModelBundle,
    hash: String,
    source: String,
    explainer: Explainer,
}

impl std::fmt::Debug for ScoringModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScoringModel")
            .field("hash", &self.hash)
            .field("source", &self.source)
            .field("kind", &self.bundle.model.kind())
            .field("method", &self.explain_method())
            .finish()
    }
}

/// Default KernelSHAP budget of `explain` for MLP bundles: shap's `auto` for 76 features
/// (2·76 + 2048), so one flow costs at most 2,200 model rows.
pub const DEFAULT_KERNEL_NSAMPLES: usize = 2 * 76 + 2048;

impl ScoringModel {
    /// Loads the bundle in `dir` and hashes its files.
    pub fn load(dir: &Path) -> Result<Self, ScaleError> {
        let hash = content_hash(dir)?;
        let bundle = ModelBundle::load(dir).map_err(|e| ScaleError::Bundle {
            path: dir.to_path_buf(),
            msg: e.to_string(),
        })?;
        Self::from_bundle(bundle, hash, dir.display().to_string())
    }

    /// Wraps an in-memory bundle; `hash` is what plans must carry, `source` names it in errors.
    pub fn from_bundle(
        bundle: ModelBundle,
        hash: String,
        source: String,
    ) -> Result<Self, ScaleError> {
        let explainer = match &bundle.model {
            BundleModel::Forest(forest) => {
                let ensemble = flowxai::adapters::forest_to_tree_ensemble(forest);
                Explainer::Tree(TreeExplainer::new(&ensemble).map_err(shap_err)?)
            }
            BundleModel::Mlp(_) | BundleModel::Int8(_) => Explainer::Kernel {
                nsamples: DEFAULT_KERNEL_NSAMPLES,
            },
        };
        Ok(Self {
            bundle,
            hash,
            source,
            explainer,
        })
    }

    /// Changes the KernelSHAP budget (no effect on forest bundles, which are explained exactly).
    pub fn with_kernel_nsamples(mut self, nsamples: usize) -> Self {
        if let Explainer::Kernel { nsamples: n } = &mut self.explainer {
            *n = nsamples.max(2);
        }
        self
    }

    /// `sha256:<hex>` of the bundle files.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Where the bundle came from (a directory), for messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// `mlp`, `int8` or `forest`.
    pub fn kind(&self) -> &'static str {
        self.bundle.model.kind()
    }

    /// Raw canonical input features, in argument order.
    pub fn feature_names(&self) -> &[String] {
        &self.bundle.feature_names
    }

    /// Output classes, in probability order.
    pub fn classes(&self) -> &[String] {
        &self.bundle.classes
    }

    /// The bundle itself (for direct, engine-free scoring).
    pub fn bundle(&self) -> &ModelBundle {
        &self.bundle
    }

    /// How `explain` works for this model.
    pub fn explain_method(&self) -> ExplainMethod {
        match self.explainer {
            Explainer::Tree(_) => ExplainMethod::Tree,
            Explainer::Kernel { nsamples } => ExplainMethod::Kernel { nsamples },
        }
    }

    /// Errors unless `plan_hash` is this model's hash: a plan built for another bundle must not
    /// run here.
    pub fn check_plan_hash(&self, plan_hash: &str) -> Result<(), ScaleError> {
        if plan_hash == self.hash {
            Ok(())
        } else {
            Err(ScaleError::ModelMismatch {
                plan: plan_hash.to_string(),
                held: self.hash.clone(),
                origin: self.source.clone(),
            })
        }
    }

    /// Class probabilities of raw canonical feature rows, `[rows, classes]`.
    pub fn predict_proba(&self, raw: ArrayView2<'_, f32>) -> Result<Array2<f32>, ScaleError> {
        self.bundle
            .predict_proba(raw)
            .map_err(|e| ScaleError::Model(e.to_string()))
    }

    /// SHAP values of raw rows in raw-feature space, `[rows, raw features, classes]` (features the
    /// preprocessing drops as constant get 0), and the model's probabilities `[rows, classes]`.
    ///
    /// Every flow is explained on its own (KernelSHAP flows all use the same seeded stream), so
    /// a flow's values do not depend on which other flows share its batch.
    pub fn shap_values(
        &self,
        raw: ArrayView2<'_, f32>,
    ) -> Result<(Array3<f64>, Array2<f32>), ScaleError> {
        let x = self
            .bundle
            .transform(raw)
            .map_err(|e| ScaleError::Model(e.to_string()))?;
        let proba = self
            .bundle
            .model
            .predict_proba(x.view())
            .map_err(|e| ScaleError::Model(e.to_string()))?;
        let n = raw.nrows();
        let n_classes = self.bundle.classes.len();
        let (in_space, cols) = match &self.explainer {
            Explainer::Tree(tree) => (
                tree.explain(x.view()).map_err(shap_err)?.values,
                self.bundle.preprocessing.output_features(),
            ),
            // A trailing piecewise-linear encoding runs inside the explained model, so each
            // feature's bins share one attribution (explaining the bins apart and adding them
            // up would split the Shapley credit among columns that only move together).
            Explainer::Kernel { nsamples } => {
                match self.bundle.preprocessing.split_piecewise_linear() {
                    Some((front, encoding)) => {
                        let z = front
                            .transform(raw)
                            .map_err(|e| ScaleError::Model(e.to_string()))?;
                        let values = self.kernel_values(z.view(), *nsamples, Some(encoding))?;
                        (values, front.output_features())
                    }
                    None => (
                        self.kernel_values(x.view(), *nsamples, None)?,
                        self.bundle.preprocessing.output_features(),
                    ),
                }
            }
        };
        let mut values = Array3::<f64>::zeros((n, raw.ncols(), n_classes));
        // Model columns from one raw feature (the bins of an encoding TreeSHAP saw apart) add up.
        for (j_model, &j_raw) in cols.iter().enumerate() {
            let mut dst = values.slice_mut(s![.., j_raw, ..]);
            dst += &in_space.slice(s![.., j_model, ..]);
        }
        Ok((values, proba))
    }

    /// KernelSHAP in the model's input space (before a trailing `encoding`, which then runs
    /// inside the model) against one reference flow: the all-zero row, which after the robust
    /// scaler or the normal scores is the training median of every feature ("the median
    /// flow"). The bundle carries no background sample; one reference keeps the cost per flow
    /// at `nsamples` model rows.
    fn kernel_values(
        &self,
        x: ArrayView2<'_, f32>,
        nsamples: usize,
        encoding: Option<&PiecewiseLinear>,
    ) -> Result<Array3<f64>, ScaleError> {
        let model = BundleModelFn(&self.bundle.model, encoding);
        let background = Background::new(Array2::zeros((1, x.ncols()))).map_err(shap_err)?;
        let params = KernelParams::new()
            .l1_reg(L1Reg::None)
            .nsamples(NSamples::Fixed(nsamples))
            .check()
            .map_err(shap_err)?;
        let explainer = KernelExplainer::new(&model, background, params).map_err(shap_err)?;
        let per_flow: Vec<Array3<f64>> = (0..x.nrows())
            .into_par_iter()
            .map(|i| {
                explainer
                    .explain(x.slice(s![i..i + 1, ..]))
                    .map(|e| e.values)
                    .map_err(shap_err)
            })
            .collect::<Result<_, _>>()?;
        let views: Vec<_> = per_flow.iter().map(|v| v.view()).collect();
        if views.is_empty() {
            return Ok(Array3::zeros((0, x.ncols(), self.bundle.classes.len())));
        }
        ndarray::concatenate(ndarray::Axis(0), &views).map_err(|e| ScaleError::Model(e.to_string()))
    }

    /// Top-`k` features by |SHAP| for the predicted class of every row, as
    /// `feature=+0.1234;feature=-0.0567` (largest first; ties by feature order).
    pub fn explain_top_k(
        &self,
        raw: ArrayView2<'_, f32>,
        k: usize,
    ) -> Result<Vec<String>, ScaleError> {
        let (values, proba) = self.shap_values(raw)?;
        let predicted = argmax_rows(proba.view());
        let names = &self.bundle.feature_names;
        Ok(predicted
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let mut order: Vec<usize> = (0..names.len()).collect();
                order.sort_by(|&a, &b| {
                    values[[i, b, c]]
                        .abs()
                        .total_cmp(&values[[i, a, c]].abs())
                        .then(a.cmp(&b))
                });
                order
                    .iter()
                    .take(k)
                    .map(|&j| format!("{}={:+.4}", names[j], values[[i, j, c]]))
                    .collect::<Vec<_>>()
                    .join(";")
            })
            .collect())
    }

    /// Per raw feature: the sum over rows of Σ_classes |SHAP| (divide by the row count for the
    /// overall mean |SHAP| of [`flowxai::shap::GlobalImportance`]).
    pub fn abs_shap_sums(&self, raw: ArrayView2<'_, f32>) -> Result<Vec<f64>, ScaleError> {
        let (values, _) = self.shap_values(raw)?;
        let (n, m, d) = values.dim();
        let mut sums = vec![0.0; m];
        for i in 0..n {
            for (j, sum) in sums.iter_mut().enumerate() {
                *sum += (0..d).map(|c| values[[i, j, c]].abs()).sum::<f64>();
            }
        }
        Ok(sums)
    }
}

/// The bundle's model as a [`shap::Model`] (input: preprocessed rows, before the encoding if
/// one is given).
struct BundleModelFn<'a>(&'a BundleModel, Option<&'a PiecewiseLinear>);

impl shap::Model for BundleModelFn<'_> {
    fn predict_proba(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>, shap::ModelError> {
        Ok(match self.1 {
            Some(encoding) => self.0.predict_proba(encoding.transform(x)?.view())?,
            None => self.0.predict_proba(x)?,
        })
    }
}

fn shap_err(e: shap::ShapError) -> ScaleError {
    ScaleError::Model(e.to_string())
}
