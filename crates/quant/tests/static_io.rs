//! Static quantization, kernel/thread independence of whole-model outputs, save/load.
use mlp_core::inference::{Activation, DenseLayer};
use ndarray::{s, Array1, Array2};
use quant::{
    fp32_logits, ActivationRange, DynamicQuantParams, InputGranularity, KernelKind, Observer,
    QuantError, QuantMlp, QuantScheme, Scratch, StaticQuantParams, WeightGranularity,
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
        DynamicQuantParams::new()
            .weight_granularity(WeightGranularity::PerChannel)
            .activation_range(ActivationRange::PerRow)
            .quantize(&layers)
            .unwrap(),
        StaticQuantParams::new()
            .calibrate(&layers, calib.view())
            .unwrap(),
        StaticQuantParams::new()
            .input_granularity(InputGranularity::PerTensor)
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
        DynamicQuantParams::new()
            .activation_range(ActivationRange::PerRow)
            .quantize(&layers)
            .unwrap(),
        StaticQuantParams::new()
            .observer(Observer::Percentile(99.9))
            .calibrate(&layers, calib.view())
            .unwrap(),
        StaticQuantParams::new()
            .observer(Observer::Percentile(99.9))
            .input_granularity(InputGranularity::PerTensor)
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
        assert_eq!(
            loaded.input_feature_qparams(),
            model.input_feature_qparams()
        );
        assert_eq!(loaded.activation_range(), model.activation_range());
        assert_eq!(loaded.to_bytes().unwrap(), model.to_bytes().unwrap());
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

/// Logits of `x` computed in consecutive chunks of the given sizes (cycled).
fn logits_in_chunks(model: &QuantMlp, x: &Array2<f32>, sizes: &[usize]) -> Array2<f32> {
    let mut out = Array2::zeros((x.nrows(), model.n_outputs()));
    let (mut at, mut i) = (0, 0);
    while at < x.nrows() {
        let end = (at + sizes[i % sizes.len()]).min(x.nrows());
        let part = model.logits(x.slice(s![at..end, ..])).unwrap();
        out.slice_mut(s![at..end, ..]).assign(&part);
        (at, i) = (end, i + 1);
    }
    out
}

#[test]
fn per_row_and_static_predictions_do_not_depend_on_the_batch() {
    let layers = random_mlp(&DIMS, 11);
    let mut x = inputs(700, 76, 12);
    // One heavy-tailed flow: with a per-batch range it coarsens every other row of its batch.
    x.row_mut(3).mapv_inplace(|v| 40.0 * v);
    let calib = inputs(300, 76, 13);
    let per_row = DynamicQuantParams::new()
        .weight_granularity(WeightGranularity::PerChannel)
        .activation_range(ActivationRange::PerRow)
        .quantize(&layers)
        .unwrap();
    let stat = StaticQuantParams::new()
        .calibrate(&layers, calib.view())
        .unwrap();
    let per_batch = DynamicQuantParams::new()
        .weight_granularity(WeightGranularity::PerChannel)
        .quantize(&layers)
        .unwrap();
    for model in [&per_row, &stat] {
        let whole = model.logits(x.view()).unwrap();
        for sizes in [&[1][..], &[7, 300, 1, 64], &[97, 5]] {
            assert_eq!(logits_in_chunks(model, &x, sizes), whole, "{sizes:?}");
        }
    }
    let whole = per_batch.logits(x.view()).unwrap();
    assert_ne!(logits_in_chunks(&per_batch, &x, &[1]), whole);
    // And the outlier no longer costs the other rows their precision.
    let fp32 = fp32_logits(&layers, x.view()).unwrap();
    let rest = |a: &Array2<f32>| a.slice(s![4.., ..]).to_owned();
    let (e_row, e_batch) = (
        rel_err(&rest(&per_row.logits(x.view()).unwrap()), &rest(&fp32)),
        rel_err(&rest(&whole), &rest(&fp32)),
    );
    eprintln!("rel err without the outlier row: per-row {e_row:.4}, per-batch {e_batch:.4}");
    assert!(e_row < 0.5 * e_batch, "{e_row} {e_batch}");
}

#[test]
fn per_feature_input_handles_features_of_different_spread() {
    // Features whose spreads differ by 10⁴ (like flow durations beside flag counts): one shared
    // input range leaves the narrow features nothing; per-feature ranges keep them.
    let layers = random_mlp(&DIMS, 14);
    let spread: Vec<f32> = (0..76)
        .map(|j| 10f32.powf(-2.0 + 4.0 * j as f32 / 75.0))
        .collect();
    let scaled = |m: usize, seed: u64| {
        let mut x = inputs(m, 76, seed);
        for mut row in x.rows_mut() {
            row.iter_mut().zip(&spread).for_each(|(v, s)| *v *= s);
        }
        x
    };
    let (calib, x) = (scaled(1000, 15), scaled(400, 16));
    // Fold the spread out of the fp32 model so that every feature matters equally.
    let mut layers = layers;
    for (mut col, s) in layers[0].weight.columns_mut().into_iter().zip(&spread) {
        col.mapv_inplace(|w| w / s);
    }
    let fp32 = fp32_logits(&layers, x.view()).unwrap();
    let mut errs = Vec::new();
    for gran in [InputGranularity::PerFeature, InputGranularity::PerTensor] {
        let model = StaticQuantParams::new()
            .observer(Observer::MinMax)
            .input_granularity(gran)
            .calibrate(&layers, calib.view())
            .unwrap();
        assert_eq!(
            model.input_feature_qparams().map(|f| f.len()),
            (gran == InputGranularity::PerFeature).then_some(76)
        );
        // What the int8 model multiplies by is still W (input scales divided back out).
        let deq = model.dequantized_weight(0).unwrap();
        for (dr, wr) in deq.rows().into_iter().zip(layers[0].weight.rows()) {
            let amax = wr.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (d, w) in dr.iter().zip(wr) {
                // Per-tensor: one rounding step of the row's scale; per-feature: the step of
                // the folded row, mapped back through the feature's scale (much finer for the
                // wide features, coarser only where the feature barely moves the output).
                if gran == InputGranularity::PerTensor {
                    assert!((d - w).abs() <= amax / 255.0 * 1.001, "{d} {w}");
                }
            }
        }
        let e = rel_err(&model.logits(x.view()).unwrap(), &fp32);
        eprintln!("{gran:?}: rel err {e:.4}");
        errs.push(e);
    }
    assert!(errs[0] < 0.05 && errs[0] < 0.25 * errs[1], "{errs:?}");
}

#[test]
fn files_without_the_new_header_fields_load_as_before() {
    // Files written before per-row ranges and per-feature inputs existed lack
    // `activation_range` and `input_per_feature`: they must load as per-batch / per-tensor.
    let layers = random_mlp(&[6, 5, 3], 17);
    let model = DynamicQuantParams::new().quantize(&layers).unwrap();
    let bytes = model.to_bytes().unwrap();
    let mut old = bytes.clone();
    for field in [
        r#"\"activation_range\":\"PerBatch\","#,
        r#"\"input_per_feature\":false,"#,
    ] {
        let at = bytes
            .windows(field.len())
            .position(|w| w == field.as_bytes())
            .expect("field in header");
        // Same length, so the tensor offsets stay valid: blanks inside the metadata JSON string.
        old[at..at + field.len()].fill(b' ');
    }
    assert_ne!(old, bytes);
    let loaded = QuantMlp::from_bytes(&old).unwrap();
    assert_eq!(loaded.activation_range(), ActivationRange::PerBatch);
    assert_eq!(loaded.input_feature_qparams(), None);
    let x = inputs(20, 6, 18);
    assert_eq!(
        loaded.logits(x.view()).unwrap(),
        model.logits(x.view()).unwrap()
    );
}
