//! int8 GEMM kernels: `C[m, n] = Σ_k A[m, k] · B[n, k]` with `A` unsigned 8-bit activations,
//! `B` signed 8-bit weights and exact 32-bit accumulation.
//!
//! Three instruction paths compute the same integers:
//! - AVX-512 VNNI (`vpdpbusd` on 512-bit registers, 16 output columns per register),
//! - AVX-VNNI (`vpdpbusd` on 256-bit registers),
//! - AVX2 (`vpmaddubsw` + `vpmaddwd`),
//! - portable scalar code.
//!
//! `vpmaddubsw` adds two `u8 × i8` products into a *saturating* i16. Activations are therefore
//! restricted to 7 bits (`0..=127`), the same trick fbgemm's `reduce_range` plays: the largest pair
//! sum is `2 · 127 · 128 = 32 512 < 32 767`, so nothing saturates and every path is exact.
//! The quantizers in this crate only ever produce activations in `0..=127`; [`gemm_u8i8`] checks it.
//!
//! Weights are packed once (at quantization time) into panels of 16 output columns; inside a panel
//! each group of 4 consecutive `k` of the 16 columns is one 64-byte block — exactly one `vpdpbusd`
//! operand (two 32-byte halves for the 256-bit paths).

use serde::{Deserialize, Serialize};

use crate::qparams::{quantize_act, QParams};
use crate::QuantError;

/// Output columns per packed panel (one 512-bit register of i32 lanes).
pub const PANEL_COLS: usize = 16;
/// Reduction elements per group (one i32 lane holds 4 bytes).
pub const K_GROUP: usize = 4;
/// Largest activation value the kernels accept (7-bit activations; see the module docs).
pub const ACT_MAX: u8 = 127;

/// Rows of one register tile at most (AVX-512: 6 rows × 4 panels = 24 of the 32 zmm registers
/// hold accumulators, 4 hold weights, 1 the broadcast activations).
pub(crate) const TILE_ROWS: usize = 6;
/// Rows of one register tile on the other paths (the 256-bit paths have 16 registers).
const TILE_ROWS_NARROW: usize = 4;
/// Panels of one register tile at most.
pub(crate) const TILE_PANELS: usize = 4;
/// Row stride of [`AccTile`].
pub(crate) const ACC_STRIDE: usize = TILE_PANELS * PANEL_COLS;
/// The i32 results of one register tile, row-major with stride [`ACC_STRIDE`].
pub(crate) type AccTile = [i32; TILE_ROWS * ACC_STRIDE];

/// Which instruction path the int8 GEMM uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KernelKind {
    /// Portable Rust; the reference every other path must equal bit for bit.
    Scalar,
    /// `_mm256_maddubs_epi16` + `_mm256_madd_epi16`.
    Avx2,
    /// `_mm256_dpbusd_avx_epi32` (AVX-VNNI, VEX-encoded).
    AvxVnni,
    /// `_mm512_dpbusd_epi32` (AVX-512 VNNI).
    Avx512Vnni,
}

impl KernelKind {
    /// All kinds, fastest first.
    pub const ALL: [KernelKind; 4] = [
        KernelKind::Avx512Vnni,
        KernelKind::AvxVnni,
        KernelKind::Avx2,
        KernelKind::Scalar,
    ];

    /// Whether this CPU can run the path (checked at run time with `is_x86_feature_detected!`).
    pub fn is_available(self) -> bool {
        match self {
            KernelKind::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            KernelKind::Avx2 => std::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            KernelKind::AvxVnni => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("avxvnni")
            }
            #[cfg(target_arch = "x86_64")]
            KernelKind::Avx512Vnni => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The fastest available path on this CPU.
    pub fn detect() -> Self {
        Self::ALL
            .into_iter()
            .find(|k| k.is_available())
            .unwrap_or(KernelKind::Scalar)
    }

    /// All paths this CPU can run.
    pub fn available() -> Vec<KernelKind> {
        Self::ALL.into_iter().filter(|k| k.is_available()).collect()
    }
}

/// int8 weights `[n, k]` packed for the kernels, with per-column sums for zero-point correction.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedWeights {
    n: usize,
    k: usize,
    k_pad: usize,
    n_pad: usize,
    /// `[n_pad / 16][k_pad / 4][16 columns][4 k]`, zero padded.
    data: Vec<i8>,
    /// `Σ_k B[n, k]` for each output column (the `A` zero point times this is subtracted).
    col_sums: Vec<i32>,
}

impl PackedWeights {
    /// Pack row-major `[n, k]` int8 weights (PyTorch `[out, in]` layout).
    pub fn pack(weights: &[i8], n: usize, k: usize) -> Result<Self, QuantError> {
        if n == 0 || k == 0 || weights.len() != n * k {
            return Err(QuantError::Shape(format!(
                "weights hold {} values, expected n·k = {n}·{k} with n, k > 0",
                weights.len()
            )));
        }
        let k_pad = k.div_ceil(K_GROUP) * K_GROUP;
        let n_pad = n.div_ceil(PANEL_COLS) * PANEL_COLS;
        let groups = k_pad / K_GROUP;
        let mut data = vec![0i8; n_pad * k_pad];
        for col in 0..n {
            let (panel, c) = (col / PANEL_COLS, col % PANEL_COLS);
            for kk in 0..k {
                let (g, j) = (kk / K_GROUP, kk % K_GROUP);
                let at = ((panel * groups + g) * PANEL_COLS + c) * K_GROUP + j;
                data[at] = weights[col * k + kk];
            }
        }
        let col_sums = weights
            .chunks_exact(k)
            .map(|row| row.iter().map(|&w| i32::from(w)).sum())
            .collect();
        Ok(Self {
            n,
            k,
            k_pad,
            n_pad,
            data,
            col_sums,
        })
    }

    /// Recover the row-major `[n, k]` weights.
    pub fn unpack(&self) -> Vec<i8> {
        let groups = self.k_pad / K_GROUP;
        let mut out = vec![0i8; self.n * self.k];
        for col in 0..self.n {
            let (panel, c) = (col / PANEL_COLS, col % PANEL_COLS);
            for kk in 0..self.k {
                let (g, j) = (kk / K_GROUP, kk % K_GROUP);
                out[col * self.k + kk] =
                    self.data[((panel * groups + g) * PANEL_COLS + c) * K_GROUP + j];
            }
        }
        out
    }

    /// Output columns.
    pub fn n(&self) -> usize {
        self.n
    }
    /// Reduction length (input features).
    pub fn k(&self) -> usize {
        self.k
    }
    /// `k` rounded up to a multiple of 4: the row stride the kernels want for `A`.
    pub fn k_pad(&self) -> usize {
        self.k_pad
    }
    /// `Σ_k B[n, k]` per output column.
    pub fn col_sums(&self) -> &[i32] {
        &self.col_sums
    }
}

/// Receives finished register tiles (the epilogue: dequantize, bias, activation, requantize).
pub(crate) trait TileSink {
    /// `acc[r * ACC_STRIDE + c]` is `C[row0 + r, col0 + c]` for `r < rows`, `c < cols`.
    fn tile(&mut self, row0: usize, rows: usize, col0: usize, cols: usize, acc: &AccTile);
}

const KIND_SCALAR: u8 = 0;
const KIND_AVX2: u8 = 1;
const KIND_AVXVNNI: u8 = 2;
const KIND_AVX512VNNI: u8 = 3;

/// Run the GEMM of `rows` rows of `a` (row stride `a_stride ≥ k_pad`, values ≤ 127) against `w`,
/// handing each tile to `sink` with rows numbered from 0.
///
/// `kind` must be available; callers check [`KernelKind::is_available`] when they pick it.
pub(crate) fn run<S: TileSink>(
    kind: KernelKind,
    a: &[u8],
    a_stride: usize,
    rows: usize,
    w: &PackedWeights,
    sink: &mut S,
) {
    assert!(a_stride >= w.k_pad && (rows == 0 || a.len() >= (rows - 1) * a_stride + w.k_pad));
    match kind {
        KernelKind::Scalar => {
            // SAFETY: bounds asserted above; the scalar tile has no feature requirements.
            unsafe { drive::<KIND_SCALAR, S>(a, a_stride, rows, w, sink) }
        }
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx2 if kind.is_available() => {
            // SAFETY: bounds asserted above, feature checked just now.
            unsafe { drive_avx2(a, a_stride, rows, w, sink) }
        }
        #[cfg(target_arch = "x86_64")]
        KernelKind::AvxVnni if kind.is_available() => {
            // SAFETY: as above.
            unsafe { drive_avxvnni(a, a_stride, rows, w, sink) }
        }
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx512Vnni if kind.is_available() => {
            // SAFETY: as above.
            unsafe { drive_avx512vnni(a, a_stride, rows, w, sink) }
        }
        _ => unsafe { drive::<KIND_SCALAR, S>(a, a_stride, rows, w, sink) },
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn drive_avx2<S: TileSink>(
    a: &[u8],
    a_stride: usize,
    rows: usize,
    w: &PackedWeights,
    sink: &mut S,
) {
    drive::<KIND_AVX2, S>(a, a_stride, rows, w, sink)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn drive_avxvnni<S: TileSink>(
    a: &[u8],
    a_stride: usize,
    rows: usize,
    w: &PackedWeights,
    sink: &mut S,
) {
    drive::<KIND_AVXVNNI, S>(a, a_stride, rows, w, sink)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn drive_avx512vnni<S: TileSink>(
    a: &[u8],
    a_stride: usize,
    rows: usize,
    w: &PackedWeights,
    sink: &mut S,
) {
    drive::<KIND_AVX512VNNI, S>(a, a_stride, rows, w, sink)
}

/// Loop over register tiles: panels outer (keeps one weight tile hot), rows inner.
/// `inline(always)` so that it and the sink's epilogue are compiled with the caller's features.
#[inline(always)]
unsafe fn drive<const KIND: u8, S: TileSink>(
    a: &[u8],
    a_stride: usize,
    rows: usize,
    w: &PackedWeights,
    sink: &mut S,
) {
    let groups = w.k_pad / K_GROUP;
    let panels = w.n_pad / PANEL_COLS;
    let panel_stride = w.k_pad * PANEL_COLS;
    // 256-bit paths have 16 registers: one panel (2 registers) × 4 rows of accumulators.
    let max_panels = if KIND == KIND_AVX512VNNI || KIND == KIND_SCALAR {
        TILE_PANELS
    } else {
        1
    };
    let max_rows = if KIND == KIND_AVX512VNNI {
        TILE_ROWS
    } else {
        TILE_ROWS_NARROW
    };
    let mut acc: AccTile = [0; TILE_ROWS * ACC_STRIDE];
    let mut p0 = 0;
    while p0 < panels {
        let nv = (panels - p0).min(max_panels);
        let b = w.data.as_ptr().add(p0 * panel_stride);
        let col0 = p0 * PANEL_COLS;
        let cols = (w.n - col0).min(nv * PANEL_COLS);
        let mut r0 = 0;
        while r0 < rows {
            let mr = (rows - r0).min(max_rows);
            let ap = a.as_ptr().add(r0 * a_stride);
            tile::<KIND>(mr, nv, ap, a_stride, b, panel_stride, groups, &mut acc);
            sink.tile(r0, mr, col0, cols, &acc);
            r0 += mr;
        }
        p0 += nv;
    }
}

macro_rules! dispatch_tile {
    ($f:ident, $mr:expr, $nv:expr, $($arg:expr),*) => {
        match ($mr, $nv) {
            (1, 1) => $f::<1, 1>($($arg),*),
            (2, 1) => $f::<2, 1>($($arg),*),
            (3, 1) => $f::<3, 1>($($arg),*),
            (4, 1) => $f::<4, 1>($($arg),*),
            (5, 1) => $f::<5, 1>($($arg),*),
            (6, 1) => $f::<6, 1>($($arg),*),
            (1, 2) => $f::<1, 2>($($arg),*),
            (2, 2) => $f::<2, 2>($($arg),*),
            (3, 2) => $f::<3, 2>($($arg),*),
            (4, 2) => $f::<4, 2>($($arg),*),
            (5, 2) => $f::<5, 2>($($arg),*),
            (6, 2) => $f::<6, 2>($($arg),*),
            (1, 3) => $f::<1, 3>($($arg),*),
            (2, 3) => $f::<2, 3>($($arg),*),
            (3, 3) => $f::<3, 3>($($arg),*),
            (4, 3) => $f::<4, 3>($($arg),*),
            (5, 3) => $f::<5, 3>($($arg),*),
            (6, 3) => $f::<6, 3>($($arg),*),
            (1, 4) => $f::<1, 4>($($arg),*),
            (2, 4) => $f::<2, 4>($($arg),*),
            (3, 4) => $f::<3, 4>($($arg),*),
            (4, 4) => $f::<4, 4>($($arg),*),
            (5, 4) => $f::<5, 4>($($arg),*),
            _ => $f::<6, 4>($($arg),*),
        }
    };
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const KIND: u8>(
    mr: usize,
    nv: usize,
    a: *const u8,
    a_stride: usize,
    b: *const i8,
    panel_stride: usize,
    groups: usize,
    acc: &mut AccTile,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if KIND == KIND_AVX512VNNI {
            dispatch_tile!(
                tile_avx512vnni,
                mr,
                nv,
                a,
                a_stride,
                b,
                panel_stride,
                groups,
                acc
            );
            return;
        }
        if KIND == KIND_AVXVNNI {
            match mr {
                1 => tile_avxvnni::<1>(a, a_stride, b, groups, acc),
                2 => tile_avxvnni::<2>(a, a_stride, b, groups, acc),
                3 => tile_avxvnni::<3>(a, a_stride, b, groups, acc),
                _ => tile_avxvnni::<4>(a, a_stride, b, groups, acc),
            }
            return;
        }
        if KIND == KIND_AVX2 {
            match mr {
                1 => tile_avx2::<1>(a, a_stride, b, groups, acc),
                2 => tile_avx2::<2>(a, a_stride, b, groups, acc),
                3 => tile_avx2::<3>(a, a_stride, b, groups, acc),
                _ => tile_avx2::<4>(a, a_stride, b, groups, acc),
            }
            return;
        }
    }
    dispatch_tile!(
        tile_scalar,
        mr,
        nv,
        a,
        a_stride,
        b,
        panel_stride,
        groups,
        acc
    );
}

/// The reference: plain integer multiply-adds over the packed layout.
#[inline(always)]
unsafe fn tile_scalar<const MR: usize, const NV: usize>(
    a: *const u8,
    a_stride: usize,
    b: *const i8,
    panel_stride: usize,
    groups: usize,
    acc: &mut AccTile,
) {
    for r in 0..MR {
        let arow = std::slice::from_raw_parts(a.add(r * a_stride), groups * K_GROUP);
        for v in 0..NV {
            let panel =
                std::slice::from_raw_parts(b.add(v * panel_stride), groups * K_GROUP * PANEL_COLS);
            let mut sums = [0i32; PANEL_COLS];
            for g in 0..groups {
                let ag = &arow[g * K_GROUP..(g + 1) * K_GROUP];
                let block = &panel[g * K_GROUP * PANEL_COLS..(g + 1) * K_GROUP * PANEL_COLS];
                for (c, sum) in sums.iter_mut().enumerate() {
                    let bc = &block[c * K_GROUP..(c + 1) * K_GROUP];
                    for j in 0..K_GROUP {
                        *sum = sum.wrapping_add(i32::from(ag[j]) * i32::from(bc[j]));
                    }
                }
            }
            acc[r * ACC_STRIDE + v * PANEL_COLS..r * ACC_STRIDE + (v + 1) * PANEL_COLS]
                .copy_from_slice(&sums);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_avx512vnni<const MR: usize, const NV: usize>(
    a: *const u8,
    a_stride: usize,
    b: *const i8,
    panel_stride: usize,
    groups: usize,
    acc: &mut AccTile,
) {
    use std::arch::x86_64::*;
    let mut c = [[_mm512_setzero_si512(); NV]; MR];
    for g in 0..groups {
        let mut bv = [_mm512_setzero_si512(); NV];
        for (v, bvv) in bv.iter_mut().enumerate() {
            *bvv = _mm512_loadu_si512(b.add(v * panel_stride + g * 64) as *const _);
        }
        for (r, cr) in c.iter_mut().enumerate() {
            let av = _mm512_set1_epi32(
                (a.add(r * a_stride + g * K_GROUP) as *const i32).read_unaligned(),
            );
            for (crv, bvv) in cr.iter_mut().zip(bv.iter()) {
                *crv = _mm512_dpbusd_epi32(*crv, av, *bvv);
            }
        }
    }
    for (r, cr) in c.iter().enumerate() {
        for (v, crv) in cr.iter().enumerate() {
            _mm512_storeu_si512(
                acc.as_mut_ptr().add(r * ACC_STRIDE + v * PANEL_COLS) as *mut _,
                *crv,
            );
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn tile_avxvnni<const MR: usize>(
    a: *const u8,
    a_stride: usize,
    b: *const i8,
    groups: usize,
    acc: &mut AccTile,
) {
    use std::arch::x86_64::*;
    let mut lo = [_mm256_setzero_si256(); MR];
    let mut hi = [_mm256_setzero_si256(); MR];
    for g in 0..groups {
        let b0 = _mm256_loadu_si256(b.add(g * 64) as *const __m256i);
        let b1 = _mm256_loadu_si256(b.add(g * 64 + 32) as *const __m256i);
        for r in 0..MR {
            let av = _mm256_set1_epi32(
                (a.add(r * a_stride + g * K_GROUP) as *const i32).read_unaligned(),
            );
            lo[r] = _mm256_dpbusd_avx_epi32(lo[r], av, b0);
            hi[r] = _mm256_dpbusd_avx_epi32(hi[r], av, b1);
        }
    }
    for r in 0..MR {
        _mm256_storeu_si256(acc.as_mut_ptr().add(r * ACC_STRIDE) as *mut __m256i, lo[r]);
        _mm256_storeu_si256(
            acc.as_mut_ptr().add(r * ACC_STRIDE + 8) as *mut __m256i,
            hi[r],
        );
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn tile_avx2<const MR: usize>(
    a: *const u8,
    a_stride: usize,
    b: *const i8,
    groups: usize,
    acc: &mut AccTile,
) {
    use std::arch::x86_64::*;
    let ones = _mm256_set1_epi16(1);
    let mut lo = [_mm256_setzero_si256(); MR];
    let mut hi = [_mm256_setzero_si256(); MR];
    for g in 0..groups {
        let b0 = _mm256_loadu_si256(b.add(g * 64) as *const __m256i);
        let b1 = _mm256_loadu_si256(b.add(g * 64 + 32) as *const __m256i);
        for r in 0..MR {
            let av = _mm256_set1_epi32(
                (a.add(r * a_stride + g * K_GROUP) as *const i32).read_unaligned(),
            );
            // u8 (≤ 127) × i8 pairs: |sum| ≤ 32 512, so the i16 saturation never triggers.
            let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(av, b0), ones);
            let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(av, b1), ones);
            lo[r] = _mm256_add_epi32(lo[r], p0);
            hi[r] = _mm256_add_epi32(hi[r], p1);
        }
    }
    for r in 0..MR {
        _mm256_storeu_si256(acc.as_mut_ptr().add(r * ACC_STRIDE) as *mut __m256i, lo[r]);
        _mm256_storeu_si256(
            acc.as_mut_ptr().add(r * ACC_STRIDE + 8) as *mut __m256i,
            hi[r],
        );
    }
}

/// Collects tiles into a dense `[m, n]` i32 matrix (used by [`gemm_u8i8`]).
struct DenseSink<'a> {
    out: &'a mut [i32],
    n: usize,
}

impl TileSink for DenseSink<'_> {
    #[inline(always)]
    fn tile(&mut self, row0: usize, rows: usize, col0: usize, cols: usize, acc: &AccTile) {
        for r in 0..rows {
            let dst = &mut self.out[(row0 + r) * self.n + col0..][..cols];
            dst.copy_from_slice(&acc[r * ACC_STRIDE..r * ACC_STRIDE + cols]);
        }
    }
}

/// `C = A · Bᵀ` in exact i32 for row-major `a: [m, k]` (values ≤ 127) and packed `w: [n, k]`,
/// on the chosen instruction path. Returns row-major `[m, n]`.
///
/// ```
/// use quant::kernels::{gemm_u8i8, KernelKind, PackedWeights};
/// let w = PackedWeights::pack(&[1, -2, 3, 4, 5, -6], 2, 3).unwrap();
/// let c = gemm_u8i8(KernelKind::detect(), &[1, 2, 3], 1, 3, &w).unwrap();
/// assert_eq!(c, vec![1 - 4 + 9, 4 + 10 - 18]);
/// ```
pub fn gemm_u8i8(
    kind: KernelKind,
    a: &[u8],
    m: usize,
    k: usize,
    w: &PackedWeights,
) -> Result<Vec<i32>, QuantError> {
    if k != w.k || a.len() != m * k {
        return Err(QuantError::Shape(format!(
            "A holds {} values for m = {m}, k = {k}; weights have k = {}",
            a.len(),
            w.k
        )));
    }
    if let Some(&bad) = a.iter().find(|&&v| v > ACT_MAX) {
        return Err(QuantError::Shape(format!(
            "activation {bad} exceeds the 7-bit limit {ACT_MAX}"
        )));
    }
    if !kind.is_available() {
        return Err(QuantError::KernelUnavailable(kind));
    }
    let mut padded = vec![0u8; m * w.k_pad];
    for (dst, src) in padded.chunks_exact_mut(w.k_pad).zip(a.chunks_exact(k)) {
        dst[..k].copy_from_slice(src);
    }
    let mut out = vec![0i32; m * w.n];
    let mut sink = DenseSink {
        out: &mut out,
        n: w.n,
    };
    run(kind, &padded, w.k_pad, m, w, &mut sink);
    Ok(out)
}

/// Textbook triple loop over unpacked `[n, k]` weights: the specification the kernels are tested against.
pub fn gemm_reference(a: &[u8], m: usize, k: usize, weights: &[i8], n: usize) -> Vec<i32> {
    let mut out = vec![0i32; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k)
                .map(|kk| i32::from(a[i * k + kk]) * i32::from(weights[j * k + kk]))
                .sum();
        }
    }
    out
}

/// Quantize the rows of `src` (`k` columns) onto the 7-bit grid of `qp` into `dst` (row stride
/// `stride ≥ k`), compiled for the vector width of `kind`.
pub(crate) fn quantize_rows(
    kind: KernelKind,
    src: &[f32],
    k: usize,
    dst: &mut [u8],
    stride: usize,
    qp: QParams,
) {
    match kind {
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx512Vnni if kind.is_available() => {
            // SAFETY: feature checked just now.
            unsafe { quantize_rows_avx512(src, k, dst, stride, qp) }
        }
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx2 | KernelKind::AvxVnni if kind.is_available() => {
            // SAFETY: feature checked just now.
            unsafe { quantize_rows_avx2(src, k, dst, stride, qp) }
        }
        _ => quantize_rows_generic(src, k, dst, stride, qp),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantize_rows_avx512(src: &[f32], k: usize, dst: &mut [u8], stride: usize, qp: QParams) {
    quantize_rows_generic(src, k, dst, stride, qp)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn quantize_rows_avx2(src: &[f32], k: usize, dst: &mut [u8], stride: usize, qp: QParams) {
    quantize_rows_generic(src, k, dst, stride, qp)
}

#[inline(always)]
fn quantize_rows_generic(src: &[f32], k: usize, dst: &mut [u8], stride: usize, qp: QParams) {
    let (inv, zp) = (1.0 / qp.scale, qp.zero_point as f32);
    for (s, d) in src.chunks_exact(k).zip(dst.chunks_exact_mut(stride)) {
        for (dv, &sv) in d[..k].iter_mut().zip(s) {
            *dv = quantize_act(sv, inv, zp);
        }
    }
}
