//! CPU math kernels of the MLP, each a plain function over row-major `f32` slices.
//!
//! These are the seams where a backend trait (CPU / CUDA) will sit: the trainer calls only the
//! functions below for arithmetic, never ndarray operators. None of them spawns threads; the
//! trainer parallelises over fixed-size row chunks and reduces partial results in chunk order,
//! so results do not depend on the number of threads.
use crate::inference::Activation;
use rand::RngCore;

/// Rows per chunk of a training batch. Fixed (never derived from the thread count) because the
/// order in which per-chunk partial sums are added is part of the arithmetic.
pub const ROW_CHUNK: usize = 256;

/// `c[m,n] = alpha · a[m,k] · b[k,n] + beta · c` with explicit (row, column) strides.
#[allow(clippy::too_many_arguments)]
#[inline]
fn sgemm_strided(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    beta: f32,
    c: &mut [f32],
) {
    if m == 0 || n == 0 {
        return;
    }
    // Bounds are checked here so the unsafe call below cannot read or write out of range.
    assert!(k == 0 || a.len() > (m - 1) * rsa + (k - 1) * csa);
    assert!(k == 0 || b.len() > (k - 1) * rsb + (n - 1) * csb);
    assert!(c.len() >= m * n);
    // SAFETY: the asserts above keep every strided access inside the slices.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// Linear forward: `out[rows, n] = x[rows, k] · wᵀ + bias`, `w` is `[n, k]` (PyTorch layout).
pub fn linear_forward(x: &[f32], rows: usize, k: usize, w: &[f32], bias: &[f32], out: &mut [f32]) {
    let n = bias.len();
    for row in out[..rows * n].chunks_exact_mut(n) {
        row.copy_from_slice(bias);
    }
    sgemm_strided(rows, k, n, 1.0, x, (k, 1), w, (1, k), 1.0, out);
}

/// Gradient w.r.t. the input of a linear layer: `dx[rows, k] = dz[rows, n] · w[n, k]`.
pub fn linear_backward_input(
    dz: &[f32],
    rows: usize,
    n: usize,
    w: &[f32],
    k: usize,
    dx: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if training_gemm_avx512() && rows > 0 {
        assert!(dz.len() >= rows * n && w.len() >= n * k && dx.len() >= rows * k);
        // SAFETY: feature checked; a reads dz[..rows·n], b reads w[..n·k], c writes dx[..rows·k].
        unsafe {
            gemm_avx512(
                rows,
                n,
                k,
                dz.as_ptr(),
                (n, 1),
                w.as_ptr(),
                k,
                None,
                dx.as_mut_ptr(),
                k,
            );
        }
        return;
    }
    sgemm_strided(rows, n, k, 1.0, dz, (n, 1), w, (k, 1), 0.0, dx);
}

/// Gradient w.r.t. the weight over one chunk: `dw[n, k] = dz[rows, n]ᵀ · x[rows, k]` (overwrites).
pub fn linear_backward_weight(
    dz: &[f32],
    rows: usize,
    n: usize,
    x: &[f32],
    k: usize,
    dw: &mut [f32],
) {
    if rows == 0 {
        dw[..n * k].fill(0.0);
        return;
    }
    sgemm_strided(n, rows, k, 1.0, dz, (1, n), x, (k, 1), 0.0, dw);
}

/// Whether the training GEMMs use the AVX-512 kernel below (else `matrixmultiply`).
#[inline]
pub fn training_gemm_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `c[i, j] = init[j] + Σ_kk a[i·rsa + kk·csa] · b[kk·ldb + j]` for `i < m`, `j < n`, with
/// `init` the bias (or 0). Every output is one FMA chain over `kk = 0..k` in order, so the
/// result does not depend on how callers split rows or columns between threads.
///
/// # Safety
/// Needs AVX-512F; every addressed element must be inside the allocations behind the pointers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_avx512(
    m: usize,
    k: usize,
    n: usize,
    a: *const f32,
    (rsa, csa): (usize, usize),
    b: *const f32,
    ldb: usize,
    bias: Option<*const f32>,
    c: *mut f32,
    ldc: usize,
) {
    let mut p = 0;
    while p < n {
        let w = (n - p).min(32);
        let m0: u16 = if w >= 16 { 0xFFFF } else { (1u16 << w) - 1 };
        let m1: u16 = if w >= 32 {
            0xFFFF
        } else if w > 16 {
            (1u16 << (w - 16)) - 1
        } else {
            0
        };
        let bp = b.add(p);
        let biasp = bias.map(|q| q.add(p));
        let mut i = 0;
        while i < m {
            let mr = (m - i).min(8);
            let ap = a.add(i * rsa);
            let cp = c.add(i * ldc + p);
            match mr {
                8 => gemm_tile::<8>(k, ap, rsa, csa, bp, ldb, biasp, cp, ldc, m0, m1),
                7 => gemm_tile::<7>(k, ap, rsa, csa, bp, ldb, biasp, cp, ldc, m0, m1),
                6 => gemm_tile::<6>(k, ap, rsa, csa, bp, ldb, biasp, cp, ldc, m0, m1),
                5 => gemm_tile::<5>(k, ap, rsa, csa, bp, ldb, biasp, cp, ldc, m0, m1),
                4 => gemm_tile::<4>(k, ap, rsa, csa, bp, ldb, biasp, cp, ldc, m0, m1),
                3 => gemm_tile::<3>(k, ap, rsa, csa, bp, ldb, biasp, cp, ldc, m0, m1),
                2 => gemm_tile::<2>(k, ap, rsa, csa, bp, ldb, biasp, cp, ldc, m0, m1),
                _ => gemm_tile::<1>(k, ap, rsa, csa, bp, ldb, biasp, cp, ldc, m0, m1),
            }
            i += mr;
        }
        p += 32;
    }
}

/// `MR × 32` register tile of [`gemm_avx512`]; `m0`/`m1` mask the two 16-column halves.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn gemm_tile<const MR: usize>(
    k: usize,
    a: *const f32,
    rsa: usize,
    csa: usize,
    b: *const f32,
    ldb: usize,
    bias: Option<*const f32>,
    c: *mut f32,
    ldc: usize,
    m0: u16,
    m1: u16,
) {
    use std::arch::x86_64::*;
    let (i0, i1) = match bias {
        Some(q) => (
            _mm512_maskz_loadu_ps(m0, q),
            _mm512_maskz_loadu_ps(m1, q.add(16)),
        ),
        None => (_mm512_setzero_ps(), _mm512_setzero_ps()),
    };
    let mut acc0 = [i0; MR];
    let mut acc1 = [i1; MR];
    if m1 == 0 {
        for kk in 0..k {
            let w0 = _mm512_maskz_loadu_ps(m0, b.add(kk * ldb));
            let ak = a.add(kk * csa);
            for (r, acc) in acc0.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*ak.add(r * rsa));
                *acc = _mm512_fmadd_ps(av, w0, *acc);
            }
        }
    } else {
        for kk in 0..k {
            let w0 = _mm512_maskz_loadu_ps(m0, b.add(kk * ldb));
            let w1 = _mm512_maskz_loadu_ps(m1, b.add(kk * ldb + 16));
            let ak = a.add(kk * csa);
            for r in 0..MR {
                let av = _mm512_set1_ps(*ak.add(r * rsa));
                acc0[r] = _mm512_fmadd_ps(av, w0, acc0[r]);
                acc1[r] = _mm512_fmadd_ps(av, w1, acc1[r]);
            }
        }
    }
    for r in 0..MR {
        _mm512_mask_storeu_ps(c.add(r * ldc), m0, acc0[r]);
        _mm512_mask_storeu_ps(c.add(r * ldc + 16), m1, acc1[r]);
    }
}

/// `wt[k, n] = w[n, k]ᵀ` (the forward GEMM's right operand for the AVX-512 kernel).
pub fn transpose_into(w: &[f32], n: usize, k: usize, wt: &mut [f32]) {
    assert!(w.len() >= n * k && wt.len() >= n * k);
    // 16 × 16 blocks keep both the strided reads and the writes inside a few cache lines.
    const B: usize = 16;
    for j0 in (0..n).step_by(B) {
        for k0 in (0..k).step_by(B) {
            for j in j0..(j0 + B).min(n) {
                for kk in k0..(k0 + B).min(k) {
                    wt[kk * n + j] = w[j * k + kk];
                }
            }
        }
    }
}

/// Linear forward with a pre-transposed weight `wt[k, n]` (see [`transpose_into`]):
/// `out[rows, n] = x[rows, k] · wt + bias`. Uses the AVX-512 kernel where available.
pub fn linear_forward_t(
    x: &[f32],
    rows: usize,
    k: usize,
    w: &[f32],
    wt: &[f32],
    bias: &[f32],
    out: &mut [f32],
) {
    let n = bias.len();
    #[cfg(target_arch = "x86_64")]
    if training_gemm_avx512() && rows > 0 {
        assert!(x.len() >= rows * k && wt.len() >= k * n && out.len() >= rows * n);
        // SAFETY: feature checked; a reads x[..rows·k], b reads wt[..k·n], c writes out[..rows·n].
        unsafe {
            gemm_avx512(
                rows,
                k,
                n,
                x.as_ptr(),
                (k, 1),
                wt.as_ptr(),
                n,
                Some(bias.as_ptr()),
                out.as_mut_ptr(),
                n,
            );
        }
        return;
    }
    let _ = wt;
    linear_forward(x, rows, k, w, bias, out);
}

/// Whole-batch weight gradient for output rows `n0..n0 + nr` of `dw`:
/// `dw[nr, k] = dz[rows, n0..n0+nr]ᵀ · x[rows, k]` (overwrites; one in-order sum over all rows
/// per element, so any split of `n0` ranges between threads gives the same bits).
#[allow(clippy::too_many_arguments)]
pub fn linear_backward_weight_rows(
    dz: &[f32],
    rows: usize,
    n: usize,
    n0: usize,
    x: &[f32],
    k: usize,
    dw: &mut [f32],
) {
    let nr = dw.len() / k;
    assert!(n0 + nr <= n && dz.len() >= rows * n && x.len() >= rows * k);
    if rows == 0 {
        dw.fill(0.0);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if training_gemm_avx512() {
        // SAFETY: feature checked; a reads dz[r·n + n0 + i] (i < nr ≤ n − n0, r < rows),
        // b reads x[..rows·k], c writes dw[..nr·k].
        unsafe {
            gemm_avx512(
                nr,
                rows,
                k,
                dz.as_ptr().add(n0),
                (1, n),
                x.as_ptr(),
                k,
                None,
                dw.as_mut_ptr(),
                k,
            );
        }
        return;
    }
    sgemm_strided(nr, rows, k, 1.0, &dz[n0..], (1, n), x, (k, 1), 0.0, dw);
}

/// `out[j] = Σ_rows data[r, j]`, rows added in order (overwrites `out`).
pub fn column_sums(data: &[f32], cols: usize, out: &mut [f32]) {
    out[..cols].fill(0.0);
    for row in data.chunks_exact(cols) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}

/// `out[j] = Σ_rows (data[r, j] − mean[j])²` (overwrites `out`).
pub fn column_sq_dev_sums(data: &[f32], cols: usize, mean: &[f32], out: &mut [f32]) {
    out[..cols].fill(0.0);
    for row in data.chunks_exact(cols) {
        for ((o, &v), &m) in out.iter_mut().zip(row).zip(mean) {
            let d = v - m;
            *o += d * d;
        }
    }
}

/// `out[j] = Σ_rows a[r, j] · b[r, j]` (overwrites `out`).
pub fn column_dot_sums(a: &[f32], b: &[f32], cols: usize, out: &mut [f32]) {
    out[..cols].fill(0.0);
    for (ra, rb) in a.chunks_exact(cols).zip(b.chunks_exact(cols)) {
        for ((o, &x), &y) in out.iter_mut().zip(ra).zip(rb) {
            *o += x * y;
        }
    }
}

/// [`column_sums`] of `a` and [`column_dot_sums`] of `a`, `b` in one pass over the rows
/// (same additions in the same order as the two separate calls).
pub fn column_sums_and_dots(a: &[f32], b: &[f32], cols: usize, sums: &mut [f32], dots: &mut [f32]) {
    sums[..cols].fill(0.0);
    dots[..cols].fill(0.0);
    for (ra, rb) in a.chunks_exact(cols).zip(b.chunks_exact(cols)) {
        for (((s, d), &x), &y) in sums[..cols]
            .iter_mut()
            .zip(dots[..cols].iter_mut())
            .zip(ra)
            .zip(rb)
        {
            *s += x;
            *d += x * y;
        }
    }
}

/// Applies an activation in place.
pub fn activation_forward(act: Activation, data: &mut [f32]) {
    match act {
        Activation::Identity => {}
        Activation::Relu => data.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::Elu => {
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: feature checked; the kernel stays inside `data`.
                unsafe { elu_slice_avx512(data) };
                return;
            }
            data.iter_mut().for_each(|v| {
                if *v <= 0.0 {
                    *v = v.exp_m1();
                }
            });
        }
    }
}

/// ELU in place with [`elu_avx512`] (within ~1e-7 absolute of `exp_m1`, far inside the 1e-5
/// parity tolerance; libm's scalar `expm1f` was ~10 % of a training step).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn elu_slice_avx512(data: &mut [f32]) {
    use std::arch::x86_64::*;
    let mut chunks = data.chunks_exact_mut(16);
    for c in &mut chunks {
        let v = _mm512_loadu_ps(c.as_ptr());
        _mm512_storeu_ps(c.as_mut_ptr(), elu_avx512(v));
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let m: u16 = (1u16 << tail.len()) - 1;
        let v = _mm512_maskz_loadu_ps(m, tail.as_ptr());
        _mm512_mask_storeu_ps(tail.as_mut_ptr(), m, elu_avx512(v));
    }
}

/// Multiplies `grad` by the activation's derivative, computed from the activation's *output*
/// (ReLU: out > 0; ELU: out + 1 where out ≤ 0, as PyTorch's `elu_backward` with `is_result`).
pub fn activation_backward(act: Activation, output: &[f32], grad: &mut [f32]) {
    match act {
        Activation::Identity => {}
        // Written as unconditional selects so they vectorise (the branches mispredict on
        // ~half the units); same values as the branchy form, `g·1 = g` exactly.
        Activation::Relu => grad.iter_mut().zip(output).for_each(|(g, &o)| {
            *g = if o <= 0.0 { 0.0 } else { *g };
        }),
        Activation::Elu => grad.iter_mut().zip(output).for_each(|(g, &o)| {
            *g *= if o <= 0.0 { o + 1.0 } else { 1.0 };
        }),
    }
}

/// BatchNorm (train mode) normalisation of one chunk, in place: `zy` holds the linear output
/// `z` on entry and `gamma·xhat + beta` on exit, with `xhat = (z − mean)·inv_std` stored.
pub fn batchnorm_forward(
    zy: &mut [f32],
    cols: usize,
    mean: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
    beta: &[f32],
    xhat: &mut [f32],
) {
    for (zr, xr) in zy.chunks_exact_mut(cols).zip(xhat.chunks_exact_mut(cols)) {
        for j in 0..cols {
            let h = (zr[j] - mean[j]) * inv_std[j];
            xr[j] = h;
            zr[j] = gamma[j] * h + beta[j];
        }
    }
}

/// BatchNorm (train mode) input gradient of one chunk, given the whole-batch sums
/// `sum_dy = Σ dy` and `sum_dy_xhat = Σ dy·xhat`:
/// `dz = gamma·inv_std/N · (N·dy − sum_dy − xhat·sum_dy_xhat)` (written into `dy`).
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward(
    dy: &mut [f32],
    xhat: &[f32],
    cols: usize,
    n_total: usize,
    gamma: &[f32],
    inv_std: &[f32],
    sum_dy: &[f32],
    sum_dy_xhat: &[f32],
) {
    let n = n_total as f32;
    for (dr, xr) in dy.chunks_exact_mut(cols).zip(xhat.chunks_exact(cols)) {
        for j in 0..cols {
            let k = gamma[j] * inv_std[j] / n;
            dr[j] = k * (n * dr[j] - sum_dy[j] - xr[j] * sum_dy_xhat[j]);
        }
    }
}

/// Fills `mask` with dropout multipliers: 0 with probability `p`, else `1/(1−p)` (PyTorch's
/// inverted dropout).
pub fn dropout_mask(rng: &mut impl RngCore, p: f32, mask: &mut [f32]) {
    let scale = 1.0 / (1.0 - p);
    // Keep iff u32 ≥ p·2³²: an exact Bernoulli(1−p) up to 2⁻³² resolution.
    let threshold = (f64::from(p) * 4_294_967_296.0) as u64;
    // The same u32 stream as one `next_u32` per element (ChaCha's `fill_bytes` is its
    // little-endian byte stream), drawn in bulk into the mask's own memory.
    let mut words = [0u8; 4 * 64];
    for block in mask.chunks_mut(64) {
        let bytes = &mut words[..4 * block.len()];
        rng.fill_bytes(bytes);
        for (m, w) in block.iter_mut().zip(bytes.chunks_exact(4)) {
            let u = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            *m = if u64::from(u) >= threshold {
                scale
            } else {
                0.0
            };
        }
    }
}

/// `data *= mask` elementwise.
pub fn mul_assign(data: &mut [f32], mask: &[f32]) {
    data.iter_mut().zip(mask).for_each(|(d, &m)| *d *= m);
}

/// Softmax cross-entropy over one chunk. `logits[rows, k]` is overwritten by the gradient
/// `w_y·(softmax − onehot)/weight_total`; returns `Σ w_y·(−log p_y)` (not yet divided) and the
/// number of rows whose arg-max equals the label.
pub fn softmax_ce_backward(
    logits: &mut [f32],
    k: usize,
    labels: &[usize],
    row_weights: &[f32],
    weight_total: f32,
) -> (f64, usize) {
    let mut loss = 0.0f64;
    let mut correct = 0usize;
    for ((row, &y), &w) in logits.chunks_exact_mut(k).zip(labels).zip(row_weights) {
        let (argmax, max) =
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                    if v > bv {
                        (i, v)
                    } else {
                        (bi, bv)
                    }
                });
        if argmax == y {
            correct += 1;
        }
        // −log p_y = log(sum) − (z_y − max), taken before exponentiating: exp(z_y − max)
        // underflows to 0 for logits far below the max (inputs of ~1e8 under the thesis'
        // preprocessing), and ln(0) would make the loss infinite where PyTorch's is finite.
        let shifted_y = row[y] - max;
        let mut sum = 0.0f32;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let inv = 1.0 / sum;
        let log_py = shifted_y - sum.ln();
        loss += f64::from(w) * f64::from(-log_py);
        let scale = w / weight_total;
        for v in row.iter_mut() {
            *v *= inv * scale;
        }
        row[y] -= scale;
    }
    (loss, correct)
}

/// Row-wise softmax in place.
pub fn softmax_rows(data: &mut [f32], k: usize) {
    for row in data.chunks_exact_mut(k) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

/// Hyper-parameters of one Adam/AdamW step.
#[derive(Debug, Clone, Copy)]
pub struct AdamStep {
    /// Learning rate for this step.
    pub lr: f64,
    /// First-moment decay for this step (cycled by OneCycle).
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Decoupled weight decay (AdamW); 0 for plain Adam.
    pub weight_decay: f64,
    /// 1-based step count.
    pub t: u64,
    /// scikit-learn's Adam (`lr·√(1−β2ᵗ)/(1−β1ᵗ)`, eps added to the uncorrected `√v`) instead of
    /// PyTorch's.
    pub sklearn_form: bool,
}

/// One Adam(W) update over flat parameter, gradient and moment buffers (PyTorch's
/// `_single_tensor_adamw` arithmetic: scalars in f64, cast to f32 once).
pub fn adam_step(params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32], h: AdamStep) {
    let b1 = h.beta1 as f32;
    let b2 = h.beta2 as f32;
    let bc1 = 1.0 - h.beta1.powf(h.t as f64);
    let bc2 = 1.0 - h.beta2.powf(h.t as f64);
    let decay = (1.0 - h.lr * h.weight_decay) as f32;
    let apply_decay = h.weight_decay != 0.0;
    if h.sklearn_form {
        let lr_t = (h.lr * bc2.sqrt() / bc1) as f32;
        let eps = h.eps as f32;
        for i in 0..params.len() {
            let g = grads[i];
            m[i] = b1 * m[i] + (1.0 - b1) * g;
            v[i] = b2 * v[i] + (1.0 - b2) * g * g;
            params[i] -= lr_t * m[i] / (v[i].sqrt() + eps);
        }
    } else {
        let step_size = (h.lr / bc1) as f32;
        let bc2_sqrt = bc2.sqrt() as f32;
        let eps = h.eps as f32;
        let n = params.len();
        let (grads, m, v) = (&grads[..n], &mut m[..n], &mut v[..n]);
        // Iterator form (no bounds checks) so the loop vectorises; same arithmetic per element.
        let update = |p: &mut f32, &g: &f32, mi: &mut f32, vi: &mut f32| {
            // PyTorch: exp_avg.lerp_(grad, 1 − β1); exp_avg_sq.mul_(β2).addcmul_(g, g, 1 − β2)
            *mi += (g - *mi) * (1.0 - b1);
            *vi = *vi * b2 + (1.0 - b2) * g * g;
            let denom = vi.sqrt() / bc2_sqrt + eps;
            *p -= step_size * (*mi / denom);
        };
        let it = params
            .iter_mut()
            .zip(grads)
            .zip(m.iter_mut())
            .zip(v.iter_mut());
        if apply_decay {
            it.for_each(|(((p, g), mi), vi)| {
                *p *= decay;
                update(p, g, mi, vi);
            });
        } else {
            it.for_each(|(((p, g), mi), vi)| update(p, g, mi, vi));
        }
    }
}

/// Fused dense layer for serving: `out = act(x · wᵀ + bias)`.
pub fn dense_forward(
    x: &[f32],
    rows: usize,
    k: usize,
    w: &[f32],
    bias: &[f32],
    act: Activation,
    out: &mut [f32],
) {
    linear_forward(x, rows, k, w, bias, out);
    activation_forward(act, &mut out[..rows * bias.len()]);
}

/// Columns per packed weight panel: two AVX-512 registers (the AVX2 path runs it as two
/// 16-column halves).
pub const PANEL: usize = 32;

/// The implementations of [`PackedDense::forward`], picked at runtime (best available first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelPath {
    /// Plain Rust (any CPU).
    Portable,
    /// AVX2 + FMA, 6×16 tiles.
    Avx2,
    /// AVX-512F, 8×32 tiles.
    Avx512,
}

/// Whether the AVX-512 serving kernel can run here.
#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

/// A dense layer with `Wᵀ` pre-packed into `PANEL`-column panels for the serving kernel:
/// `packed[(p·k + kk)·PANEL + j] = W[p·PANEL + j, kk]` (zero past `n`).
#[derive(Debug, Clone, PartialEq)]
pub struct PackedDense {
    /// Output width.
    pub n: usize,
    /// Input width.
    pub k: usize,
    /// `n` rounded up to a multiple of `PANEL`.
    pub n_pad: usize,
    packed: Vec<f32>,
    bias: Vec<f32>,
    /// Row-major `[n, k]` weight (for the portable fallback).
    weight: Vec<f32>,
    act: Activation,
}

impl PackedDense {
    /// Packs a `[n, k]` row-major weight, its bias and activation.
    pub fn new(weight: &[f32], n: usize, k: usize, bias: &[f32], act: Activation) -> Self {
        let n_pad = n.div_ceil(PANEL) * PANEL;
        let mut packed = vec![0.0f32; n_pad * k];
        for p in 0..n_pad / PANEL {
            for kk in 0..k {
                for j in 0..PANEL {
                    let col = p * PANEL + j;
                    if col < n {
                        packed[(p * k + kk) * PANEL + j] = weight[col * k + kk];
                    }
                }
            }
        }
        let mut b = vec![0.0f32; n_pad];
        b[..n].copy_from_slice(bias);
        Self {
            n,
            k,
            n_pad,
            packed,
            bias: b,
            weight: weight.to_vec(),
            act,
        }
    }

    /// `out[r, ..n_pad] = act(x[r, ..k] · Wᵀ + b)` for `rows` rows; `x` has row stride `ldx`,
    /// `out` row stride `n_pad` (columns past `n` are written as `act(0)`).
    pub fn forward(&self, x: &[f32], rows: usize, ldx: usize, out: &mut [f32]) {
        assert!(ldx >= self.k && (rows == 0 || x.len() >= (rows - 1) * ldx + self.k));
        assert!(out.len() >= rows * self.n_pad);
        #[cfg(target_arch = "x86_64")]
        {
            if has_avx512() {
                // SAFETY: feature checked; slice bounds asserted above.
                unsafe { self.forward_avx512(x, rows, ldx, out) };
                return;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: features checked above; slice bounds asserted above.
                unsafe { self.forward_avx2(x, rows, ldx, out) };
                return;
            }
        }
        self.forward_portable(x, rows, ldx, out);
    }

    /// Runs one specific kernel (for tests comparing the SIMD paths with the portable one);
    /// returns false when this CPU lacks the path's features.
    pub fn forward_with(
        &self,
        path: KernelPath,
        x: &[f32],
        rows: usize,
        ldx: usize,
        out: &mut [f32],
    ) -> bool {
        assert!(ldx >= self.k && (rows == 0 || x.len() >= (rows - 1) * ldx + self.k));
        assert!(out.len() >= rows * self.n_pad);
        match path {
            KernelPath::Portable => self.forward_portable(x, rows, ldx, out),
            #[cfg(target_arch = "x86_64")]
            KernelPath::Avx2
                if std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("fma") =>
            {
                // SAFETY: features checked; bounds asserted.
                unsafe { self.forward_avx2(x, rows, ldx, out) }
            }
            #[cfg(target_arch = "x86_64")]
            KernelPath::Avx512 if has_avx512() => {
                // SAFETY: feature checked; bounds asserted.
                unsafe { self.forward_avx512(x, rows, ldx, out) }
            }
            _ => return false,
        }
        true
    }

    fn forward_portable(&self, x: &[f32], rows: usize, ldx: usize, out: &mut [f32]) {
        let (n, k, np) = (self.n, self.k, self.n_pad);
        for r in 0..rows {
            let xr = &x[r * ldx..r * ldx + k];
            let orow = &mut out[r * np..(r + 1) * np];
            for (j, o) in orow.iter_mut().enumerate() {
                *o = if j < n {
                    self.bias[j]
                        + self.weight[j * k..(j + 1) * k]
                            .iter()
                            .zip(xr)
                            .map(|(w, v)| w * v)
                            .sum::<f32>()
                } else {
                    0.0
                };
            }
            activation_forward(self.act, orow);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn forward_avx2(&self, x: &[f32], rows: usize, ldx: usize, out: &mut [f32]) {
        const MR: usize = 6;
        let (k, np) = (self.k, self.n_pad);
        for p in 0..np / PANEL {
            for half in [0, 16] {
                let panel = self.packed.as_ptr().add(p * k * PANEL + half);
                let bias = self.bias.as_ptr().add(p * PANEL + half);
                let mut r = 0;
                while r < rows {
                    let mr = (rows - r).min(MR);
                    let a = x.as_ptr().add(r * ldx);
                    let c = out.as_mut_ptr().add(r * np + p * PANEL + half);
                    match mr {
                        6 => tile::<6>(k, a, ldx, panel, bias, c, np, self.act),
                        5 => tile::<5>(k, a, ldx, panel, bias, c, np, self.act),
                        4 => tile::<4>(k, a, ldx, panel, bias, c, np, self.act),
                        3 => tile::<3>(k, a, ldx, panel, bias, c, np, self.act),
                        2 => tile::<2>(k, a, ldx, panel, bias, c, np, self.act),
                        _ => tile::<1>(k, a, ldx, panel, bias, c, np, self.act),
                    }
                    r += mr;
                }
            }
        }
    }

    // AVX-512 intrinsics are stable since Rust 1.89; this path is only compiled into the
    // x86_64 build and only called after runtime detection.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn forward_avx512(&self, x: &[f32], rows: usize, ldx: usize, out: &mut [f32]) {
        const MR: usize = 8;
        let (k, np) = (self.k, self.n_pad);
        for p in 0..np / PANEL {
            let panel = self.packed.as_ptr().add(p * k * PANEL);
            let bias = self.bias.as_ptr().add(p * PANEL);
            let mut r = 0;
            while r < rows {
                let mr = (rows - r).min(MR);
                let a = x.as_ptr().add(r * ldx);
                let c = out.as_mut_ptr().add(r * np + p * PANEL);
                match mr {
                    8 => tile512::<8>(k, a, ldx, panel, bias, c, np, self.act),
                    7 => tile512::<7>(k, a, ldx, panel, bias, c, np, self.act),
                    6 => tile512::<6>(k, a, ldx, panel, bias, c, np, self.act),
                    5 => tile512::<5>(k, a, ldx, panel, bias, c, np, self.act),
                    4 => tile512::<4>(k, a, ldx, panel, bias, c, np, self.act),
                    3 => tile512::<3>(k, a, ldx, panel, bias, c, np, self.act),
                    2 => tile512::<2>(k, a, ldx, panel, bias, c, np, self.act),
                    _ => tile512::<1>(k, a, ldx, panel, bias, c, np, self.act),
                }
                r += mr;
            }
        }
    }
}

/// `MR × 32` AVX-512 register tile (see [`tile`]).
#[allow(clippy::too_many_arguments)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile512<const MR: usize>(
    k: usize,
    a: *const f32,
    lda: usize,
    panel: *const f32,
    bias: *const f32,
    c: *mut f32,
    ldc: usize,
    act: Activation,
) {
    use std::arch::x86_64::*;
    let b0 = _mm512_loadu_ps(bias);
    let b1 = _mm512_loadu_ps(bias.add(16));
    let mut acc0 = [b0; MR];
    let mut acc1 = [b1; MR];
    for kk in 0..k {
        let w0 = _mm512_loadu_ps(panel.add(kk * PANEL));
        let w1 = _mm512_loadu_ps(panel.add(kk * PANEL + 16));
        for r in 0..MR {
            let av = _mm512_set1_ps(*a.add(r * lda + kk));
            acc0[r] = _mm512_fmadd_ps(av, w0, acc0[r]);
            acc1[r] = _mm512_fmadd_ps(av, w1, acc1[r]);
        }
    }
    for r in 0..MR {
        let (v0, v1) = match act {
            Activation::Identity => (acc0[r], acc1[r]),
            Activation::Relu => {
                let z = _mm512_setzero_ps();
                (_mm512_max_ps(acc0[r], z), _mm512_max_ps(acc1[r], z))
            }
            Activation::Elu => (elu_avx512(acc0[r]), elu_avx512(acc1[r])),
        };
        _mm512_storeu_ps(c.add(r * ldc), v0);
        _mm512_storeu_ps(c.add(r * ldc + 16), v1);
    }
}

/// [`elu_avx2`] on 16 lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn elu_avx512(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let (two_n, em1_r) = exp_parts_avx512(_mm512_min_ps(x, _mm512_setzero_ps()));
    let em1 = _mm512_fmadd_ps(two_n, em1_r, _mm512_sub_ps(two_n, _mm512_set1_ps(1.0)));
    let pos = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, _mm512_setzero_ps());
    _mm512_mask_blend_ps(pos, em1, x)
}

/// Cephes-style `exp` split for `x ≤ 0` (clamped at −87): returns `(2ⁿ, exp(r) − 1)` with
/// `exp(x) = 2ⁿ · (1 + (exp(r) − 1))`, so ELU can form `exp(x) − 1` without cancellation.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn exp_parts_avx512(
    x: std::arch::x86_64::__m512,
) -> (std::arch::x86_64::__m512, std::arch::x86_64::__m512) {
    use std::arch::x86_64::*;
    let xc = _mm512_max_ps(x, _mm512_set1_ps(-87.0));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(xc, _mm512_set1_ps(std::f32::consts::LOG2_E)),
    );
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), xc);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm512_set1_ps(1.987_569_1e-4);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.398_2e-3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.333_452e-3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166_579_6e-2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.166_666_65));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5));
    let em1_r = _mm512_fmadd_ps(_mm512_mul_ps(r, r), p, r);
    let two_n = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(
        _mm512_cvtps_epi32(n),
        _mm512_set1_epi32(127),
    )));
    (two_n, em1_r)
}

/// Softmax over the first `k` columns of `rows` rows stored `ld` apart (the serving kernel's
/// padded output), in place. With AVX-512 and `k ≤ 32` each row is one or two masked
/// registers and `exp` is the polynomial of [`elu_avx512`] (≤ 2 ulp); otherwise
/// [`softmax_rows`]' scalar arithmetic row by row.
pub fn softmax_rows_strided(data: &mut [f32], rows: usize, ld: usize, k: usize) {
    assert!(ld >= k && (rows == 0 || data.len() >= (rows - 1) * ld + k));
    #[cfg(target_arch = "x86_64")]
    {
        if k <= 2 * 16 && k > 0 && has_avx512() {
            // SAFETY: feature checked; every access is a masked load/store of lanes < k of a
            // row, inside the slice by the assert above.
            unsafe { softmax_rows_avx512(data, rows, ld, k) };
            return;
        }
    }
    for r in 0..rows {
        softmax_rows(&mut data[r * ld..r * ld + k], k);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn softmax_rows_avx512(data: &mut [f32], rows: usize, ld: usize, k: usize) {
    use std::arch::x86_64::*;
    let m0: u16 = if k >= 16 { u16::MAX } else { (1u16 << k) - 1 };
    let m1: u16 = if k > 16 {
        ((1u32 << (k - 16)) - 1) as u16
    } else {
        0
    };
    let neg = _mm512_set1_ps(f32::NEG_INFINITY);
    for r in 0..rows {
        let p = data.as_mut_ptr().add(r * ld);
        // Lanes ≥ k are neither read nor written (masked), so `p + 16` is only dereferenced
        // when k > 16.
        let p1 = p.wrapping_add(16);
        let v0 = _mm512_mask_loadu_ps(neg, m0, p);
        let v1 = _mm512_mask_loadu_ps(neg, m1, p1);
        let mx = _mm512_set1_ps(_mm512_reduce_max_ps(_mm512_max_ps(v0, v1)));
        let (t0, e0) = exp_parts_avx512(_mm512_sub_ps(v0, mx));
        let (t1, e1) = exp_parts_avx512(_mm512_sub_ps(v1, mx));
        let x0 = _mm512_maskz_mov_ps(m0, _mm512_fmadd_ps(t0, e0, t0));
        let x1 = _mm512_maskz_mov_ps(m1, _mm512_fmadd_ps(t1, e1, t1));
        let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(_mm512_add_ps(x0, x1)));
        _mm512_mask_storeu_ps(p, m0, _mm512_mul_ps(x0, inv));
        _mm512_mask_storeu_ps(p1, m1, _mm512_mul_ps(x1, inv));
    }
}

/// `MR × 16` AVX2 register tile (half of a `PANEL`): bias init, k-loop of broadcast·panel FMAs, fused activation, store.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn tile<const MR: usize>(
    k: usize,
    a: *const f32,
    lda: usize,
    panel: *const f32,
    bias: *const f32,
    c: *mut f32,
    ldc: usize,
    act: Activation,
) {
    use std::arch::x86_64::*;
    let b0 = _mm256_loadu_ps(bias);
    let b1 = _mm256_loadu_ps(bias.add(8));
    let mut acc0 = [b0; MR];
    let mut acc1 = [b1; MR];
    for kk in 0..k {
        let w0 = _mm256_loadu_ps(panel.add(kk * PANEL));
        let w1 = _mm256_loadu_ps(panel.add(kk * PANEL + 8));
        for r in 0..MR {
            let av = _mm256_broadcast_ss(&*a.add(r * lda + kk));
            acc0[r] = _mm256_fmadd_ps(av, w0, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(av, w1, acc1[r]);
        }
    }
    for r in 0..MR {
        let (v0, v1) = match act {
            Activation::Identity => (acc0[r], acc1[r]),
            Activation::Relu => {
                let z = _mm256_setzero_ps();
                (_mm256_max_ps(acc0[r], z), _mm256_max_ps(acc1[r], z))
            }
            Activation::Elu => (elu_avx2(acc0[r]), elu_avx2(acc1[r])),
        };
        _mm256_storeu_ps(c.add(r * ldc), v0);
        _mm256_storeu_ps(c.add(r * ldc + 8), v1);
    }
}

/// ELU on 8 lanes: `x > 0 ? x : exp(x) − 1`, with a Cephes-style `expf` (≈ 1 ulp of exp;
/// absolute error of `exp(x) − 1` ≤ ~1e-7). Inference only; training uses `f32::exp_m1`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn elu_avx2(x: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    let xc = _mm256_max_ps(_mm256_min_ps(x, _mm256_setzero_ps()), _mm256_set1_ps(-87.0));
    let n = _mm256_round_ps(
        _mm256_mul_ps(xc, _mm256_set1_ps(std::f32::consts::LOG2_E)),
        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
    );
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), xc);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm256_set1_ps(1.987_569_1e-4);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.398_2e-3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.333_452e-3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.166_579_6e-2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.166_666_65));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5));
    // e^r − 1 = r + r²·p, then e^x − 1 = 2ⁿ·(e^r − 1) + (2ⁿ − 1).
    let em1_r = _mm256_fmadd_ps(_mm256_mul_ps(r, r), p, r);
    let two_n = _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)),
        23,
    ));
    let em1 = _mm256_fmadd_ps(two_n, em1_r, _mm256_sub_ps(two_n, _mm256_set1_ps(1.0)));
    let pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ);
    _mm256_blendv_ps(em1, x, pos)
}
