//! The CPU reference backend: every operation is the `crate::cpu` kernel the trainer uses.
use super::{
    philox, Backend, BnCache, Device, EpochStats, EpochTrainer, GemmForm, TrainHyper, TrainerSetup,
};
use crate::cpu::{self, AdamStep};
use crate::engine::{self, MaskSource, StepStats, Workspace};
use crate::error::MlpError;
use crate::inference::{Activation, DenseLayer, ServingMlp};
use crate::network::{BnRunning, Network, ParamKind, BN_EPS, BN_MOMENTUM};
use crate::Result;
use ndarray::{Array2, ArrayView1, ArrayView2};

/// The CPU backend (the reference all others are tested against).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuBackend;

impl Backend for CpuBackend {
    fn device(&self) -> Device {
        Device::Cpu
    }

    fn name(&self) -> String {
        "cpu".into()
    }

    fn gemm(
        &self,
        form: GemmForm,
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        b: &[f32],
        bias: Option<&[f32]>,
    ) -> Result<Vec<f32>> {
        check_len("gemm a", a.len(), m * k)?;
        check_len("gemm b", b.len(), k * n)?;
        let mut c = vec![0.0f32; m * n];
        match form {
            GemmForm::NT => {
                let zeros = vec![0.0f32; n];
                cpu::linear_forward(a, m, k, b, bias.unwrap_or(&zeros), &mut c);
                return Ok(c);
            }
            GemmForm::NN => cpu::linear_backward_input(a, m, k, b, n, &mut c),
            GemmForm::TN => cpu::linear_backward_weight_rows(a, k, m, 0, b, n, &mut c),
        }
        if let Some(bias) = bias {
            for row in c.chunks_exact_mut(n) {
                row.iter_mut().zip(bias).for_each(|(v, &b)| *v += b);
            }
        }
        Ok(c)
    }

    fn bias_act(
        &self,
        z: &mut [f32],
        n: usize,
        bias: Option<&[f32]>,
        act: Activation,
    ) -> Result<()> {
        if let Some(bias) = bias {
            for row in z.chunks_exact_mut(n) {
                row.iter_mut().zip(bias).for_each(|(v, &b)| *v += b);
            }
        }
        cpu::activation_forward(act, z);
        Ok(())
    }

    fn act_backward(
        &self,
        grad: &mut [f32],
        out: &[f32],
        mask: Option<&[f32]>,
        act: Activation,
    ) -> Result<()> {
        if let Some(mask) = mask {
            cpu::mul_assign(grad, mask);
        }
        cpu::activation_backward(act, out, grad);
        Ok(())
    }

    fn dropout(&self, src: &[f32], p: f32, seed: u64, stream: u64) -> Result<(Vec<f32>, Vec<f32>)> {
        let mask = philox::dropout_mask(src.len(), p, seed, stream);
        let dst = src.iter().zip(&mask).map(|(&s, &m)| s * m).collect();
        Ok((dst, mask))
    }

    fn column_sums(&self, data: &[f32], n: usize) -> Result<Vec<f32>> {
        let mut out = vec![0.0f32; n];
        cpu::column_sums(data, n, &mut out);
        Ok(out)
    }

    fn bn_train_forward(
        &self,
        z: &mut [f32],
        n: usize,
        gamma: &[f32],
        beta: &[f32],
        running: &mut BnRunning,
        act: Activation,
    ) -> Result<BnCache> {
        let rows = z.len() / n;
        // The trainer's arithmetic: two-pass statistics in f64, running stats with the
        // unbiased variance and momentum 0.1.
        let mut mean = vec![0.0f64; n];
        for r in z.chunks_exact(n) {
            mean.iter_mut()
                .zip(r)
                .for_each(|(m, &v)| *m += f64::from(v));
        }
        mean.iter_mut().for_each(|m| *m /= rows as f64);
        let mut var_sum = vec![0.0f64; n];
        for r in z.chunks_exact(n) {
            for ((s, &v), &m) in var_sum.iter_mut().zip(r).zip(&mean) {
                let d = f64::from(v) - m;
                *s += d * d;
            }
        }
        let mom = f64::from(BN_MOMENTUM);
        let mut cache = BnCache {
            xhat: vec![0.0; z.len()],
            mean: vec![0.0; n],
            inv_std: vec![0.0; n],
        };
        for j in 0..n {
            let var = var_sum[j] / rows as f64;
            cache.inv_std[j] = (1.0 / (var + BN_EPS).sqrt()) as f32;
            cache.mean[j] = mean[j] as f32;
            let unbiased = if rows > 1 {
                var_sum[j] / (rows - 1) as f64
            } else {
                var
            };
            running.mean[j] = (mom * mean[j] + (1.0 - mom) * f64::from(running.mean[j])) as f32;
            running.var[j] = (mom * unbiased + (1.0 - mom) * f64::from(running.var[j])) as f32;
        }
        running.num_batches_tracked += 1;
        cpu::batchnorm_forward(
            z,
            n,
            &cache.mean,
            &cache.inv_std,
            gamma,
            beta,
            &mut cache.xhat,
        );
        cpu::activation_forward(act, z);
        Ok(cache)
    }

    fn bn_eval_forward(
        &self,
        z: &mut [f32],
        n: usize,
        gamma: &[f32],
        beta: &[f32],
        running: &BnRunning,
        act: Activation,
    ) -> Result<()> {
        let eps = BN_EPS as f32;
        for row in z.chunks_exact_mut(n) {
            for j in 0..n {
                let h = (row[j] - running.mean[j]) / (running.var[j] + eps).sqrt();
                row[j] = gamma[j] * h + beta[j];
            }
        }
        cpu::activation_forward(act, z);
        Ok(())
    }

    fn bn_backward(
        &self,
        dy: &mut [f32],
        xhat: &[f32],
        n: usize,
        gamma: &[f32],
        inv_std: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let rows = dy.len() / n;
        let (mut dbeta, mut dgamma) = (vec![0.0f32; n], vec![0.0f32; n]);
        cpu::column_sums_and_dots(dy, xhat, n, &mut dbeta, &mut dgamma);
        cpu::batchnorm_backward(dy, xhat, n, rows, gamma, inv_std, &dbeta, &dgamma);
        Ok((dgamma, dbeta))
    }

    fn softmax_ce(
        &self,
        logits: &mut [f32],
        k: usize,
        labels: &[usize],
        row_weights: &[f32],
    ) -> Result<StepStats> {
        let weight_sum: f64 = row_weights.iter().map(|&w| f64::from(w)).sum();
        let (loss_sum, correct) =
            cpu::softmax_ce_backward(logits, k, labels, row_weights, weight_sum as f32);
        Ok(StepStats {
            loss_sum,
            weight_sum,
            correct,
        })
    }

    fn adam(
        &self,
        params: &mut [f32],
        grads: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        h: AdamStep,
    ) -> Result<()> {
        cpu::adam_step(params, grads, m, v, h);
        Ok(())
    }

    fn train_step(
        &self,
        net: &mut Network,
        x: &[f32],
        labels: &[usize],
        row_weights: &[f32],
        masks: MaskSource<'_>,
    ) -> Result<(StepStats, Vec<f32>)> {
        let rows = super::check_step_shapes(net, x, labels, row_weights)?;
        let mut ws = Workspace::new(net, rows);
        let st = engine::train_step(net, &mut ws, x, labels, row_weights, masks, None);
        Ok((st, ws.grads))
    }

    fn trainer<'a>(&'a self, setup: TrainerSetup<'a>) -> Result<Box<dyn EpochTrainer + 'a>> {
        Ok(Box::new(CpuTrainer::new(setup)))
    }

    fn logits(&self, layers: &[DenseLayer], x: ArrayView2<f32>) -> Result<Array2<f32>> {
        Ok(ServingMlp::new(layers.to_vec())?.logits(x))
    }
}

pub(crate) fn check_len(what: &str, got: usize, want: usize) -> Result<()> {
    if got < want {
        return Err(MlpError::Shape(format!(
            "{what}: {got} values, need {want}"
        )));
    }
    Ok(())
}

/// The trainer's CPU loop body (`MlpValidParams::fit` runs on this).
struct CpuTrainer<'a> {
    net: Network,
    x: ArrayView2<'a, f32>,
    y: ArrayView1<'a, usize>,
    cw: &'a [f32],
    batch: usize,
    h: TrainHyper,
    ws: Workspace,
    xb: Vec<f32>,
    yb: Vec<usize>,
    wb: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    weight_ranges: Vec<std::ops::Range<usize>>,
    has_bn: bool,
}

impl<'a> CpuTrainer<'a> {
    fn new(s: TrainerSetup<'a>) -> Self {
        let net = s.network;
        let nf = s.x.ncols();
        let np = net.params.len();
        let weight_ranges = net
            .layout
            .iter()
            .filter(|e| e.kind == ParamKind::Weight)
            .map(|e| e.range())
            .collect();
        let has_bn = net.arch.hidden.iter().any(|h| h.batch_norm);
        Self {
            ws: Workspace::new(&net, s.batch),
            xb: vec![0.0; s.batch * nf],
            yb: vec![0; s.batch],
            wb: vec![0.0; s.batch],
            m: vec![0.0; np],
            v: vec![0.0; np],
            weight_ranges,
            has_bn,
            net,
            x: s.x,
            y: s.y,
            cw: s.class_weights,
            batch: s.batch,
            h: s.hyper,
        }
    }
}

impl EpochTrainer for CpuTrainer<'_> {
    fn run_epoch(
        &mut self,
        epoch: usize,
        order: &[usize],
        first_step: usize,
    ) -> Result<EpochStats> {
        let h = self.h;
        let nf = self.x.ncols();
        let mut step = first_step;
        let mut out = EpochStats {
            lr_last: h.max_lr,
            ..Default::default()
        };
        let mut weight_rows = 0.0f64;
        for chunk in order.chunks(self.batch) {
            let rows = chunk.len();
            // PyTorch's BatchNorm rejects a batch of one row in train mode: skip it.
            if rows < 2 && self.has_bn {
                step += 1;
                continue;
            }
            for (r, &i) in chunk.iter().enumerate() {
                let dst = &mut self.xb[r * nf..(r + 1) * nf];
                let row = self.x.row(i);
                match row.as_slice() {
                    Some(src) => dst.copy_from_slice(src),
                    None => dst.iter_mut().zip(row.iter()).for_each(|(d, &s)| *d = s),
                }
                self.yb[r] = self.y[i];
                self.wb[r] = self.cw[self.y[i]];
            }
            let st = engine::train_step(
                &mut self.net,
                &mut self.ws,
                &self.xb[..rows * nf],
                &self.yb[..rows],
                &self.wb[..rows],
                MaskSource::Random {
                    seed: h.seed,
                    step: step as u64,
                },
                None,
            );
            if !(st.loss_sum / st.weight_sum.max(f64::MIN_POSITIVE)).is_finite() {
                return Err(MlpError::Diverged {
                    epoch,
                    loss: (st.loss_sum / st.weight_sum) as f32,
                });
            }
            out.loss_sum += st.loss_sum / st.weight_sum * rows as f64;
            weight_rows += rows as f64;
            out.correct += st.correct;
            out.rows += rows;
            if h.sklearn && h.alpha > 0.0 {
                // sklearn: loss += alpha/2·‖W‖²/batch ⇒ dW += alpha·W/batch.
                let s = (h.alpha / rows as f64) as f32;
                for r in &self.weight_ranges {
                    for i in r.clone() {
                        self.ws.grads[i] += s * self.net.params[i];
                    }
                }
            }
            let (lr, b1) = h.schedule.at(step, h.total_steps, h.max_lr, h.beta1);
            out.lr_last = lr;
            cpu::adam_step(
                &mut self.net.params,
                &self.ws.grads,
                &mut self.m,
                &mut self.v,
                AdamStep {
                    lr,
                    beta1: b1,
                    beta2: h.beta2,
                    eps: h.eps,
                    weight_decay: h.weight_decay,
                    t: step as u64 + 1,
                    sklearn_form: h.sklearn,
                },
            );
            step += 1;
        }
        debug_assert_eq!(weight_rows as usize, out.rows);
        out.next_step = step;
        Ok(out)
    }

    fn network(&mut self) -> Result<Network> {
        Ok(self.net.clone())
    }
}
