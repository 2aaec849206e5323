//! Quantized MLP: dynamic (PyTorch `quantize_dynamic`) and static (calibrated, int8 end to end).

use mlp_core::inference::{Activation, DenseLayer};
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::kernels::{self, AccTile, KernelKind, PackedWeights, TileSink, ACC_STRIDE};
use crate::observer::Observer;
use crate::qparams::{
    activation_qparams, quantize_act, quantize_weight, round_even_small, symmetric_weight_scale,
    QParams,
};
use crate::QuantError;

/// One parallel task of a dynamic layer: input rows, their 7-bit copy, output rows, min/max slot.
type DynBlock<'a> = (
    (&'a [f32], &'a mut [u8]),
    (&'a mut [f32], &'a mut (f32, f32)),
);

/// Rows per parallel task of a dynamic layer (16 AVX-512 register tiles of 6 rows; 96 and 128
/// measured ~2 % faster than 64 on the bench). Every row is computed independently of how rows
/// are grouped, and a block's min/max is exact, so results do not depend on the block size or
/// the number of threads.
const ROW_BLOCK: usize = 96;
/// Rows per parallel task of the static scheme (each task keeps every layer's 7-bit input).
const STATIC_ROW_BLOCK: usize = 64;

/// How weights are scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WeightGranularity {
    /// One symmetric scale per layer (PyTorch's default `MinMaxObserver(per_tensor_symmetric)`).
    PerTensor,
    /// One symmetric scale per output neuron (PyTorch's `per_channel_dynamic_qconfig`).
    PerChannel,
}

/// How activations are quantized.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum QuantScheme {
    /// Each layer's fp32 input is quantized at run time from the whole batch's min/max
    /// (7-bit unsigned, asymmetric); the layer output is dequantized to fp32 (+ bias, activation).
    Dynamic,
    /// Each layer's input parameters are fixed by calibration; activations stay 7-bit unsigned
    /// between layers. Requantization uses an fp32 multiplier:
    /// `q' = clamp(round(act((acc − zp·Σw) · s_in·s_w + b) / s_out) + zp_out, 0, 127)`.
    Static,
}

/// One quantized dense layer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QuantLayer {
    pub(crate) weights: PackedWeights,
    /// Weight scale per output column (all equal for [`WeightGranularity::PerTensor`]).
    pub(crate) weight_scales: Vec<f32>,
    pub(crate) bias: Vec<f32>,
    pub(crate) activation: Activation,
    /// Static scheme: the calibrated parameters of this layer's input.
    pub(crate) input_qparams: Option<QParams>,
}

/// A quantized MLP ready for int8 inference.
///
/// ```
/// use mlp_core::inference::{Activation, DenseLayer};
/// use ndarray::{array, Array1};
/// use quant::DynamicQuantParams;
///
/// let layers = vec![
///     DenseLayer { weight: array![[0.5, -1.0], [1.0, 0.25]], bias: Array1::zeros(2), activation: Activation::Relu },
///     DenseLayer { weight: array![[1.0, -1.0]], bias: array![0.1], activation: Activation::Identity },
/// ];
/// let model = DynamicQuantParams::new().quantize(&layers).unwrap();
/// let logits = model.logits(array![[1.0f32, 2.0], [0.0, -1.0]].view()).unwrap();
/// assert!((logits[[0, 0]] - (-1.5 + 0.1)).abs() < 0.05); // relu([−1.5, 1.5]) · [1, −1] + 0.1
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct QuantMlp {
    pub(crate) layers: Vec<QuantLayer>,
    pub(crate) scheme: QuantScheme,
    pub(crate) granularity: WeightGranularity,
    pub(crate) kernel: KernelKind,
}

/// Reusable buffers for [`QuantMlp::logits_into`]: after the first batch of a given size,
/// inference allocates nothing.
#[derive(Debug, Default)]
pub struct Scratch {
    input: Vec<f32>,
    act_u8: Vec<u8>,
    f_a: Vec<f32>,
    f_b: Vec<f32>,
    mult: Vec<f32>,
    offset: Vec<i32>,
    minmax: Vec<(f32, f32)>,
}

impl Scratch {
    /// Empty buffers; they grow on first use.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Parameters of dynamic quantization (PyTorch `quantize_dynamic`, qint8, fbgemm).
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicQuantParams {
    granularity: WeightGranularity,
    kernel: Option<KernelKind>,
}

/// Checked [`DynamicQuantParams`].
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicQuantValidParams(DynamicQuantParams);

impl Default for DynamicQuantParams {
    fn default() -> Self {
        Self::new()
    }
}

impl DynamicQuantParams {
    /// PyTorch's defaults: per-tensor symmetric int8 weights; fastest kernel of this CPU.
    ///
    /// **For BatchNorm-folded models (what `mlp-core` serves) use
    /// [`WeightGranularity::PerChannel`].** Folding multiplies each output row by its own
    /// `γ / √(σ² + ε)`, so rows end up with very different ranges; one scale per tensor is set by
    /// the widest row and leaves the narrow rows only a few int8 levels (in the trained model
    /// of `tests/quant_real.rs` the first layer's widest rows reach |w| = 2.0–2.55 while its
    /// median row peaks at 0.38: that row gets ±19 of the 127 levels, 55 of 128 rows get fewer
    /// than ±16, the narrowest ±6; the later layers are within a factor 2–5). On the real
    /// CIC-DDoS2019 sample (`tests/quant_real.rs`, 2,323 held-out flows, 16 classes) per-tensor
    /// changes 5.6 % of fp32's predictions (argmax agreement 0.944; accuracy and macro-F1 move
    /// by 1–2 points, in either direction depending on the run, and by 3.6 accuracy points in a
    /// full `cargo xtask reproduce` run), per-channel changes 1.9 % (agreement 0.982; accuracy
    /// −0.09, macro-F1 −0.05 points). Per-tensor stays the default only because it is
    /// PyTorch's `quantize_dynamic` default and is tested against it bit for bit.
    pub fn new() -> Self {
        Self {
            granularity: WeightGranularity::PerTensor,
            kernel: None,
        }
    }
    /// Per-tensor (default) or per-channel weight scales.
    pub fn weight_granularity(mut self, granularity: WeightGranularity) -> Self {
        self.granularity = granularity;
        self
    }
    /// Force an instruction path (default: [`KernelKind::detect`]).
    pub fn kernel(mut self, kernel: KernelKind) -> Self {
        self.kernel = Some(kernel);
        self
    }
    /// Check that the chosen kernel runs on this CPU.
    pub fn check(self) -> Result<DynamicQuantValidParams, QuantError> {
        check_kernel(self.kernel)?;
        Ok(DynamicQuantValidParams(self))
    }
    /// Check, then quantize `layers`.
    pub fn quantize(&self, layers: &[DenseLayer]) -> Result<QuantMlp, QuantError> {
        self.clone().check()?.quantize(layers)
    }
}

impl DynamicQuantValidParams {
    /// Quantize the weights of `layers` (fp32 `[out, in]`, BatchNorm already folded).
    pub fn quantize(&self, layers: &[DenseLayer]) -> Result<QuantMlp, QuantError> {
        let p = &self.0;
        let layers = quantize_layers(layers, p.granularity)?;
        Ok(QuantMlp {
            layers,
            scheme: QuantScheme::Dynamic,
            granularity: p.granularity,
            kernel: p.kernel.unwrap_or_else(KernelKind::detect),
        })
    }
}

/// Parameters of static quantization: weights int8, activation ranges calibrated with an observer.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticQuantParams {
    granularity: WeightGranularity,
    observer: Observer,
    kernel: Option<KernelKind>,
}

/// Checked [`StaticQuantParams`].
#[derive(Debug, Clone, PartialEq)]
pub struct StaticQuantValidParams(StaticQuantParams);

impl Default for StaticQuantParams {
    fn default() -> Self {
        Self::new()
    }
}

impl StaticQuantParams {
    /// Per-channel weights, [`Observer::Percentile`] at 99.99, fastest kernel.
    ///
    /// On the real CIC-DDoS2019 sample (`tests/quant_real.rs`) min/max and the 99.99th percentile
    /// keep ~98.5 % of fp32's predictions, histogram-MSE ~95 % (it clips the long tails that carry
    /// class information) and entropy ~75 %.
    pub fn new() -> Self {
        Self {
            granularity: WeightGranularity::PerChannel,
            observer: Observer::Percentile(99.99),
            kernel: None,
        }
    }
    /// Per-tensor or per-channel (default) weight scales.
    pub fn weight_granularity(mut self, granularity: WeightGranularity) -> Self {
        self.granularity = granularity;
        self
    }
    /// How activation ranges are chosen from the calibration set.
    pub fn observer(mut self, observer: Observer) -> Self {
        self.observer = observer;
        self
    }
    /// Force an instruction path.
    pub fn kernel(mut self, kernel: KernelKind) -> Self {
        self.kernel = Some(kernel);
        self
    }
    /// Check the observer and kernel.
    pub fn check(self) -> Result<StaticQuantValidParams, QuantError> {
        self.observer.check()?;
        check_kernel(self.kernel)?;
        Ok(StaticQuantValidParams(self))
    }
    /// Check, then calibrate on `calibration` (rows = flows, already preprocessed like model input).
    pub fn calibrate(
        &self,
        layers: &[DenseLayer],
        calibration: ArrayView2<f32>,
    ) -> Result<QuantMlp, QuantError> {
        self.clone().check()?.calibrate(layers, calibration)
    }
}

impl StaticQuantValidParams {
    /// Run the fp32 model on `calibration`, observe every layer's input, quantize.
    pub fn calibrate(
        &self,
        layers: &[DenseLayer],
        calibration: ArrayView2<f32>,
    ) -> Result<QuantMlp, QuantError> {
        let p = &self.0;
        let mut qlayers = quantize_layers(layers, p.granularity)?;
        if calibration.nrows() == 0 {
            return Err(QuantError::InvalidParam("empty calibration set".into()));
        }
        let inputs = fp32_layer_inputs(layers, calibration)?;
        for (ql, input) in qlayers.iter_mut().zip(&inputs) {
            let values: Vec<f32> = input.iter().copied().collect();
            let (lo, hi) = p.observer.range(&values)?;
            ql.input_qparams = Some(activation_qparams(lo, hi));
        }
        Ok(QuantMlp {
            layers: qlayers,
            scheme: QuantScheme::Static,
            granularity: p.granularity,
            kernel: p.kernel.unwrap_or_else(KernelKind::detect),
        })
    }
}

fn check_kernel(kernel: Option<KernelKind>) -> Result<(), QuantError> {
    match kernel {
        Some(k) if !k.is_available() => Err(QuantError::KernelUnavailable(k)),
        _ => Ok(()),
    }
}

fn validate_layers(layers: &[DenseLayer]) -> Result<(), QuantError> {
    if layers.is_empty() {
        return Err(QuantError::Shape("no layers".into()));
    }
    for (i, l) in layers.iter().enumerate() {
        let (n, k) = l.weight.dim();
        if n == 0 || k == 0 || l.bias.len() != n {
            return Err(QuantError::Shape(format!(
                "layer {i}: weight [{n}, {k}] with bias of length {}",
                l.bias.len()
            )));
        }
        if i > 0 && layers[i - 1].weight.nrows() != k {
            return Err(QuantError::Shape(format!(
                "layer {i} takes {k} inputs but layer {} gives {}",
                i - 1,
                layers[i - 1].weight.nrows()
            )));
        }
        if l.weight.iter().chain(l.bias.iter()).any(|v| !v.is_finite()) {
            return Err(QuantError::NonFinite { layer: i });
        }
    }
    Ok(())
}

fn quantize_layers(
    layers: &[DenseLayer],
    granularity: WeightGranularity,
) -> Result<Vec<QuantLayer>, QuantError> {
    validate_layers(layers)?;
    layers
        .iter()
        .map(|l| {
            let (n, k) = l.weight.dim();
            let w: Vec<f32> = l.weight.iter().copied().collect();
            let weight_scales = match granularity {
                WeightGranularity::PerTensor => vec![symmetric_weight_scale(&w); n],
                WeightGranularity::PerChannel => {
                    w.chunks_exact(k).map(symmetric_weight_scale).collect()
                }
            };
            let q: Vec<i8> = w
                .chunks_exact(k)
                .zip(&weight_scales)
                .flat_map(|(row, &s)| row.iter().map(move |&v| quantize_weight(v, s)))
                .collect();
            Ok(QuantLayer {
                weights: PackedWeights::pack(&q, n, k)?,
                weight_scales,
                bias: l.bias.to_vec(),
                activation: l.activation,
                input_qparams: None,
            })
        })
        .collect()
}

/// fp32 activation, as PyTorch computes it (ELU with alpha = 1 via `expm1`).
pub fn activate(act: Activation, x: f32) -> f32 {
    match act {
        Activation::Identity => x,
        Activation::Relu => x.max(0.0),
        Activation::Elu => {
            if x > 0.0 {
                x
            } else {
                x.exp_m1()
            }
        }
    }
}

/// The fp32 forward pass; returns the input of every layer (`[0]` is `x` itself) — the values
/// static calibration observes.
pub fn fp32_layer_inputs(
    layers: &[DenseLayer],
    x: ArrayView2<f32>,
) -> Result<Vec<Array2<f32>>, QuantError> {
    validate_layers(layers)?;
    if x.ncols() != layers[0].weight.ncols() {
        return Err(QuantError::Shape(format!(
            "input has {} columns, the model takes {}",
            x.ncols(),
            layers[0].weight.ncols()
        )));
    }
    let mut inputs = vec![x.to_owned()];
    for (i, l) in layers[..layers.len() - 1].iter().enumerate() {
        let mut y = inputs[i].dot(&l.weight.t()) + &l.bias;
        y.mapv_inplace(|v| activate(l.activation, v));
        inputs.push(y);
    }
    Ok(inputs)
}

/// The fp32 logits of `layers` for `x` (the unquantized reference).
pub fn fp32_logits(layers: &[DenseLayer], x: ArrayView2<f32>) -> Result<Array2<f32>, QuantError> {
    let inputs = fp32_layer_inputs(layers, x)?;
    let last = &layers[layers.len() - 1];
    Ok(inputs[inputs.len() - 1].dot(&last.weight.t()) + &last.bias)
}

/// exp(x) for x ≤ 0 with f32 arithmetic only, so the epilogue loops vectorize (Cephes `expf`
/// polynomial, within 2 ulp of `f32::exp` on (−87, 0]).
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    let x = x.clamp(-87.0, 0.0);
    let n = round_even_small(x * std::f32::consts::LOG2_E);
    let r = x - n * 0.693_359_4 - n * (-2.121_944_4e-4);
    let z = r * r;
    let y = (((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2)
        * r
        + 1.666_666_5e-1)
        * r
        + 0.5)
        * z
        + r
        + 1.0;
    y * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// Dequantize one row segment of a tile: `(acc − offset) · mult + bias`, then the activation.
#[inline(always)]
fn epilogue_row(
    act: Activation,
    acc: &[i32],
    offset: &[i32],
    mult: &[f32],
    bias: &[f32],
    out: &mut [f32],
) {
    let it = out.iter_mut().zip(acc).zip(offset).zip(mult).zip(bias);
    match act {
        Activation::Identity => {
            for ((((o, &a), &z), &m), &b) in it {
                *o = (a - z) as f32 * m + b;
            }
        }
        Activation::Relu => {
            for ((((o, &a), &z), &m), &b) in it {
                *o = ((a - z) as f32 * m + b).max(0.0);
            }
        }
        Activation::Elu => {
            for ((((o, &a), &z), &m), &b) in it {
                let v = (a - z) as f32 * m + b;
                let e = exp_nonpositive(v) - 1.0;
                *o = if v > 0.0 { v } else { e };
            }
        }
    }
}

/// Lanes of the running min/max in [`min_max_lanes`] (elementwise updates vectorize; a scalar
/// reduction would not).
const MM_LANES: usize = 16;

/// Epilogue to fp32 (dynamic layers and the last static layer).
struct FloatSink<'a> {
    out: &'a mut [f32],
    n: usize,
    act: Activation,
    offset: &'a [i32],
    mult: &'a [f32],
    bias: &'a [f32],
}

impl<'a> FloatSink<'a> {
    fn new(
        out: &'a mut [f32],
        n: usize,
        act: Activation,
        offset: &'a [i32],
        mult: &'a [f32],
        bias: &'a [f32],
    ) -> Self {
        Self {
            out,
            n,
            act,
            offset,
            mult,
            bias,
        }
    }
}

impl TileSink for FloatSink<'_> {
    #[inline(always)]
    fn tile(&mut self, row0: usize, rows: usize, col0: usize, cols: usize, acc: &AccTile) {
        let (off, mult, bias) = (
            &self.offset[col0..col0 + cols],
            &self.mult[col0..col0 + cols],
            &self.bias[col0..col0 + cols],
        );
        for r in 0..rows {
            let out = &mut self.out[(row0 + r) * self.n + col0..][..cols];
            let a = &acc[r * ACC_STRIDE..r * ACC_STRIDE + cols];
            epilogue_row(self.act, a, off, mult, bias, out);
        }
    }
}

/// Static epilogue: dequantize, activation, requantize into the next layer's 7-bit input.
struct RequantSink<'a> {
    next: &'a mut [u8],
    next_stride: usize,
    act: Activation,
    offset: &'a [i32],
    mult: &'a [f32],
    bias: &'a [f32],
    inv_scale: f32,
    zero_point: f32,
}

impl TileSink for RequantSink<'_> {
    #[inline(always)]
    fn tile(&mut self, row0: usize, rows: usize, col0: usize, cols: usize, acc: &AccTile) {
        let (off, mult, bias) = (
            &self.offset[col0..col0 + cols],
            &self.mult[col0..col0 + cols],
            &self.bias[col0..col0 + cols],
        );
        let mut tmp = [0.0f32; ACC_STRIDE];
        for r in 0..rows {
            let tmp = &mut tmp[..cols];
            epilogue_row(
                self.act,
                &acc[r * ACC_STRIDE..r * ACC_STRIDE + cols],
                off,
                mult,
                bias,
                tmp,
            );
            let dst = &mut self.next[(row0 + r) * self.next_stride + col0..][..cols];
            for (d, &v) in dst.iter_mut().zip(tmp.iter()) {
                *d = quantize_act(v, self.inv_scale, self.zero_point);
            }
        }
    }
}

/// Min and max of `x` (NaN ignored), lane-wise so that it vectorizes.
#[inline(always)]
fn min_max_lanes(x: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = ([f32::INFINITY; MM_LANES], [f32::NEG_INFINITY; MM_LANES]);
    let mut chunks = x.chunks_exact(MM_LANES);
    for c in &mut chunks {
        for j in 0..MM_LANES {
            lo[j] = if c[j] < lo[j] { c[j] } else { lo[j] };
            hi[j] = if c[j] > hi[j] { c[j] } else { hi[j] };
        }
    }
    for (j, &v) in chunks.remainder().iter().enumerate() {
        lo[j] = if v < lo[j] { v } else { lo[j] };
        hi[j] = if v > hi[j] { v } else { hi[j] };
    }
    (
        lo.iter().fold(f32::INFINITY, |a, &b| a.min(b)),
        hi.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)),
    )
}

/// [`min_max_lanes`] with explicit AVX-512: LLVM compiles the portable loop into masked stores
/// (running values kept in memory) when AVX-512 is enabled. `vminps(v, lo)` returns `lo` unless
/// `v < lo` — exactly the portable `if v < lo { v } else { lo }`, NaN ignored.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn min_max_avx512(x: &[f32]) -> (f32, f32) {
    use std::arch::x86_64::*;
    let (mut lo, mut hi) = (
        _mm512_set1_ps(f32::INFINITY),
        _mm512_set1_ps(f32::NEG_INFINITY),
    );
    let mut chunks = x.chunks_exact(MM_LANES);
    for c in &mut chunks {
        let v = _mm512_loadu_ps(c.as_ptr());
        lo = _mm512_min_ps(v, lo);
        hi = _mm512_max_ps(v, hi);
    }
    let (mut l, mut h) = ([0.0f32; MM_LANES], [0.0f32; MM_LANES]);
    _mm512_storeu_ps(l.as_mut_ptr(), lo);
    _mm512_storeu_ps(h.as_mut_ptr(), hi);
    for (j, &v) in chunks.remainder().iter().enumerate() {
        l[j] = if v < l[j] { v } else { l[j] };
        h[j] = if v > h[j] { v } else { h[j] };
    }
    (
        l.iter().fold(f32::INFINITY, |a, &b| a.min(b)),
        h.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)),
    )
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn min_max_avx2(x: &[f32]) -> (f32, f32) {
    min_max_lanes(x)
}

/// [`min_max_lanes`] compiled for the vector width of `kind`. Min and max are exact and
/// order-free, so any split of `x` into blocks gives the same result.
fn min_max_kind(kind: KernelKind, x: &[f32]) -> (f32, f32) {
    match kind {
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx512Vnni if kind.is_available() => {
            // SAFETY: feature checked just now.
            unsafe { min_max_avx512(x) }
        }
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx2 | KernelKind::AvxVnni if kind.is_available() => {
            // SAFETY: feature checked just now.
            unsafe { min_max_avx2(x) }
        }
        _ => min_max_lanes(x),
    }
}

/// Min and max of `x` (NaN ignored), in parallel for long inputs.
fn min_max(kind: KernelKind, x: &[f32]) -> (f32, f32) {
    let merge = |a: (f32, f32), b: (f32, f32)| (a.0.min(b.0), a.1.max(b.1));
    if x.len() <= 1 << 16 {
        min_max_kind(kind, x)
    } else {
        x.par_chunks(1 << 14)
            .map(|c| min_max_kind(kind, c))
            .reduce(|| (f32::INFINITY, f32::NEG_INFINITY), merge)
    }
}

impl QuantMlp {
    /// Input features.
    pub fn n_inputs(&self) -> usize {
        self.layers[0].weights.k()
    }
    /// Output columns (classes).
    pub fn n_outputs(&self) -> usize {
        self.layers[self.layers.len() - 1].weights.n()
    }
    /// Dynamic or static.
    pub fn scheme(&self) -> QuantScheme {
        self.scheme
    }
    /// Per-tensor or per-channel weights.
    pub fn weight_granularity(&self) -> WeightGranularity {
        self.granularity
    }
    /// The instruction path in use.
    pub fn kernel(&self) -> KernelKind {
        self.kernel
    }
    /// Switch the instruction path (results are bit-identical on every path).
    pub fn with_kernel(mut self, kernel: KernelKind) -> Result<Self, QuantError> {
        check_kernel(Some(kernel))?;
        self.kernel = kernel;
        Ok(self)
    }
    /// Calibrated input parameters of each layer (static scheme only).
    pub fn input_qparams(&self) -> Vec<Option<QParams>> {
        self.layers.iter().map(|l| l.input_qparams).collect()
    }
    /// Dequantized weights `[out, in]` of layer `i` (what the int8 model effectively multiplies by).
    pub fn dequantized_weight(&self, i: usize) -> Option<Array2<f32>> {
        let l = self.layers.get(i)?;
        let (n, k) = (l.weights.n(), l.weights.k());
        let q = l.weights.unpack();
        Some(Array2::from_shape_fn((n, k), |(r, c)| {
            f32::from(q[r * k + c]) * l.weight_scales[r]
        }))
    }

    /// Logits for `x` (rows = flows), allocating the output and scratch.
    pub fn logits(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, QuantError> {
        thread_local! {
            // Reused across calls on this thread: a fresh scratch per batch costs page faults
            // on megabytes of buffers, which halved throughput at batch 8192.
            static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::new());
        }
        let mut out = Array2::zeros((x.nrows(), self.n_outputs()));
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.logits_into(x, &mut scratch, out.view_mut()),
            Err(_) => self.logits_into(x, &mut Scratch::new(), out.view_mut()),
        })?;
        Ok(out)
    }

    /// Softmax of the logits: one column per class of the underlying model.
    pub fn predict_proba(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, QuantError> {
        let mut p = self.logits(x)?;
        for mut row in p.axis_iter_mut(Axis(0)) {
            let m = row.fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            row.mapv_inplace(|v| (v - m).exp());
            let s = row.sum();
            row.mapv_inplace(|v| v / s);
        }
        Ok(p)
    }

    /// Index of the largest logit per row.
    pub fn predict(&self, x: ArrayView2<f32>) -> Result<Array1<usize>, QuantError> {
        let logits = self.logits(x)?;
        Ok(logits
            .axis_iter(Axis(0))
            .map(|row| {
                row.iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |best, (j, &v)| {
                        if v > best.1 {
                            (j, v)
                        } else {
                            best
                        }
                    })
                    .0
            })
            .collect())
    }

    /// Logits for `x` into `out` (`[rows, n_outputs]`, standard layout), reusing `scratch`.
    /// Runs in parallel over blocks of rows on the rayon pool; no allocation once `scratch`
    /// has seen a batch this large.
    pub fn logits_into(
        &self,
        x: ArrayView2<f32>,
        scratch: &mut Scratch,
        mut out: ArrayViewMut2<f32>,
    ) -> Result<(), QuantError> {
        let (m, k) = x.dim();
        if k != self.n_inputs() || out.dim() != (m, self.n_outputs()) {
            return Err(QuantError::Shape(format!(
                "input [{m}, {k}] and output {:?} for a model {} → {}",
                out.dim(),
                self.n_inputs(),
                self.n_outputs()
            )));
        }
        if m == 0 {
            return Ok(());
        }
        let mut input = std::mem::take(&mut scratch.input);
        let xs: &[f32] = match x.as_slice() {
            Some(s) => s,
            None => {
                input.clear();
                input.extend(x.iter());
                &input
            }
        };
        let n_out = self.n_outputs();
        let result = match out.as_slice_mut() {
            Some(o) => {
                self.forward(xs, m, scratch, o);
                Ok(())
            }
            None => Err(QuantError::Shape(
                "output array must be in standard layout".into(),
            )),
        };
        debug_assert_eq!(n_out, out.ncols());
        scratch.input = input;
        result
    }

    fn forward(&self, x: &[f32], m: usize, scratch: &mut Scratch, out: &mut [f32]) {
        match self.scheme {
            QuantScheme::Dynamic => self.forward_dynamic(x, m, scratch, out),
            QuantScheme::Static => self.forward_static(x, m, scratch, out),
        }
    }

    fn forward_dynamic(&self, x: &[f32], m: usize, scratch: &mut Scratch, out: &mut [f32]) {
        let kind = self.kernel;
        let max_kp = self
            .layers
            .iter()
            .map(|l| l.weights.k_pad())
            .max()
            .unwrap_or(0);
        let max_n = self.layers.iter().map(|l| l.weights.n()).max().unwrap_or(0);
        let blocks = m.div_ceil(ROW_BLOCK);
        scratch.act_u8.resize(m * max_kp, 0);
        scratch.f_a.resize(m * max_n, 0.0);
        scratch.f_b.resize(m * max_n, 0.0);
        scratch.mult.resize(max_n, 0.0);
        scratch.offset.resize(max_n, 0);
        scratch.minmax.resize(blocks, (0.0, 0.0));
        let (mut f_src, mut f_dst) = (
            std::mem::take(&mut scratch.f_a),
            std::mem::take(&mut scratch.f_b),
        );
        let (mut lo, mut hi) = min_max(kind, x);
        let last = self.layers.len() - 1;
        for (li, layer) in self.layers.iter().enumerate() {
            let (n, k, kp) = (layer.weights.n(), layer.weights.k(), layer.weights.k_pad());
            let qp = activation_qparams(lo, hi);
            for (j, (mu, off)) in scratch.mult[..n]
                .iter_mut()
                .zip(&mut scratch.offset[..n])
                .enumerate()
            {
                *mu = qp.scale * layer.weight_scales[j];
                *off = qp.zero_point * layer.weights.col_sums()[j];
            }
            let src: &[f32] = if li == 0 { x } else { &f_src[..m * k] };
            let dst: &mut [f32] = if li == last {
                &mut *out
            } else {
                &mut f_dst[..m * n]
            };
            let a = &mut scratch.act_u8[..m * kp];
            let (mult, offset) = (&scratch.mult[..n], &scratch.offset[..n]);
            let job = |((src_c, a_c), (dst_c, mm)): DynBlock| {
                let rows = src_c.len() / k;
                kernels::quantize_rows(kind, src_c, k, a_c, kp, qp);
                let mut sink =
                    FloatSink::new(dst_c, n, layer.activation, offset, mult, &layer.bias);
                kernels::run(kind, a_c, kp, rows, &layer.weights, &mut sink);
                // The block's output is still in cache: its min/max pass is cheap and vectorizes
                // better than tracking inside the tile epilogue.
                if li != last {
                    *mm = min_max_kind(kind, sink.out);
                }
            };
            let mm = &mut scratch.minmax[..blocks];
            if blocks == 1 {
                job(((src, a), (dst, &mut mm[0])));
            } else {
                src.par_chunks(ROW_BLOCK * k)
                    .zip(a.par_chunks_mut(ROW_BLOCK * kp))
                    .zip(dst.par_chunks_mut(ROW_BLOCK * n).zip(mm.par_iter_mut()))
                    .for_each(job);
            }
            (lo, hi) = mm
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &(a, b)| {
                    (l.min(a), h.max(b))
                });
            std::mem::swap(&mut f_src, &mut f_dst);
        }
        scratch.f_a = f_src;
        scratch.f_b = f_dst;
    }

    fn forward_static(&self, x: &[f32], m: usize, scratch: &mut Scratch, out: &mut [f32]) {
        let kind = self.kernel;
        let k0 = self.n_inputs();
        let n_out = self.n_outputs();
        // Per block of rows: layer l's 7-bit input at rows·prefix[l], row stride k_pad(l).
        let total: usize = self.layers.iter().map(|l| l.weights.k_pad()).sum();
        let max_n = self.layers.iter().map(|l| l.weights.n()).max().unwrap_or(0);
        scratch.act_u8.resize(m * total, 0);
        // Offsets and multipliers are fixed by calibration: compute them once per batch (cheap).
        let nl = self.layers.len();
        scratch.mult.resize(nl * max_n, 0.0);
        scratch.offset.resize(nl * max_n, 0);
        for (li, l) in self.layers.iter().enumerate() {
            let qp = l.input_qparams.unwrap_or(QParams {
                scale: 1.0,
                zero_point: 0,
            });
            for j in 0..l.weights.n() {
                scratch.mult[li * max_n + j] = qp.scale * l.weight_scales[j];
                scratch.offset[li * max_n + j] = qp.zero_point * l.weights.col_sums()[j];
            }
        }
        let (mult, offset) = (&scratch.mult[..], &scratch.offset[..]);
        let job = |((x_c, buf), out_c): ((&[f32], &mut [u8]), &mut [f32])| {
            let rows = x_c.len() / k0;
            let first = &self.layers[0];
            let qp0 = first.input_qparams.unwrap_or(QParams {
                scale: 1.0,
                zero_point: 0,
            });
            kernels::quantize_rows(kind, x_c, k0, buf, first.weights.k_pad(), qp0);
            let mut rest = buf;
            for (li, layer) in self.layers.iter().enumerate() {
                let (n, kp) = (layer.weights.n(), layer.weights.k_pad());
                let (cur, next) = std::mem::take(&mut rest).split_at_mut(rows * kp);
                let (mu, off) = (
                    &mult[li * max_n..li * max_n + n],
                    &offset[li * max_n..li * max_n + n],
                );
                if li + 1 == nl {
                    let mut sink =
                        FloatSink::new(&mut *out_c, n, layer.activation, off, mu, &layer.bias);
                    kernels::run(kind, cur, kp, rows, &layer.weights, &mut sink);
                } else {
                    let nq = self.layers[li + 1].input_qparams.unwrap_or(QParams {
                        scale: 1.0,
                        zero_point: 0,
                    });
                    let mut sink = RequantSink {
                        next: &mut *next,
                        next_stride: self.layers[li + 1].weights.k_pad(),
                        act: layer.activation,
                        offset: off,
                        mult: mu,
                        bias: &layer.bias,
                        inv_scale: 1.0 / nq.scale,
                        zero_point: nq.zero_point as f32,
                    };
                    kernels::run(kind, cur, kp, rows, &layer.weights, &mut sink);
                }
                rest = next;
            }
        };
        let buf = &mut scratch.act_u8[..m * total];
        if m <= STATIC_ROW_BLOCK {
            job(((x, buf), out));
        } else {
            x.par_chunks(STATIC_ROW_BLOCK * k0)
                .zip(buf.par_chunks_mut(STATIC_ROW_BLOCK * total))
                .zip(out.par_chunks_mut(STATIC_ROW_BLOCK * n_out))
                .for_each(job);
        }
    }

    /// Bytes of the quantized parameters: int8 weights, fp32 bias, fp32 weight scales
    /// (one per layer or per channel), and for static models each layer's input scale and zero point.
    pub fn size_bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|l| {
                let (n, k) = (l.weights.n(), l.weights.k());
                let scales = match self.granularity {
                    WeightGranularity::PerTensor => 1,
                    WeightGranularity::PerChannel => n,
                };
                n * k + 4 * n + 4 * scales + if l.input_qparams.is_some() { 8 } else { 0 }
            })
            .sum()
    }

    /// Bytes of the same model in fp32 (weights + bias).
    pub fn fp32_size_bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|l| 4 * (l.weights.n() * l.weights.k() + l.weights.n()))
            .sum()
    }

    /// Size of the parameters and the reduction against fp32.
    pub fn size_report(&self) -> SizeReport {
        let (int8, fp32) = (self.size_bytes(), self.fp32_size_bytes());
        SizeReport {
            fp32_bytes: fp32,
            int8_bytes: int8,
            reduction: fp32 as f64 / int8 as f64,
        }
    }
}

/// Parameter bytes of a quantized model and its fp32 original.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SizeReport {
    /// fp32 weights and biases.
    pub fp32_bytes: usize,
    /// int8 weights, fp32 biases, scales and zero points.
    pub int8_bytes: usize,
    /// `fp32_bytes / int8_bytes`.
    pub reduction: f64,
}
