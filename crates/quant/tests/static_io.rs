//! Static quantization, kernel/thread independence of whole-model outputs, save/load.
use mlp_core::inference::{Activation, DenseLayer};
use ndarray::{s, Array1, Array2};
use quant::{
    fp32_logits, DynamicQuantParams, KernelKind, Observer, QuantError, QuantMlp, QuantScheme,
    Scratch, StaticQuantParams, WeightGranularity,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random MLP of the thesis shape family (He-like init), ReLU and ELU inside, logits out.
fn random_mlp(dims: &[usize], seed: u64) -> Vec<DenseLayer> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    dims.windows(2)
        .enumerate()
        .map(|(i, d)| {
            let bound = (6.0 / d[0] as f32).sqrt();
            DenseLayer {
                weight: Array2::from_shape_fn((d[1], d[0]), |_| rng.gen_range(-bound..bound)),
                bias: Array1::from_shape_fn(d[1], |_| rng.gen_range(-0.1..0.1)),
                activation: if i + 2 == dims.len() {
                    Activation::Identity
                } else if i % 2 == 0 {
                    Activation::Relu
                } else {
                    Activation::Elu
                },
            }
        })
        .collect()
}

fn inputs(m: usize, k: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((m, k), |_| {
        rng.gen_range(-2.0f32..2.0) * rng.gen_range(0.0f32..1.0)
    })
}

fn rel_err(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    let num: f32 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
    let den: f32 = b.iter().map(|y| y * y).sum();
    (num / den).sqrt()
}

fn agreement(a: &Array2<f32>, b: &Array2<f32>) -> f64 {
    let argmax = |r: ndarray::ArrayView1<f32>| {
        r.iter()
            .enumerate()
            .fold((0, f32::MIN), |m, (j, &v)| if v > m.1 { (j, v) } else { m })
            .0
    };
    let same = a
        .rows()
        .into_iter()
        .zip(b.rows())
        .filter(|(x, y)| argmax(*x) == argmax(*y))
        .count();
    same as f64 / a.nrows() as f64
}

const DIMS: [usize; 6] = [76, 128, 256, 128, 64, 17];

#[test]
fn static_observers_track_fp32() {
    let layers = random_mlp(&DIMS, 1);
    let calib = inputs(512, 76, 2);
    let x = inputs(300, 76, 3);
    let fp32 = fp32_logits(&layers, x.view()).unwrap();
    let dynamic = DynamicQuantParams::new()
        .quantize(&layers)
        .unwrap()
        .logits(x.view())
        .unwrap();
    eprintln!(
        "dynamic: rel err {:.4}, argmax agreement {:.3}",
        rel_err(&dynamic, &fp32),
        agreement(&dynamic, &fp32)
    );
    assert!(rel_err(&dynamic, &fp32) < 0.05);
    for obs in [
        Observer::MinMax,
        Observer::Percentile(99.99),
        Observer::HistogramMse { bins: 2048 },
        Observer::HistogramEntropy { bins: 2048 },
    ] {
        let model = StaticQuantParams::new()
            .observer(obs)
            .calibrate(&layers, calib.view())
            .unwrap();
        assert_eq!(model.scheme(), QuantScheme::Static);
        let got = model.logits(x.view()).unwrap();
        let (e, agree) = (rel_err(&got, &fp32), agreement(&got, &fp32));
        eprintln!("{obs:?}: rel err {e:.4}, argmax agreement {agree:.3}");
        // KL calibration clips hardest (it trades outliers for resolution); it gets a looser bound.
        let (max_e, min_agree) = if matches!(obs, Observer::HistogramEntropy { .. }) {
            (0.2, 0.85)
        } else {
            (0.05, 0.93)
        };
        assert!(e < max_e && agree > min_agree, "{obs:?}: {e} {agree}");
    }
}

#[test]
fn outputs_identical_on_every_kernel_and_thread_count() {
    let layers = random_mlp(&[13, 37, 70, 5], 4);
    let calib = inputs(200, 13, 5);
    let x = inputs(301, 13, 6); // several 64-row blocks and a ragged last one
    let models = [
        DynamicQuantParams::new().quantize(&layers).unwrap(),
        DynamicQuantParams::new()
            .weight_granularity(WeightGranularity::PerChannel)
            .quantize(&layers)
            .unwrap(),
        StaticQuantParams::new()
            .calibrate(&layers, calib.view())
            .unwrap(),
    ];
    for model in models {
        let reference = model
            .clone()
            .with_kernel(KernelKind::Scalar)
            .unwrap()
            .logits(x.view())
            .unwrap();
        for kind in KernelKind::available() {
            let m = model.clone().with_kernel(kind).unwrap();
            assert_eq!(
                m.logits(x.view()).unwrap(),
                reference,
                "{:?} {kind:?}",
                model.scheme()
            );
            let one_thread = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            assert_eq!(
                one_thread.install(|| m.logits(x.view()).unwrap()),
                reference
            );
        }
        // Reused scratch, non-contiguous input, and row-by-row for the static scheme.
        let mut scratch = Scratch::new();
        let mut out = Array2::zeros(reference.dim());
        let xt = x.t().to_owned();
        model
            .logits_into(xt.t(), &mut scratch, out.view_mut())
            .unwrap();
        assert_eq!(out, reference);
        model
            .logits_into(x.view(), &mut scratch, out.view_mut())
            .unwrap();
        assert_eq!(out, reference);
        if model.scheme() == QuantScheme::Static {
            let row = model.logits(x.slice(s![5..6, ..])).unwrap();
            assert_eq!(row.row(0), reference.row(5));
        }
    }
}

#[test]
fn save_load_roundtrip_and_size() {
    let layers = random_mlp(&DIMS, 7);
    let calib = inputs(256, 76, 8);
    let x = inputs(100, 76, 9);
    let dir = tempfile::tempdir().unwrap();
    for model in [
        DynamicQuantParams::new().quantize(&layers).unwrap(),
        StaticQuantParams::new()
            .observer(Observer::Percentile(99.9))
            .calibrate(&layers, calib.view())
            .unwrap(),
    ] {
        let path = dir.path().join("model.safetensors");
        let file_bytes = model.save(&path).unwrap();
        let loaded = QuantMlp::load(&path).unwrap();
        assert_eq!(
            loaded.logits(x.view()).unwrap(),
            model.logits(x.view()).unwrap()
        );
        assert_eq!(loaded.input_qparams(), model.input_qparams());
        let size = model.size_report();
        let params: usize = layers.iter().map(|l| l.weight.len() + l.bias.len()).sum();
        assert_eq!(size.fp32_bytes, 4 * params);
        assert!(size.reduction > 3.5, "{size:?}");
        // The file is the payload plus a small JSON header.
        assert!(
            file_bytes >= size.int8_bytes && file_bytes < size.int8_bytes + 4096,
            "{file_bytes} {size:?}"
        );
        eprintln!("{:?}: {size:?}, file {file_bytes} B", model.scheme());
    }
    // Damaged files are errors, not panics.
    let bytes = DynamicQuantParams::new()
        .quantize(&layers)
        .unwrap()
        .to_bytes()
        .unwrap();
    assert!(matches!(
        QuantMlp::from_bytes(&bytes[..bytes.len() / 2]),
        Err(QuantError::Format(_))
    ));
    assert!(matches!(
        QuantMlp::from_bytes(b"not a model"),
        Err(QuantError::Format(_))
    ));
    assert!(matches!(
        QuantMlp::load(dir.path().join("missing")),
        Err(QuantError::Io { .. })
    ));
}

#[test]
fn bad_models_and_inputs_are_errors() {
    let mut layers = random_mlp(&[4, 3, 2], 10);
    let model = DynamicQuantParams::new().quantize(&layers).unwrap();
    assert!(matches!(
        model.logits(Array2::zeros((2, 5)).view()),
        Err(QuantError::Shape(_))
    ));
    assert_eq!(
        model.logits(Array2::zeros((0, 4)).view()).unwrap().dim(),
        (0, 2)
    );
    layers[1].weight[[0, 0]] = f32::NAN;
    assert!(matches!(
        DynamicQuantParams::new().quantize(&layers),
        Err(QuantError::NonFinite { layer: 1 })
    ));
    let layers = random_mlp(&[4, 3, 2], 10);
    assert!(StaticQuantParams::new()
        .observer(Observer::Percentile(10.0))
        .calibrate(&layers, Array2::zeros((3, 4)).view())
        .is_err());
    assert!(StaticQuantParams::new()
        .calibrate(&layers, Array2::zeros((0, 4)).view())
        .is_err());
    assert!(DynamicQuantParams::new().quantize(&[]).is_err());
}
