//! Learning-rate schedules, stepped once per batch.
use serde::{Deserialize, Serialize};

/// How the learning rate (and Adam's β1) evolves per optimizer step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Schedule {
    /// Fixed learning rate and β1.
    Constant,
    /// PyTorch's `OneCycleLR` (two phases, cosine annealing).
    OneCycle {
        /// Fraction of steps spent increasing the lr (PyTorch default 0.3).
        pct_start: f64,
        /// `initial_lr = max_lr / div_factor` (default 25).
        div_factor: f64,
        /// `min_lr = initial_lr / final_div_factor` (default 1e4).
        final_div_factor: f64,
        /// Cycle β1 between `max_momentum` and `base_momentum` (default true).
        cycle_momentum: bool,
        /// Lowest β1 (default 0.85).
        base_momentum: f64,
        /// Highest β1 (default 0.95).
        max_momentum: f64,
    },
}

impl Schedule {
    /// PyTorch's `OneCycleLR` defaults with `three_phase=False`, `anneal_strategy='cos'`.
    pub fn one_cycle_default() -> Self {
        Schedule::OneCycle {
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 1e4,
            cycle_momentum: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
        }
    }

    /// `(lr, beta1)` used by optimizer step `step` (0-based) of `total_steps`, for peak
    /// learning rate `max_lr` and the optimizer's own `beta1` (used when not cycled).
    /// Mirrors `torch.optim.lr_scheduler.OneCycleLR.get_lr` arithmetic in f64.
    pub fn at(&self, step: usize, total_steps: usize, max_lr: f64, beta1: f64) -> (f64, f64) {
        match *self {
            Schedule::Constant => (max_lr, beta1),
            Schedule::OneCycle {
                pct_start,
                div_factor,
                final_div_factor,
                cycle_momentum,
                base_momentum,
                max_momentum,
            } => {
                let initial_lr = max_lr / div_factor;
                let min_lr = initial_lr / final_div_factor;
                let anneal = |start: f64, end: f64, pct: f64| {
                    let cos_out = (std::f64::consts::PI * pct).cos() + 1.0;
                    end + (start - end) / 2.0 * cos_out
                };
                // (end_step, lr start, lr end, momentum start, momentum end)
                let phases = [
                    (
                        pct_start * total_steps as f64 - 1.0,
                        initial_lr,
                        max_lr,
                        max_momentum,
                        base_momentum,
                    ),
                    (
                        total_steps as f64 - 1.0,
                        max_lr,
                        min_lr,
                        base_momentum,
                        max_momentum,
                    ),
                ];
                let step_num = step as f64;
                let mut start_step = 0.0;
                for (i, &(end_step, lr0, lr1, m0, m1)) in phases.iter().enumerate() {
                    if step_num <= end_step || i == phases.len() - 1 {
                        let pct = (step_num - start_step) / (end_step - start_step);
                        let lr = anneal(lr0, lr1, pct);
                        let b1 = if cycle_momentum {
                            anneal(m0, m1, pct)
                        } else {
                            beta1
                        };
                        return (lr, b1);
                    }
                    start_step = end_step;
                }
                unreachable!("the last phase always returns")
            }
        }
    }
}
