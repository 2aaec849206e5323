//! One training step (train-mode forward, loss, backward) over a contiguous batch.
//!
//! The batch is cut into [`ROW_CHUNK`]-row chunks; rayon runs chunks in parallel and every
//! reduction over rows (BatchNorm statistics, weight and bias gradients) is a per-chunk partial
//! summed in chunk order, so the result is bit-identical for any number of threads.
use crate::cpu::{self, ROW_CHUNK};
use crate::network::{BlockOffsets, Network, BN_EPS, BN_MOMENTUM};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Where dropout masks come from in a training step.
#[derive(Debug, Clone, Copy)]
pub enum MaskSource<'a> {
    /// Fresh Bernoulli masks from a counter-based seed `(seed, step, block, chunk)`.
    Random {
        /// Training seed.
        seed: u64,
        /// Global optimizer step.
        step: u64,
    },
    /// Given keep-masks (1 = keep, 0 = drop), one `rows × units` row-major buffer per hidden
    /// block, in block order (blocks without dropout are ignored). Used for PyTorch parity.
    Explicit(&'a [Vec<f32>]),
}

/// Sums of one step: loss numerator `Σ w_y·ℓ`, denominator `Σ w_y`, correct predictions.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepStats {
    /// `Σ w_y·(−log p_y)`.
    pub loss_sum: f64,
    /// `Σ w_y`.
    pub weight_sum: f64,
    /// Rows whose train-mode arg-max equals the label.
    pub correct: usize,
}

/// Reusable buffers for training steps of up to `cap` rows.
pub struct Workspace {
    cap: usize,
    act: Vec<Vec<f32>>,
    xhat: Vec<Vec<f32>>,
    mask: Vec<Vec<f32>>,
    dropped: Vec<Vec<f32>>,
    mean: Vec<Vec<f32>>,
    inv_std: Vec<Vec<f32>>,
    ga: Vec<f32>,
    gb: Vec<f32>,
    partial: Vec<f32>,
    partial2: Vec<f32>,
    partial64: Vec<f64>,
    /// `Wᵀ` of the layer being run forward (`[k, n]`), the forward GEMM's packed operand.
    wt: Vec<f32>,
    /// Gradient of the mean loss w.r.t. every parameter, laid out like `Network::params`.
    pub grads: Vec<f32>,
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Workspace {
    /// Buffers for `net`'s architecture and batches of at most `cap` rows.
    pub fn new(net: &Network, cap: usize) -> Self {
        let a = &net.arch;
        let nb = a.n_blocks();
        let chunks = cap.div_ceil(ROW_CHUNK).max(1);
        let mut act = Vec::new();
        let mut xhat = Vec::new();
        let mut mask = Vec::new();
        let mut dropped = Vec::new();
        let mut mean = Vec::new();
        let mut inv_std = Vec::new();
        let mut max_block = 0;
        for b in 0..nb {
            let (i, o) = a.block_dims(b);
            max_block = max_block.max(i * o);
            act.push(vec![0.0; cap * o]);
            let hidden = a.hidden.get(b);
            let bn = hidden.is_some_and(|h| h.batch_norm);
            let drop = hidden.is_some_and(|h| h.dropout > 0.0);
            xhat.push(if bn { vec![0.0; cap * o] } else { Vec::new() });
            mean.push(if bn { vec![0.0; o] } else { Vec::new() });
            inv_std.push(if bn { vec![0.0; o] } else { Vec::new() });
            mask.push(if drop { vec![0.0; cap * o] } else { Vec::new() });
            dropped.push(if drop { vec![0.0; cap * o] } else { Vec::new() });
        }
        let w = a.max_width();
        Self {
            cap,
            act,
            xhat,
            mask,
            dropped,
            mean,
            inv_std,
            ga: vec![0.0; cap * w],
            gb: vec![0.0; cap * w],
            partial: vec![0.0; chunks * w],
            partial2: vec![0.0; chunks * w],
            partial64: vec![0.0; chunks * w],
            wt: vec![0.0; max_block],
            grads: vec![0.0; net.params.len()],
        }
    }

    /// Logits of the last step (valid until the backward pass overwrites them; see
    /// [`train_step`]'s `keep_logits`).
    pub fn logits(&self, rows: usize, n_classes: usize) -> &[f32] {
        &self.act[self.act.len() - 1][..rows * n_classes]
    }
}

/// Train-mode forward, weighted softmax cross-entropy and backward over `rows` rows of `x`
/// (`rows × n_features`, row-major). Updates BatchNorm running stats like PyTorch's train
/// mode. Writes the gradient of `Σ w_y ℓ / Σ w_y` into `ws.grads`. If `logits_out` is given,
/// the train-mode logits are copied there before the backward pass.
#[allow(clippy::too_many_arguments)]
pub fn train_step(
    net: &mut Network,
    ws: &mut Workspace,
    x: &[f32],
    labels: &[usize],
    row_weights: &[f32],
    masks: MaskSource<'_>,
    logits_out: Option<&mut [f32]>,
) -> StepStats {
    // Run the whole step on one pool worker: the ~40 parallel loops below then fork from inside
    // the pool instead of each injecting a job from outside and parking the caller (a futex
    // sleep/wake per loop, ~10 % of a step with one thread).
    rayon::scope(|_| train_step_in_pool(net, ws, x, labels, row_weights, masks, logits_out))
}

#[allow(clippy::too_many_arguments)]
fn train_step_in_pool(
    net: &mut Network,
    ws: &mut Workspace,
    x: &[f32],
    labels: &[usize],
    row_weights: &[f32],
    masks: MaskSource<'_>,
    logits_out: Option<&mut [f32]>,
) -> StepStats {
    let rows = labels.len();
    assert!(
        rows <= ws.cap && rows > 0,
        "batch of {rows} rows for a workspace of {}",
        ws.cap
    );
    let arch = net.arch.clone();
    let offs = net.block_offsets();
    let nb = arch.n_blocks();
    let n_chunks = rows.div_ceil(ROW_CHUNK);

    // ---------------- forward ----------------
    for b in 0..nb {
        let (k, n) = arch.block_dims(b);
        let o: BlockOffsets = offs[b];
        let (before, rest) = ws.act.split_at_mut(b);
        let out = &mut rest[0][..rows * n];
        let input: &[f32] = if b == 0 {
            &x[..rows * k]
        } else if !ws.dropped[b - 1].is_empty() {
            &ws.dropped[b - 1][..rows * k]
        } else {
            &before[b - 1][..rows * k]
        };
        let w = &net.params[o.weight..o.weight + n * k];
        let bias = &net.params[o.bias..o.bias + n];
        let hidden = arch.hidden.get(b).copied();
        let bn = hidden.is_some_and(|h| h.batch_norm);
        let p64 = &mut ws.partial64[..n_chunks * n];
        let wt = &mut ws.wt[..n * k];
        if cpu::training_gemm_avx512() {
            cpu::transpose_into(w, n, k, wt);
        }
        let wt: &[f32] = wt;
        out.par_chunks_mut(ROW_CHUNK * n)
            .zip(input.par_chunks(ROW_CHUNK * k))
            .zip(p64.par_chunks_mut(n))
            .for_each(|((oc, ic), pc)| {
                cpu::linear_forward_t(ic, oc.len() / n, k, w, wt, bias, oc);
                if bn {
                    column_sums_f64(oc, n, pc);
                }
            });
        let Some(h) = hidden else { continue };
        if bn {
            let (g, be) = (o.gamma.unwrap_or(0), o.beta.unwrap_or(0));
            // Whole-batch statistics in f64 (PyTorch's CPU accumulate type), chunk order.
            let mut mean = vec![0.0f64; n];
            for pc in p64.chunks_exact(n) {
                mean.iter_mut().zip(pc).for_each(|(m, &v)| *m += v);
            }
            mean.iter_mut().for_each(|m| *m /= rows as f64);
            let mean32: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
            out.par_chunks(ROW_CHUNK * n)
                .zip(p64.par_chunks_mut(n))
                .for_each(|(oc, pc)| {
                    pc.fill(0.0);
                    for r in oc.chunks_exact(n) {
                        for ((p, &v), &m) in pc.iter_mut().zip(r).zip(&mean) {
                            let d = f64::from(v) - m;
                            *p += d * d;
                        }
                    }
                });
            let mut var_sum = vec![0.0f64; n];
            for pc in p64.chunks_exact(n) {
                var_sum.iter_mut().zip(pc).for_each(|(s, &v)| *s += v);
            }
            let running = net.running[b]
                .as_mut()
                .expect("BatchNorm block has running stats");
            let mom = f64::from(BN_MOMENTUM);
            for j in 0..n {
                let var = var_sum[j] / rows as f64;
                ws.inv_std[b][j] = (1.0 / (var + BN_EPS).sqrt()) as f32;
                ws.mean[b][j] = mean32[j];
                let unbiased = if rows > 1 {
                    var_sum[j] / (rows - 1) as f64
                } else {
                    var
                };
                running.mean[j] = (mom * mean[j] + (1.0 - mom) * f64::from(running.mean[j])) as f32;
                running.var[j] = (mom * unbiased + (1.0 - mom) * f64::from(running.var[j])) as f32;
            }
            running.num_batches_tracked += 1;
            let gamma = &net.params[g..g + n];
            let beta = &net.params[be..be + n];
            let (mean_b, inv_b) = (&ws.mean[b], &ws.inv_std[b]);
            out.par_chunks_mut(ROW_CHUNK * n)
                .zip(ws.xhat[b][..rows * n].par_chunks_mut(ROW_CHUNK * n))
                .for_each(|(oc, xc)| {
                    cpu::batchnorm_forward(oc, n, mean_b, inv_b, gamma, beta, xc);
                    cpu::activation_forward(h.activation, oc);
                });
        } else {
            out.par_chunks_mut(ROW_CHUNK * n)
                .for_each(|oc| cpu::activation_forward(h.activation, oc));
        }
        if h.dropout > 0.0 {
            let mask = &mut ws.mask[b][..rows * n];
            let dropped = &mut ws.dropped[b][..rows * n];
            let scale = 1.0 / (1.0 - h.dropout);
            mask.par_chunks_mut(ROW_CHUNK * n)
                .zip(dropped.par_chunks_mut(ROW_CHUNK * n))
                .zip(out.par_chunks(ROW_CHUNK * n))
                .enumerate()
                .for_each(|(c, ((mc, dc), oc))| {
                    match masks {
                        MaskSource::Random { seed, step } => {
                            let s = splitmix(
                                seed ^ splitmix(
                                    step.wrapping_mul(1 << 20) ^ ((b as u64) << 12) ^ c as u64,
                                ),
                            );
                            let mut rng = ChaCha8Rng::seed_from_u64(s);
                            cpu::dropout_mask(&mut rng, h.dropout, mc);
                        }
                        MaskSource::Explicit(m) => {
                            let start = c * ROW_CHUNK * n;
                            let len = mc.len();
                            for (d, &keep) in mc.iter_mut().zip(&m[b][start..start + len]) {
                                *d = if keep != 0.0 { scale } else { 0.0 };
                            }
                        }
                    }
                    dc.iter_mut()
                        .zip(oc.iter().zip(mc.iter()))
                        .for_each(|(d, (&v, &m))| *d = v * m);
                });
        }
    }

    // ---------------- loss ----------------
    let kc = arch.n_classes;
    let last = nb - 1;
    if let Some(lo) = logits_out {
        lo[..rows * kc].copy_from_slice(&ws.act[last][..rows * kc]);
    }
    let weight_sum: f64 = row_weights[..rows].iter().map(|&w| f64::from(w)).sum();
    let wt = weight_sum as f32;
    let stats: Vec<(f64, usize)> = ws.act[last][..rows * kc]
        .par_chunks_mut(ROW_CHUNK * kc)
        .zip(labels.par_chunks(ROW_CHUNK))
        .zip(row_weights[..rows].par_chunks(ROW_CHUNK))
        .map(|((lc, yc), wc)| cpu::softmax_ce_backward(lc, kc, yc, wc, wt))
        .collect();
    let mut st = StepStats {
        weight_sum,
        ..Default::default()
    };
    for (l, c) in stats {
        st.loss_sum += l;
        st.correct += c;
    }

    // ---------------- backward ----------------
    // dz of the output layer lives in act[last]; move it to `ga` so act stays read-only.
    ws.ga[..rows * kc].copy_from_slice(&ws.act[last][..rows * kc]);
    for b in (0..nb).rev() {
        let (k, n) = arch.block_dims(b);
        let o = offs[b];
        let dz = &ws.ga[..rows * n];
        let input: &[f32] = if b == 0 {
            &x[..rows * k]
        } else if !ws.dropped[b - 1].is_empty() {
            &ws.dropped[b - 1][..rows * k]
        } else {
            &ws.act[b - 1][..rows * k]
        };
        let w = &net.params[o.weight..o.weight + n * k];
        let pb = &mut ws.partial2[..n_chunks * n];
        let dx_chunks: Vec<Option<&mut [f32]>> = if b > 0 {
            ws.gb[..rows * k]
                .chunks_mut(ROW_CHUNK * k)
                .map(Some)
                .collect()
        } else {
            (0..n_chunks).map(|_| None).collect()
        };
        dz.par_chunks(ROW_CHUNK * n)
            .zip(pb.par_chunks_mut(n))
            .zip(dx_chunks)
            .for_each(|((dc, pbc), dxc)| {
                let r = dc.len() / n;
                cpu::column_sums(dc, n, pbc);
                if let Some(dxc) = dxc {
                    cpu::linear_backward_input(dc, r, n, w, k, dxc);
                }
            });
        // Weight gradient over the whole batch, split by output rows (never by batch rows):
        // each element is one in-order sum over all rows, whatever the thread count.
        ws.grads[o.weight..o.weight + n * k]
            .par_chunks_mut(DW_ROW_BLOCK * k)
            .enumerate()
            .for_each(|(t, dwc)| {
                cpu::linear_backward_weight_rows(dz, rows, n, t * DW_ROW_BLOCK, input, k, dwc);
            });
        if arch.hidden.get(b).is_some_and(|h| h.batch_norm) {
            // A Linear bias feeding BatchNorm cancels against the batch mean: its gradient is
            // exactly 0. Store that, not the ~1e-9 rounding residue, which Adam's m/√v would
            // amplify into random ±lr steps.
            ws.grads[o.bias..o.bias + n].fill(0.0);
        } else {
            sum_partials(pb, n, &mut ws.grads[o.bias..o.bias + n]);
        }
        if b == 0 {
            break;
        }
        // Gradient w.r.t. the previous hidden block's output is in gb: undo dropout,
        // activation and BatchNorm to get that block's dz.
        let hb = b - 1;
        let h = arch.hidden[hb];
        let m = k;
        let dy = &mut ws.gb[..rows * m];
        let act = &ws.act[hb][..rows * m];
        let mask = &ws.mask[hb];
        dy.par_chunks_mut(ROW_CHUNK * m)
            .zip(act.par_chunks(ROW_CHUNK * m))
            .enumerate()
            .for_each(|(c, (dc, ac))| {
                if h.dropout > 0.0 {
                    let start = c * ROW_CHUNK * m;
                    cpu::mul_assign(dc, &mask[start..start + dc.len()]);
                }
                cpu::activation_backward(h.activation, ac, dc);
            });
        if h.batch_norm {
            let ob = offs[hb];
            let (g, be) = (ob.gamma.unwrap_or(0), ob.beta.unwrap_or(0));
            let xhat = &ws.xhat[hb][..rows * m];
            let p1 = &mut ws.partial2[..n_chunks * m];
            let p2 = &mut ws.partial[..n_chunks * m];
            dy.par_chunks(ROW_CHUNK * m)
                .zip(xhat.par_chunks(ROW_CHUNK * m))
                .zip(p1.par_chunks_mut(m))
                .zip(p2.par_chunks_mut(m))
                .for_each(|(((dc, xc), a), bsum)| {
                    cpu::column_sums_and_dots(dc, xc, m, a, bsum);
                });
            sum_partials(p1, m, &mut ws.grads[be..be + m]);
            sum_partials(p2, m, &mut ws.grads[g..g + m]);
            let gamma = &net.params[g..g + m];
            let inv = &ws.inv_std[hb];
            let sum_dy = &ws.grads[be..be + m];
            let sum_dy_xhat = &ws.grads[g..g + m];
            dy.par_chunks_mut(ROW_CHUNK * m)
                .zip(xhat.par_chunks(ROW_CHUNK * m))
                .for_each(|(dc, xc)| {
                    cpu::batchnorm_backward(dc, xc, m, rows, gamma, inv, sum_dy, sum_dy_xhat);
                });
        }
        std::mem::swap(&mut ws.ga, &mut ws.gb);
    }
    st
}

/// Rows of a weight gradient per parallel task (a multiple of the kernel's 8-row tile).
const DW_ROW_BLOCK: usize = 32;

fn column_sums_f64(data: &[f32], cols: usize, out: &mut [f64]) {
    out.fill(0.0);
    for r in data.chunks_exact(cols) {
        out.iter_mut().zip(r).for_each(|(o, &v)| *o += f64::from(v));
    }
}

/// `out = Σ_c partials[c]` in chunk order.
fn sum_partials(partials: &[f32], len: usize, out: &mut [f32]) {
    out.copy_from_slice(&partials[..len]);
    for pc in partials.chunks_exact(len).skip(1) {
        out.iter_mut().zip(pc).for_each(|(o, &v)| *o += v);
    }
}
