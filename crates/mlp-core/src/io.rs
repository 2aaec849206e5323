//! Save/load: safetensors with PyTorch `state_dict` names (`net.{i}.weight`, …,
//! `net.{i}.num_batches_tracked` as int64 scalars) plus a JSON config, so
//! `torch.nn.Sequential(...).load_state_dict(...)` (with the model as attribute `net`) reads
//! the weights, and [`FittedMlp::load`] rebuilds a servable model.
use crate::error::{MlpError, Result};
use crate::network::{Architecture, Network};
use crate::train::{EpochRecord, FittedMlp};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The JSON config saved beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Format tag.
    pub format: String,
    /// Architecture (`nn.Sequential` named `net`: per hidden block Linear, BatchNorm1d?,
    /// activation?, Dropout? — absent modules take no index — then the output Linear).
    pub architecture: Architecture,
    /// Class names, column order of `predict_proba`.
    pub classes: Vec<String>,
    /// Input feature names, in column order.
    pub feature_names: Vec<String>,
    /// Class weights used in training.
    pub class_weights: Vec<f32>,
    /// Preprocessing pipeline description (opaque to this crate).
    pub preprocessing: Option<serde_json::Value>,
    /// Training history (per-epoch `seconds` are saved as 0, so the same seed gives the same
    /// bytes; [`crate::FittedMlp::history`] has them after training).
    #[serde(default)]
    pub history: Vec<EpochRecord>,
    /// Epoch whose weights were kept.
    #[serde(default)]
    pub best_epoch: Option<usize>,
}

const FORMAT: &str = "flowxai-mlp/1";

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> MlpError + '_ {
    move |source| MlpError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Serialises the network's state dict to safetensors bytes (f32 tensors, int64
/// `num_batches_tracked`), with the JSON config under metadata key `flowxai_config`.
pub fn to_safetensors(net: &Network, config_json: Option<String>) -> Result<Vec<u8>> {
    let f32s = net.state_dict_f32();
    let bytes_f32: Vec<(String, Vec<usize>, Vec<u8>)> = f32s
        .into_iter()
        .map(|(name, (shape, v))| {
            (
                name,
                shape,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let bytes_i64: Vec<(String, Vec<u8>)> = net
        .num_batches_tracked()
        .into_iter()
        .map(|(name, v)| (name, v.to_le_bytes().to_vec()))
        .collect();
    let mut views: Vec<(String, TensorView<'_>)> = Vec::new();
    for (name, shape, data) in &bytes_f32 {
        views.push((
            name.clone(),
            TensorView::new(Dtype::F32, shape.clone(), data)?,
        ));
    }
    for (name, data) in &bytes_i64 {
        views.push((name.clone(), TensorView::new(Dtype::I64, vec![], data)?));
    }
    let meta = config_json.map(|c| HashMap::from([("flowxai_config".to_string(), c)]));
    Ok(safetensors::tensor::serialize(views, meta)?)
}

/// Parses safetensors bytes into a network of the given architecture.
pub fn from_safetensors(bytes: &[u8], arch: Architecture) -> Result<Network> {
    let st = SafeTensors::deserialize(bytes)?;
    let mut f32s = BTreeMap::new();
    let mut i64s = BTreeMap::new();
    for (name, view) in st.tensors() {
        match view.dtype() {
            Dtype::F32 => {
                let v: Vec<f32> = view
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                f32s.insert(name, (view.shape().to_vec(), v));
            }
            Dtype::I64 if view.data().len() == 8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(view.data());
                i64s.insert(name, i64::from_le_bytes(b));
            }
            other => {
                return Err(MlpError::Format(format!(
                    "tensor `{name}` has unsupported dtype {other:?}"
                )))
            }
        }
    }
    Network::from_state_dict(arch, &f32s, &i64s)
}

impl FittedMlp {
    /// The JSON config of this model.
    pub fn config(&self) -> ModelConfig {
        ModelConfig {
            format: FORMAT.into(),
            architecture: self.network.arch.clone(),
            classes: self.classes.clone(),
            feature_names: self.feature_names.clone(),
            class_weights: self.class_weights.clone(),
            preprocessing: self.preprocessing.clone(),
            // Wall-clock seconds stay in memory only: saved, they would make two runs with the
            // same seed write different bytes.
            history: self
                .history
                .iter()
                .map(|r| EpochRecord {
                    seconds: 0.0,
                    ..r.clone()
                })
                .collect(),
            best_epoch: self.best_epoch,
        }
    }

    /// Writes `weights` (safetensors) and `config` (JSON).
    pub fn save(&self, weights: &Path, config: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(&self.config())?;
        let bytes = to_safetensors(&self.network, Some(json.clone()))?;
        std::fs::write(weights, bytes).map_err(io_err(weights))?;
        std::fs::write(config, json).map_err(io_err(config))?;
        Ok(())
    }

    /// Reads a model written by [`FittedMlp::save`] (or a PyTorch `state_dict` saved with
    /// `safetensors.torch.save_file` plus a matching config).
    pub fn load(weights: &Path, config: &Path) -> Result<Self> {
        let json = std::fs::read_to_string(config).map_err(io_err(config))?;
        let cfg: ModelConfig = serde_json::from_str(&json)?;
        let bytes = std::fs::read(weights).map_err(io_err(weights))?;
        let net = from_safetensors(&bytes, cfg.architecture.clone())?;
        let mut m = FittedMlp::from_network(net)?
            .with_classes(cfg.classes)?
            .with_feature_names(cfg.feature_names)?;
        m.preprocessing = cfg.preprocessing;
        m.history = cfg.history;
        m.best_epoch = cfg.best_epoch;
        if cfg.class_weights.len() == m.network.arch.n_classes {
            m.class_weights = cfg.class_weights;
        }
        Ok(m)
    }
}
