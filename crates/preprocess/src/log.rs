//! Signed log1p: `sign(x) * ln(1 + |x|)`.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::rows::for_each_row;

/// Stateless `sign(x) * ln(1 + |x|)`, applied element-wise in f32.
///
/// Monotone and odd, so it keeps the order and sign of negative garbage values
/// (`Fwd Header Length` down to -2e11) while turning counts, byte totals and rates that span
/// nine decades into numbers below ~26. `0 → 0`, NaN → NaN.
///
/// ```
/// use ndarray::array;
/// use preprocess::SignedLog1p;
/// let mut x = array![[0.0f32, -1.0, (std::f32::consts::E - 1.0)]];
/// SignedLog1p.transform_inplace(x.view_mut());
/// assert!((x[[0, 1]] + std::f32::consts::LN_2).abs() < 1e-7);
/// assert!((x[[0, 2]] - 1.0).abs() < 1e-6);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SignedLog1p;

/// `ln(1 + a)` for `a >= 0` (or NaN/inf), branch-free so that loops over it vectorise.
///
/// musl's `logf` reduction and polynomial (max error below 1 ulp) applied to `u = 1 + a`, plus
/// musl `log1pf`'s correction `c / u` for the rounding of `u`; within 2 ulp of the correctly
/// rounded result (tested against f64 `ln_1p`). Only IEEE add/mul/div, no FMA contraction, so
/// the scalar and the AVX2 loops give bit-identical results.
#[inline(always)]
fn log1p_nonneg(a: f32) -> f32 {
    const LN2_HI: f32 = 6.931_381e-1; // 0x3f317180
    const LN2_LO: f32 = 9.058_001e-6; // 0x3717f7d1
    const LG1: f32 = 0.666_666_6; // 0xaaaaaa.0p-24
    const LG2: f32 = 0.400_009_72; // 0xccce13.0p-25
    const LG3: f32 = 0.284_987_87; // 0x91e9ee.0p-25
    const LG4: f32 = 0.242_790_79; // 0xf89e26.0p-26
    let u = 1.0 + a;
    // u = 2^k * m with m in [sqrt(2)/2, sqrt(2))
    let ix = u.to_bits().wrapping_add(0x3f80_0000 - 0x3f35_04f3);
    let k = (ix >> 23) as i32 - 0x7f;
    let f = f32::from_bits((ix & 0x007f_ffff) + 0x3f35_04f3) - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let r = z * (LG1 + w * LG3) + w * (LG2 + w * LG4);
    let hfsq = 0.5 * f * f;
    let dk = k as f32;
    let log_u = s * (hfsq + r) + dk * LN2_LO - hfsq + f + dk * LN2_HI;
    // rounding error of u = 1 + a, exact by Sterbenz in both branches
    let c = if u >= 2.0 {
        1.0 - (u - a)
    } else {
        a - (u - 1.0)
    };
    let out = log_u + c / u;
    if a <= f32::MAX {
        out
    } else {
        a // +inf and NaN pass through
    }
}

#[inline(always)]
fn signed_log1p_slice_generic(xs: &mut [f32]) {
    for v in xs.iter_mut() {
        *v = log1p_nonneg(v.abs()).copysign(*v);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn signed_log1p_slice_avx2(xs: &mut [f32]) {
    signed_log1p_slice_generic(xs);
}

/// Applies the transform to a slice, with AVX2 when the CPU has it (same results either way).
fn signed_log1p_slice(xs: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { signed_log1p_slice_avx2(xs) };
            return;
        }
    }
    signed_log1p_slice_generic(xs);
}

impl SignedLog1p {
    /// The transform of one value.
    #[inline]
    pub fn apply(v: f32) -> f32 {
        log1p_nonneg(v.abs()).copysign(v)
    }

    /// The inverse `sign(y) * (exp(|y|) - 1)`, e.g. to show explanations in raw units.
    #[inline]
    pub fn inverse(y: f32) -> f32 {
        y.abs().exp_m1().copysign(y)
    }

    /// Transforms `x` in place, in parallel over row blocks (any number of columns).
    pub fn transform_inplace(&self, x: ArrayViewMut2<'_, f32>) {
        for_each_row(x, signed_log1p_slice);
    }

    /// Returns a transformed copy of `x`.
    pub fn transform(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let mut out = x.to_owned();
        self.transform_inplace(out.view_mut());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn log1p_within_two_ulp_of_correctly_rounded() {
        let mut worst = 0;
        let mut values: Vec<f32> = vec![0.0, f32::MIN_POSITIVE, 1e-45, 1.0, 2.0, 3.0, f32::MAX];
        // every power-of-two octave, 4096 points each
        let mut v = 1e-30f32;
        while v < 3e38 {
            for i in 0..4096 {
                values.push(v * (1.0 + i as f32 / 4096.0));
            }
            v *= 2.0;
        }
        for &a in &values {
            let want = (a as f64).ln_1p() as f32;
            let got = log1p_nonneg(a);
            worst = worst.max(ulps(got, want));
            assert!(
                ulps(got, want) <= 2,
                "log1p({a:e}) = {got:e}, want {want:e}"
            );
        }
        assert!(worst <= 2, "worst {worst} ulp");
        assert_eq!(log1p_nonneg(f32::INFINITY), f32::INFINITY);
        assert!(log1p_nonneg(f32::NAN).is_nan());
    }

    #[test]
    fn slice_path_equals_scalar_path() {
        let mut xs: Vec<f32> = (0..1000).map(|i| ((i as f32) - 500.0) * 37.3e3).collect();
        xs.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0]);
        let want: Vec<f32> = xs.iter().map(|&v| SignedLog1p::apply(v)).collect();
        signed_log1p_slice(&mut xs);
        for (g, w) in xs.iter().zip(&want) {
            assert!(g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()));
        }
        assert_eq!(SignedLog1p::apply(f32::NEG_INFINITY), f32::NEG_INFINITY);
    }
}
