//! Save and load quantized models as safetensors.
//!
//! Tensors per layer `i`: `layers.{i}.weight` (I8 `[out, in]`), `layers.{i}.weight_scale`
//! (F32 `[1]` per-tensor or `[out]` per-channel), `layers.{i}.bias` (F32 `[out]`) and, for
//! static models, `layers.{i}.input_scale` (F32 `[1]`) and `layers.{i}.input_zero_point` (I32 `[1]`),
//! or for a first layer quantized per feature F32 `[in]` / I32 `[in]` (its `weight` then holds
//! the int8 weights with those input scales folded in).
//! The header metadata holds `format`, `scheme`, `granularity`, `activation_range` (absent in
//! older files: per batch) and `activations` (JSON).

use std::collections::HashMap;
use std::path::Path;

use mlp_core::inference::Activation;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::kernels::{KernelKind, PackedWeights};
use crate::model::{ActivationRange, QuantLayer, QuantMlp, QuantScheme, WeightGranularity};
use crate::qparams::QParams;
use crate::QuantError;

const FORMAT: &str = "flowxai-quant-v1";

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn fmt_err(e: impl std::fmt::Display) -> QuantError {
    QuantError::Format(e.to_string())
}

/// Metadata key holding [`MetaHeader`] as JSON.
const META_KEY: &str = "flowxai_int8";

/// Everything besides the tensors, in a fixed field order (so the bytes are deterministic).
#[derive(serde::Serialize, serde::Deserialize)]
struct MetaHeader {
    format: String,
    scheme: QuantScheme,
    granularity: WeightGranularity,
    #[serde(default)]
    activation_range: ActivationRange,
    /// Static: the first layer's input has one scale and zero point per feature.
    #[serde(default)]
    input_per_feature: bool,
    activations: Vec<Activation>,
}

impl QuantMlp {
    /// Serialize to safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, QuantError> {
        let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            let (n, k) = (l.weights.n(), l.weights.k());
            let w: Vec<u8> = l.weights.unpack().iter().map(|&v| v as u8).collect();
            owned.push((format!("layers.{i}.weight"), Dtype::I8, vec![n, k], w));
            let scales = match self.granularity {
                WeightGranularity::PerTensor => &l.weight_scales[..1],
                WeightGranularity::PerChannel => &l.weight_scales[..],
            };
            owned.push((
                format!("layers.{i}.weight_scale"),
                Dtype::F32,
                vec![scales.len()],
                f32_bytes(scales),
            ));
            owned.push((
                format!("layers.{i}.bias"),
                Dtype::F32,
                vec![n],
                f32_bytes(&l.bias),
            ));
            if let Some(f) = &l.feature_qparams {
                let scales: Vec<f32> = f.iter().map(|q| q.scale).collect();
                let zps: Vec<u8> = f.iter().flat_map(|q| q.zero_point.to_le_bytes()).collect();
                owned.push((
                    format!("layers.{i}.input_scale"),
                    Dtype::F32,
                    vec![f.len()],
                    f32_bytes(&scales),
                ));
                owned.push((
                    format!("layers.{i}.input_zero_point"),
                    Dtype::I32,
                    vec![f.len()],
                    zps,
                ));
            }
            if let Some(qp) = l.input_qparams {
                owned.push((
                    format!("layers.{i}.input_scale"),
                    Dtype::F32,
                    vec![1],
                    f32_bytes(&[qp.scale]),
                ));
                owned.push((
                    format!("layers.{i}.input_zero_point"),
                    Dtype::I32,
                    vec![1],
                    qp.zero_point.to_le_bytes().to_vec(),
                ));
            }
        }
        let views = owned
            .iter()
            .map(|(name, dt, shape, data)| {
                Ok((
                    name.clone(),
                    TensorView::new(*dt, shape.clone(), data).map_err(fmt_err)?,
                ))
            })
            .collect::<Result<Vec<_>, QuantError>>()?;
        let acts: Vec<Activation> = self.layers.iter().map(|l| l.activation).collect();
        // One metadata key: safetensors stores metadata as a HashMap, whose order (and so the
        // file's bytes) would change from process to process with several keys.
        let header = MetaHeader {
            format: FORMAT.to_string(),
            scheme: self.scheme,
            granularity: self.granularity,
            activation_range: self.act_range,
            input_per_feature: self.layers[0].feature_qparams.is_some(),
            activations: acts,
        };
        let meta = HashMap::from([(
            META_KEY.to_string(),
            serde_json::to_string(&header).map_err(fmt_err)?,
        )]);
        safetensors::tensor::serialize(views, Some(meta)).map_err(fmt_err)
    }

    /// Parse safetensors bytes written by [`QuantMlp::to_bytes`]; uses the fastest kernel of this CPU.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, QuantError> {
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(fmt_err)?;
        let meta = header
            .metadata()
            .as_ref()
            .ok_or_else(|| QuantError::Format("no metadata".into()))?;
        let header: MetaHeader = serde_json::from_str(
            meta.get(META_KEY)
                .ok_or_else(|| QuantError::Format(format!("metadata lacks `{META_KEY}`")))?,
        )
        .map_err(fmt_err)?;
        if header.format != FORMAT {
            return Err(QuantError::Format(format!("format is not {FORMAT}")));
        }
        let (scheme, granularity, acts) = (header.scheme, header.granularity, header.activations);
        let (act_range, per_feature) = (header.activation_range, header.input_per_feature);
        let st = SafeTensors::deserialize(bytes).map_err(fmt_err)?;
        let tensor = |name: String, dtype: Dtype| {
            let t = st
                .tensor(&name)
                .map_err(|e| QuantError::Format(format!("{name}: {e}")))?;
            if t.dtype() != dtype {
                return Err(QuantError::Format(format!(
                    "{name}: dtype {:?}, expected {dtype:?}",
                    t.dtype()
                )));
            }
            Ok((t.shape().to_vec(), t.data().to_vec()))
        };
        let f32s = |data: &[u8]| -> Vec<f32> {
            data.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        let mut layers = Vec::with_capacity(acts.len());
        for (i, &activation) in acts.iter().enumerate() {
            let (shape, w) = tensor(format!("layers.{i}.weight"), Dtype::I8)?;
            let [n, k] = shape[..] else {
                return Err(QuantError::Format(format!("layers.{i}.weight is not 2-D")));
            };
            if i > 0 && layers.last().map(|l: &QuantLayer| l.weights.n()) != Some(k) {
                return Err(QuantError::Format(format!(
                    "layer {i} input width {k} does not follow layer {}",
                    i - 1
                )));
            }
            let w: Vec<i8> = w.iter().map(|&b| b as i8).collect();
            let (_, s) = tensor(format!("layers.{i}.weight_scale"), Dtype::F32)?;
            let scales = f32s(&s);
            let weight_scales = match (granularity, scales.len()) {
                (WeightGranularity::PerTensor, 1) => vec![scales[0]; n],
                (WeightGranularity::PerChannel, len) if len == n => scales,
                (_, len) => {
                    return Err(QuantError::Format(format!(
                        "layers.{i}.weight_scale has {len} values"
                    )))
                }
            };
            let (_, b) = tensor(format!("layers.{i}.bias"), Dtype::F32)?;
            let bias = f32s(&b);
            if bias.len() != n {
                return Err(QuantError::Format(format!(
                    "layers.{i}.bias has {} values, expected {n}",
                    bias.len()
                )));
            }
            if weight_scales.iter().chain(&bias).any(|v| !v.is_finite())
                || weight_scales.iter().any(|&s| s <= 0.0)
            {
                return Err(QuantError::Format(format!(
                    "layers.{i}: non-finite or non-positive scale or bias"
                )));
            }
            let input_qparams = match scheme {
                QuantScheme::Dynamic => Vec::new(),
                QuantScheme::Static => {
                    let (_, s) = tensor(format!("layers.{i}.input_scale"), Dtype::F32)?;
                    let (_, z) = tensor(format!("layers.{i}.input_zero_point"), Dtype::I32)?;
                    let s = f32s(&s);
                    // One pair for the layer, or (first layer only) one per input feature.
                    let expected = if i == 0 && per_feature { k } else { 1 };
                    if s.len() != expected || z.len() != 4 * s.len() {
                        return Err(QuantError::Format(format!(
                            "layers.{i}: bad input scale/zero point"
                        )));
                    }
                    let mut qps = Vec::with_capacity(s.len());
                    for (&scale, zb) in s.iter().zip(z.chunks_exact(4)) {
                        let zp = i32::from_le_bytes([zb[0], zb[1], zb[2], zb[3]]);
                        if !(scale.is_finite() && scale > 0.0 && (0..=127).contains(&zp)) {
                            return Err(QuantError::Format(format!(
                                "layers.{i}: input scale {scale}, zero point {zp}"
                            )));
                        }
                        qps.push(QParams {
                            scale,
                            zero_point: zp,
                        });
                    }
                    qps
                }
            };
            let mut layer = QuantLayer {
                weights: PackedWeights::pack(&w, n, k)?,
                weight_scales,
                bias,
                activation,
                input_qparams: None,
                feature_qparams: None,
                feature_offsets: Vec::new(),
                feature_inv: Vec::new(),
                feature_zp: Vec::new(),
            };
            if i == 0 && per_feature && scheme == QuantScheme::Static {
                layer.set_feature_qparams(input_qparams);
            } else {
                layer.input_qparams = input_qparams.first().copied();
            }
            layers.push(layer);
        }
        if layers.is_empty() {
            return Err(QuantError::Format("no layers".into()));
        }
        Ok(QuantMlp {
            layers,
            scheme,
            granularity,
            act_range,
            kernel: KernelKind::detect(),
        })
    }

    /// Write the model to a safetensors file; returns the file size in bytes.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<usize, QuantError> {
        let path = path.as_ref();
        let bytes = self.to_bytes()?;
        std::fs::write(path, &bytes).map_err(|source| QuantError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(bytes.len())
    }

    /// Read a model written by [`QuantMlp::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, QuantError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| QuantError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes).map_err(|e| QuantError::Format(format!("{}: {e}", path.display())))
    }
}
