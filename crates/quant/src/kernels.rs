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
//! On AVX-512 VNNI, `run_row_dequant` also applies the dequantization epilogue (zero-point
//! correction, scales, bias, ReLU/ELU, optionally requantization) to the accumulator registers;
//! it performs the portable epilogue's float operations in the same order, so results stay
//! bit-identical across paths.
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

/// [`dispatch_tile!`] for tile functions with a third const parameter.
macro_rules! dispatch_tile_u8 {
    ($f:ident, $c:ident, $mr:expr, $nv:expr, $($arg:expr),*) => {
        match ($mr, $nv) {
            (1, 1) => $f::<1, 1, $c>($($arg),*),
            (2, 1) => $f::<2, 1, $c>($($arg),*),
            (3, 1) => $f::<3, 1, $c>($($arg),*),
            (4, 1) => $f::<4, 1, $c>($($arg),*),
            (5, 1) => $f::<5, 1, $c>($($arg),*),
            (6, 1) => $f::<6, 1, $c>($($arg),*),
            (1, 2) => $f::<1, 2, $c>($($arg),*),
            (2, 2) => $f::<2, 2, $c>($($arg),*),
            (3, 2) => $f::<3, 2, $c>($($arg),*),
            (4, 2) => $f::<4, 2, $c>($($arg),*),
            (5, 2) => $f::<5, 2, $c>($($arg),*),
            (6, 2) => $f::<6, 2, $c>($($arg),*),
            (1, 3) => $f::<1, 3, $c>($($arg),*),
            (2, 3) => $f::<2, 3, $c>($($arg),*),
            (3, 3) => $f::<3, 3, $c>($($arg),*),
            (4, 3) => $f::<4, 3, $c>($($arg),*),
            (5, 3) => $f::<5, 3, $c>($($arg),*),
            (6, 3) => $f::<6, 3, $c>($($arg),*),
            (1, 4) => $f::<1, 4, $c>($($arg),*),
            (2, 4) => $f::<2, 4, $c>($($arg),*),
            (3, 4) => $f::<3, 4, $c>($($arg),*),
            (4, 4) => $f::<4, 4, $c>($($arg),*),
            (5, 4) => $f::<5, 4, $c>($($arg),*),
            _ => $f::<6, 4, $c>($($arg),*),
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
    let (inv, zp) = (1.0 / qp.scale, qp.zero_point as f32);
    for (s, d) in src.chunks_exact(k).zip(dst.chunks_exact_mut(stride)) {
        quantize_row_avx512(s, &mut d[..k], inv, zp);
    }
}

/// [`quantize_act`] over one row with AVX-512, bit for bit: the same float operations in the
/// same order (`vmaxps(v, lo)` returns `lo` for NaN `v`, as `f32::max` does), then the 7-bit
/// values are packed with saturating packs (exact for 0..=127) and one permute. LLVM's own
/// vectorization of the portable loop stores with `vpmovdb m128, zmm`, which is slow on AMD
/// cores; this version was ~2× faster on the Zen 5 bench machine.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
pub(crate) unsafe fn quantize_row_avx512(src: &[f32], dst: &mut [u8], inv: f32, zp: f32) {
    use std::arch::x86_64::*;
    const MAGIC: f32 = 12_582_912.0;
    let n = src.len().min(dst.len());
    let (vinv, vlo, vhi) = (
        _mm512_set1_ps(inv),
        _mm512_set1_ps(-zp),
        _mm512_set1_ps(127.0 - zp),
    );
    let (vmagic, vzp) = (_mm512_set1_ps(MAGIC), _mm512_set1_epi32(zp as i32));
    let vmagic_bits = _mm512_set1_epi32(MAGIC.to_bits() as i32);
    let q = |p: *const f32| {
        let t = _mm512_min_ps(
            _mm512_max_ps(_mm512_mul_ps(_mm512_loadu_ps(p), vinv), vlo),
            vhi,
        );
        let r = _mm512_sub_epi32(_mm512_castps_si512(_mm512_add_ps(t, vmagic)), vmagic_bits);
        _mm512_add_epi32(r, vzp)
    };
    let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    let (sp, dp) = (src.as_ptr(), dst.as_mut_ptr());
    let mut j = 0;
    while j + 64 <= n {
        let (a, b, c, d) = (
            q(sp.add(j)),
            q(sp.add(j + 16)),
            q(sp.add(j + 32)),
            q(sp.add(j + 48)),
        );
        let packed = _mm512_packus_epi16(_mm512_packus_epi32(a, b), _mm512_packus_epi32(c, d));
        _mm512_storeu_si512(dp.add(j) as *mut _, _mm512_permutexvar_epi32(order, packed));
        j += 64;
    }
    while j + 16 <= n {
        let a = q(sp.add(j));
        let packed = _mm512_packus_epi16(_mm512_packus_epi32(a, a), _mm512_packus_epi32(a, a));
        // Lane l holds a[4l..4l+4] in its first dword: gather those four dwords.
        let v = _mm512_permutexvar_epi32(order, packed);
        _mm_storeu_si128(dp.add(j) as *mut __m128i, _mm512_castsi512_si128(v));
        j += 16;
    }
    if j < n {
        // Masked tail: lanes past the row read as 0 and are not stored.
        let rest = n - j;
        let x = _mm512_maskz_loadu_ps((1u16 << rest) - 1, sp.add(j));
        let t = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x, vinv), vlo), vhi);
        let r = _mm512_sub_epi32(_mm512_castps_si512(_mm512_add_ps(t, vmagic)), vmagic_bits);
        let mut tmp = [0u8; 16];
        _mm_storeu_si128(
            tmp.as_mut_ptr() as *mut __m128i,
            _mm512_cvtepi32_epi8(_mm512_add_epi32(r, vzp)),
        );
        std::ptr::copy_nonoverlapping(tmp.as_ptr(), dp.add(j), rest);
    }
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

/// Quantize the rows of `src` (`k` columns) with one scale and zero point per column
/// (`inv[j] = 1 / scale_j`, `zp[j]`) into `dst` (row stride `stride ≥ k`).
pub(crate) fn quantize_rows_per_feature(
    kind: KernelKind,
    src: &[f32],
    k: usize,
    dst: &mut [u8],
    stride: usize,
    inv: &[f32],
    zp: &[f32],
) {
    match kind {
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx512Vnni if kind.is_available() => {
            // SAFETY: feature checked just now.
            unsafe { quantize_features_avx512(src, k, dst, stride, inv, zp) }
        }
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx2 | KernelKind::AvxVnni if kind.is_available() => {
            // SAFETY: feature checked just now.
            unsafe { quantize_features_avx2(src, k, dst, stride, inv, zp) }
        }
        _ => quantize_features_generic(src, k, dst, stride, inv, zp),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantize_features_avx512(
    src: &[f32],
    k: usize,
    dst: &mut [u8],
    stride: usize,
    inv: &[f32],
    zp: &[f32],
) {
    quantize_features_generic(src, k, dst, stride, inv, zp)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn quantize_features_avx2(
    src: &[f32],
    k: usize,
    dst: &mut [u8],
    stride: usize,
    inv: &[f32],
    zp: &[f32],
) {
    quantize_features_generic(src, k, dst, stride, inv, zp)
}

#[inline(always)]
fn quantize_features_generic(
    src: &[f32],
    k: usize,
    dst: &mut [u8],
    stride: usize,
    inv: &[f32],
    zp: &[f32],
) {
    let (inv, zp) = (&inv[..k], &zp[..k]);
    for (s, d) in src.chunks_exact(k).zip(dst.chunks_exact_mut(stride)) {
        for (((dv, &sv), &i), &z) in d[..k].iter_mut().zip(s).zip(inv).zip(zp) {
            *dv = quantize_act(sv, i, z);
        }
    }
}

/// Per-row dequantization of a layer's output, applied by [`run_row_dequant`]:
/// `out[r, j] = act((acc[r, j] − zp_r · Σw_j) as f32 · (s_r · s_w_j) + b_j)`.
pub(crate) struct RowDequant<'a> {
    /// `Σ_k W[j, k]` per output column.
    pub(crate) col_sums: &'a [i32],
    /// Weight scale per output column.
    pub(crate) weight_scales: &'a [f32],
    /// Bias per output column.
    pub(crate) bias: &'a [f32],
    /// Input scale per row.
    pub(crate) row_scale: &'a [f32],
    /// Input zero point per row.
    pub(crate) row_zp: &'a [i32],
    /// 0 identity, 1 ReLU, 2 ELU.
    pub(crate) act: u8,
}

/// Where [`run_row_dequant`] writes: fp32 rows, or rows requantized onto the next layer's
/// 7-bit grid (`quantize_act` with `inv_scale`, `zero_point`).
pub(crate) enum DequantOut<'a> {
    F32(&'a mut [f32]),
    U8 {
        out: &'a mut [u8],
        inv_scale: f32,
        zero_point: f32,
    },
}

/// GEMM with the dequantization epilogue applied to the accumulator registers (AVX-512 VNNI):
/// no i32 tile goes through memory. Row `r` of the result goes to `out[r * out_stride..]`.
/// Returns `false` (and does nothing) when this CPU lacks AVX-512 VNNI; the caller then runs
/// the portable path, which computes the same bits (the same float operations in the same
/// order; tested in `tests/static_io.rs`).
pub(crate) fn run_row_dequant(
    a: &[u8],
    a_stride: usize,
    rows: usize,
    w: &PackedWeights,
    p: &RowDequant,
    out: DequantOut,
    out_stride: usize,
) -> bool {
    assert!(a_stride >= w.k_pad && (rows == 0 || a.len() >= (rows - 1) * a_stride + w.k_pad));
    let out_len = match &out {
        DequantOut::F32(o) => o.len(),
        DequantOut::U8 { out, .. } => out.len(),
    };
    assert!(out_stride >= w.n && (rows == 0 || out_len >= (rows - 1) * out_stride + w.n));
    assert!(p.col_sums.len() >= w.n && p.weight_scales.len() >= w.n && p.bias.len() >= w.n);
    assert!(p.row_scale.len() >= rows && p.row_zp.len() >= rows && p.act <= 2);
    #[cfg(target_arch = "x86_64")]
    if KernelKind::Avx512Vnni.is_available() {
        // SAFETY: bounds asserted above, features checked just now.
        unsafe {
            match out {
                DequantOut::F32(o) => {
                    let q = (o.as_mut_ptr(), std::ptr::null_mut(), 0.0, 0.0);
                    drive_row_dequant_avx512::<false>(a, a_stride, rows, w, p, q, out_stride)
                }
                DequantOut::U8 {
                    out,
                    inv_scale,
                    zero_point,
                } => {
                    let q = (
                        std::ptr::null_mut(),
                        out.as_mut_ptr(),
                        inv_scale,
                        zero_point,
                    );
                    drive_row_dequant_avx512::<true>(a, a_stride, rows, w, p, q, out_stride)
                }
            }
        };
        return true;
    }
    false
}

/// Output pointers of the fused tiles: (fp32 out, u8 out, inverse scale, zero point).
#[cfg(target_arch = "x86_64")]
type OutPtrs = (*mut f32, *mut u8, f32, f32);

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn drive_row_dequant_avx512<const U8: bool>(
    a: &[u8],
    a_stride: usize,
    rows: usize,
    w: &PackedWeights,
    p: &RowDequant,
    o: OutPtrs,
    out_stride: usize,
) {
    let groups = w.k_pad / K_GROUP;
    let panels = w.n_pad / PANEL_COLS;
    let panel_stride = w.k_pad * PANEL_COLS;
    let mut p0 = 0;
    while p0 < panels {
        let nv = (panels - p0).min(TILE_PANELS);
        let b = w.data.as_ptr().add(p0 * panel_stride);
        let col0 = p0 * PANEL_COLS;
        let cols = (w.n - col0).min(nv * PANEL_COLS);
        let mut r0 = 0;
        while r0 < rows {
            let mr = (rows - r0).min(TILE_ROWS);
            let ap = a.as_ptr().add(r0 * a_stride);
            dispatch_tile_u8!(
                tile_row_dequant_avx512,
                U8,
                mr,
                nv,
                ap,
                a_stride,
                b,
                panel_stride,
                groups,
                p,
                r0,
                col0,
                cols,
                o,
                out_stride
            );
            r0 += mr;
        }
        p0 += nv;
    }
}

/// `exp(x) − 1` for ELU, the operations of `model::exp_nonpositive` in the same order (no FMA).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn expm1_nonpositive_avx512(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    const MAGIC: f32 = 12_582_912.0;
    let s = _mm512_set1_ps;
    let (add, sub, mul) = (_mm512_add_ps, _mm512_sub_ps, _mm512_mul_ps);
    // clamp(x, −87, 0): x is finite here (quantized inputs give finite accumulators).
    let x = _mm512_min_ps(_mm512_max_ps(x, s(-87.0)), s(0.0));
    let n = sub(add(mul(x, s(std::f32::consts::LOG2_E)), s(MAGIC)), s(MAGIC));
    let r = sub(sub(x, mul(n, s(0.693_359_4))), mul(n, s(-2.121_944_4e-4)));
    let z = mul(r, r);
    let mut y = add(mul(s(1.987_569_1e-4), r), s(1.398_199_9e-3));
    y = add(mul(y, r), s(8.333_452e-3));
    y = add(mul(y, r), s(4.166_579_6e-2));
    y = add(mul(y, r), s(1.666_666_5e-1));
    y = add(mul(y, r), s(0.5));
    y = add(add(mul(y, z), r), s(1.0));
    let biased = _mm512_sub_epi32(
        _mm512_castps_si512(add(n, s(127.0 + MAGIC))),
        _mm512_set1_epi32(MAGIC.to_bits() as i32),
    );
    let pow2 = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(biased));
    sub(mul(y, pow2), s(1.0))
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_row_dequant_avx512<const MR: usize, const NV: usize, const U8: bool>(
    a: *const u8,
    a_stride: usize,
    b: *const i8,
    panel_stride: usize,
    groups: usize,
    p: &RowDequant,
    row0: usize,
    col0: usize,
    cols: usize,
    out: OutPtrs,
    out_stride: usize,
) {
    use std::arch::x86_64::*;
    const MAGIC: f32 = 12_582_912.0;
    let (out_f, out_q, inv, zpf) = out;
    let (vinv, vlo, vhi) = (
        _mm512_set1_ps(inv),
        _mm512_set1_ps(-zpf),
        _mm512_set1_ps(127.0 - zpf),
    );
    let (vmagic, vzp) = (_mm512_set1_ps(MAGIC), _mm512_set1_epi32(zpf as i32));
    let vmagic_bits = _mm512_set1_epi32(MAGIC.to_bits() as i32);
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
    for v in 0..NV {
        let cbase = col0 + v * PANEL_COLS;
        let valid = (cols - v * PANEL_COLS).min(PANEL_COLS);
        let mask: __mmask16 = if valid == PANEL_COLS {
            0xFFFF
        } else {
            (1u16 << valid) - 1
        };
        let cs = _mm512_maskz_loadu_epi32(mask, p.col_sums.as_ptr().add(cbase) as *const _);
        let ws = _mm512_maskz_loadu_ps(mask, p.weight_scales.as_ptr().add(cbase));
        let bias = _mm512_maskz_loadu_ps(mask, p.bias.as_ptr().add(cbase));
        for (r, cr) in c.iter().enumerate() {
            let row = row0 + r;
            let zp = _mm512_set1_epi32(*p.row_zp.get_unchecked(row));
            let scale = _mm512_set1_ps(*p.row_scale.get_unchecked(row));
            let x = _mm512_cvtepi32_ps(_mm512_sub_epi32(cr[v], _mm512_mullo_epi32(zp, cs)));
            let val = _mm512_add_ps(_mm512_mul_ps(x, _mm512_mul_ps(scale, ws)), bias);
            let y = match p.act {
                1 => _mm512_max_ps(val, _mm512_setzero_ps()),
                2 => {
                    let e = expm1_nonpositive_avx512(val);
                    let pos = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(val, _mm512_setzero_ps());
                    _mm512_mask_blend_ps(pos, e, val)
                }
                _ => val,
            };
            if U8 {
                // `quantize_act`, operation for operation (see `quantize_row_avx512`).
                let t = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(y, vinv), vlo), vhi);
                let r =
                    _mm512_sub_epi32(_mm512_castps_si512(_mm512_add_ps(t, vmagic)), vmagic_bits);
                let q = _mm512_cvtepi32_epi8(_mm512_add_epi32(r, vzp));
                let dst = out_q.add(row * out_stride + cbase);
                if valid == PANEL_COLS {
                    _mm_storeu_si128(dst as *mut __m128i, q);
                } else {
                    let mut tmp = [0u8; PANEL_COLS];
                    _mm_storeu_si128(tmp.as_mut_ptr() as *mut __m128i, q);
                    std::ptr::copy_nonoverlapping(tmp.as_ptr(), dst, valid);
                }
            } else {
                _mm512_mask_storeu_ps(out_f.add(row * out_stride + cbase), mask, y);
            }
        }
    }
}
