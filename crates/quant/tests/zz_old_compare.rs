#![allow(dead_code, unused_imports)]

#[path = "/tmp/quant_old/io.rs"]
mod io;
#[path = "/tmp/quant_old/kernels.rs"]
pub mod kernels;
#[path = "/tmp/quant_old/model.rs"]
mod model;
#[path = "/tmp/quant_old/observer.rs"]
pub mod observer;
#[path = "/tmp/quant_old/qparams.rs"]
pub mod qparams;

pub use kernels::KernelKind;
pub use model::{
    activate, fp32_layer_inputs, fp32_logits, DynamicQuantParams, DynamicQuantValidParams,
    QuantMlp, QuantScheme, Scratch, SizeReport, StaticQuantParams, StaticQuantValidParams,
    WeightGranularity,
};
pub use observer::Observer;
pub use qparams::QParams;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    /// Shapes that do not fit together.
    #[error("shape error: {0}")]
    Shape(String),
    /// A parameter out of its range.
    #[error("invalid parameter: {0}")]
    InvalidParam(String),
    /// NaN or infinity in a layer's weights or bias.
    #[error("layer {layer} has a non-finite weight or bias")]
    NonFinite {
        /// Layer index.
        layer: usize,
    },
    /// The requested instruction path does not run on this CPU.
    #[error("kernel {0:?} is not available on this CPU")]
    KernelUnavailable(KernelKind),
    /// Reading or writing a model file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A model file that is not a valid quantized model.
    #[error("invalid quantized model: {0}")]
    Format(String),
}
#[test]
fn new_dynamic_equals_old_bit_for_bit() {
    use mlp_core::inference::{Activation, DenseLayer};
    use ndarray::{Array1, Array2};
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let dims = [76usize, 128, 256, 128, 64, 17];
    let acts = [
        Activation::Relu,
        Activation::Relu,
        Activation::Elu,
        Activation::Relu,
        Activation::Identity,
    ];
    let layers: Vec<DenseLayer> = dims
        .windows(2)
        .zip(acts)
        .map(|(d, activation)| {
            let bound = (6.0 / d[0] as f32).sqrt();
            DenseLayer {
                weight: Array2::from_shape_fn((d[1], d[0]), |_| rng.gen_range(-bound..bound)),
                bias: Array1::from_shape_fn(d[1], |_| rng.gen_range(-0.05..0.05)),
                activation,
            }
        })
        .collect();
    for m in [1usize, 5, 63, 64, 65, 97, 1000, 8192] {
        let x = Array2::from_shape_fn((m, 76), |_| rng.gen_range(-3.0f32..3.0));
        for gran in [
            (
                crate::WeightGranularity::PerTensor,
                quant::WeightGranularity::PerTensor,
            ),
            (
                crate::WeightGranularity::PerChannel,
                quant::WeightGranularity::PerChannel,
            ),
        ] {
            for kind in quant::KernelKind::available() {
                let okind = match kind {
                    quant::KernelKind::Scalar => crate::KernelKind::Scalar,
                    quant::KernelKind::Avx2 => crate::KernelKind::Avx2,
                    quant::KernelKind::AvxVnni => crate::KernelKind::AvxVnni,
                    quant::KernelKind::Avx512Vnni => crate::KernelKind::Avx512Vnni,
                };
                let old = crate::DynamicQuantParams::new()
                    .weight_granularity(gran.0)
                    .kernel(okind)
                    .quantize(&layers)
                    .unwrap()
                    .logits(x.view())
                    .unwrap();
                let new = quant::DynamicQuantParams::new()
                    .weight_granularity(gran.1)
                    .kernel(kind)
                    .quantize(&layers)
                    .unwrap()
                    .logits(x.view())
                    .unwrap();
                let one = rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .build()
                    .unwrap()
                    .install(|| {
                        quant::DynamicQuantParams::new()
                            .weight_granularity(gran.1)
                            .kernel(kind)
                            .quantize(&layers)
                            .unwrap()
                            .logits(x.view())
                            .unwrap()
                    });
                assert!(
                    old.iter()
                        .zip(new.iter())
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "m={m} {kind:?}"
                );
                assert!(
                    one.iter()
                        .zip(new.iter())
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "threads m={m} {kind:?}"
                );
                let so = crate::StaticQuantParams::new()
                    .kernel(okind)
                    .calibrate(&layers, x.view())
                    .unwrap()
                    .logits(x.view())
                    .unwrap();
                let sn = quant::StaticQuantParams::new()
                    .kernel(kind)
                    .calibrate(&layers, x.view())
                    .unwrap()
                    .logits(x.view())
                    .unwrap();
                assert!(
                    so.iter()
                        .zip(sn.iter())
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "static m={m} {kind:?}"
                );
            }
        }
    }
}
