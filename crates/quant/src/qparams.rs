//! Quantization parameters: PyTorch/fbgemm's rules for choosing scales and zero points.

use serde::{Deserialize, Serialize};

/// Smallest activation scale fbgemm allows (`SMALL_SCALE_THRESHOLD` in PyTorch's `QuantUtils.h`).
pub(crate) const SMALL_SCALE_THRESHOLD: f64 = 6.1e-5;
/// Activation range: unsigned 8-bit reduced to 7 bits (`reduce_range=True`, fbgemm's default).
pub const ACT_QMIN: i32 = 0;
/// See [`ACT_QMIN`].
pub const ACT_QMAX: i32 = 127;

/// Affine quantization `q = clamp(round_half_even(x / scale) + zero_point)`; `x ≈ (q − zero_point) · scale`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QParams {
    /// Step between adjacent quantized values.
    pub scale: f32,
    /// Quantized value that represents real 0 exactly.
    pub zero_point: i32,
}

/// PyTorch's `quant_utils::ChooseQuantizationParams` (as used by `quantized::linear_dynamic`
/// with `preserve_sparsity = false`, `force_scale_power_of_two = false`), for `qmin..=qmax`
/// already reduced by the caller.
///
/// The range is widened to contain 0, the scale is computed in f64 and rounded to f32, tiny
/// scales are raised to 6.1e-5 and the zero point is taken from whichever end loses less precision.
pub fn choose_qparams(min: f32, max: f32, qmin: i32, qmax: i32) -> QParams {
    let (mut min, mut max) = if min <= max && min.is_finite() && max.is_finite() {
        (f64::from(min.min(0.0)), f64::from(max.max(0.0)))
    } else {
        (0.0, 0.0)
    };
    let (qmin_f, qmax_f) = (f64::from(qmin), f64::from(qmax));
    let mut scale = (max - min) / (qmax_f - qmin_f);
    if scale as f32 == 0.0 || (1.0 / (scale as f32)).is_infinite() {
        scale = 0.1;
    }
    if scale < SMALL_SCALE_THRESHOLD {
        let org = scale;
        scale = SMALL_SCALE_THRESHOLD;
        if min == 0.0 {
            max = SMALL_SCALE_THRESHOLD * (qmax_f - qmin_f);
        } else if max == 0.0 {
            min = -SMALL_SCALE_THRESHOLD * (qmax_f - qmin_f);
        } else {
            let amplifier = SMALL_SCALE_THRESHOLD / org;
            min *= amplifier;
            max *= amplifier;
        }
    }
    let zp_from_min = qmin_f - min / scale;
    let zp_from_max = qmax_f - max / scale;
    let zp_from_min_err = qmin_f.abs() - (min / scale).abs();
    let zp_from_max_err = qmax_f.abs() - (max / scale).abs();
    let initial = if zp_from_min_err < zp_from_max_err {
        zp_from_min
    } else {
        zp_from_max
    };
    let zero_point = if initial < qmin_f {
        qmin
    } else if initial > qmax_f {
        qmax
    } else {
        initial.round_ties_even() as i32
    };
    QParams {
        scale: scale as f32,
        zero_point,
    }
}

/// Activation parameters for the range `[min, max]` on the 7-bit unsigned grid.
pub fn activation_qparams(min: f32, max: f32) -> QParams {
    choose_qparams(min, max, ACT_QMIN, ACT_QMAX)
}

/// Round half to even with f32 arithmetic only (vectorizes everywhere). Valid for |x| < 2²²,
/// which callers guarantee by clamping first.
#[inline(always)]
pub(crate) fn round_even_small(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2²³
    (x + MAGIC) - MAGIC
}

/// Quantize one value onto the 7-bit activation grid: `clamp(nearbyint(x · inv_scale) + zp, 0, 127)`
/// (fbgemm multiplies by the reciprocal scale and rounds before adding the zero point).
/// NaN maps to 0. Only float adds/compares and integer ops, so loops of it vectorize.
#[inline(always)]
pub(crate) fn quantize_act(x: f32, inv_scale: f32, zero_point: f32) -> u8 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2²³: adding it rounds to an integer in the low mantissa bits
                                     // Clamping before rounding equals rounding before clamping for integer bounds.
    let t = (x * inv_scale)
        .max(ACT_QMIN as f32 - zero_point)
        .min(ACT_QMAX as f32 - zero_point);
    let rounded = ((t + MAGIC).to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    (rounded + zero_point as i32) as u8
}

/// Symmetric int8 weight scale of PyTorch's `MinMaxObserver(qint8, per_tensor_symmetric)` /
/// `PerChannelMinMaxObserver(qint8, per_channel_symmetric)`: `max(|w|max / 127.5, f32::EPSILON)`.
pub fn symmetric_weight_scale(values: &[f32]) -> f32 {
    let amax = values.iter().fold(0.0f32, |m, &v| m.max(v.abs()));
    (amax / 127.5).max(f32::EPSILON)
}

/// `clamp(nearbyint(w · (1 / scale)), −128, 127)` as fbgemm's `Quantize<int8>` computes it.
pub fn quantize_weight(w: f32, scale: f32) -> i8 {
    let inv = 1.0 / scale;
    (w * inv).round_ties_even().clamp(-128.0, 127.0) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_exact_and_range_covered() {
        let q = activation_qparams(-1.0, 3.0);
        assert!((q.scale - 4.0 / 127.0).abs() < 1e-7);
        assert_eq!(q.zero_point, 32); // 1 / (4/127) = 31.75 → 32
        assert_eq!(quantize_act(0.0, 1.0 / q.scale, q.zero_point as f32), 32);
        assert_eq!(quantize_act(3.0, 1.0 / q.scale, q.zero_point as f32), 127);
        assert_eq!(quantize_act(-1.0, 1.0 / q.scale, q.zero_point as f32), 0);
        assert_eq!(quantize_act(100.0, 1.0 / q.scale, q.zero_point as f32), 127);
    }

    #[test]
    fn degenerate_ranges() {
        let q = activation_qparams(0.0, 0.0);
        assert_eq!((q.scale, q.zero_point), (0.1, 0));
        let q = activation_qparams(0.0, 1e-6);
        assert!((f64::from(q.scale) - 6.1e-5).abs() < 1e-10);
        let q = activation_qparams(f32::NAN, 1.0);
        assert_eq!(q.zero_point, 0);
    }

    #[test]
    fn rounding_is_half_even() {
        assert_eq!(round_even_small(2.5), 2.0);
        assert_eq!(round_even_small(3.5), 4.0);
        assert_eq!(round_even_small(-2.5), -2.0);
        assert_eq!(quantize_weight(127.5, 1.0), 127);
        assert_eq!(quantize_weight(-128.5, 1.0), -128);
        assert_eq!(quantize_weight(0.5, 1.0), 0);
    }
}
