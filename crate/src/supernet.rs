//! HASB supernet training (Double Rounding, DESIGN §3): from a multi-bit int8 model, train
//! mixed policies so that any per-layer choice of widths from the candidate list works.
//!
//! Each step forwards the batch at the highest width everywhere (so the int8 masters that every
//! width derives from keep their accuracy), with `lowest_too` also at the lowest admitted width
//! everywhere (the "sandwich": the extreme the random draws almost never reach), and at one
//! mixed policy drawn by [`sampling`] — sums the gradients ([`crate::qat::joint`], ALRS per layer by the width it
//! ran at) and makes one update. Gaussian noise at the model's σ augments every batch.
//!
//! Batch-norm: the authors keep one BN per pair (layer width, input width) while training.
//! Here a layer's BN is chosen by its own width only (one per width, as the multi-bit model and
//! the deployed `Switchable` already do): with weights and input at the same width per layer,
//! the sampled policies never separate the two, and deployment then needs no folding step.

pub mod sampling;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::qat::joint::{JointGradients, JointOptimisers};
use crate::qat::{
    cosine, finish, image_count, noisy_batch, top_width, validate_widths, width_loss,
    with_joint_training, Lsq,
};
use crate::quant::{Switchable, MAX_BITS};
use crate::train::TrainConfig;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::rc::Rc;

/// Settings of supernet training.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SupernetConfig {
    pub base: TrainConfig,
    /// Candidate widths of every layer; must include 8 (the stored masters).
    pub bits: Vec<u8>,
    pub alrs: bool,
    pub scale_lr: f64,
    /// Fraction of the steps over which the lower widths are let in (gradual bit-switching).
    pub switch_fraction: f64,
    /// Also train the lowest admitted width everywhere at every step.
    #[serde(default)]
    pub lowest_too: bool,
}

impl SupernetConfig {
    pub fn validate(&self) -> Result<()> {
        self.base.validate()?;
        validate_widths(&self.bits, self.scale_lr)?;
        if !self.bits.contains(&MAX_BITS) {
            return Err(Error::Invalid(format!(
                "the supernet's widths {:?} must include {MAX_BITS}, the stored masters' width",
                self.bits
            )));
        }
        if !(0.0..=1.0).contains(&self.switch_fraction) {
            return Err(Error::Invalid(format!(
                "the bit-switching fraction must be in [0, 1], got {}",
                self.switch_fraction
            )));
        }
        Ok(())
    }
}

/// What the caller hears after every step.
#[derive(Clone, Debug, Serialize)]
pub struct SupernetStepReport {
    pub epoch: usize,
    pub step: usize,
    pub steps_per_epoch: usize,
    /// The loss at the highest width everywhere and at the sampled policy.
    pub loss_top: f32,
    pub loss_sampled: f32,
    /// The sampled policy's widths, forward order.
    pub widths: Vec<u8>,
    pub lr: f64,
}

/// Per epoch: mean losses, and how often each layer trained at each width.
#[derive(Clone, Debug, Serialize)]
pub struct SupernetEpochReport {
    pub epoch: usize,
    pub mean_loss_top: f32,
    pub mean_loss_sampled: f32,
    /// `width_counts[l][k]`: steps in which layer l ran at `bits[k]`.
    pub width_counts: Vec<Vec<usize>>,
}

/// Trains `model` (a multi-bit int8 model at w8a8, with `switchable` its masters and scales) as
/// a supernet over `cfg.bits`, sampling by `traces` (one Hessian trace per layer). Returns the
/// new switchable model; `model` ends at w8a8, marked as a supernet with the traces stored.
pub fn train_supernet(
    model: &mut Model,
    switchable: &Switchable,
    traces: &[f64],
    data: &Dataset,
    cfg: &SupernetConfig,
    on_step: &mut dyn FnMut(&SupernetStepReport),
) -> Result<(Switchable, Vec<SupernetEpochReport>)> {
    cfg.validate()?;
    if traces.len() != model.layers.len() {
        return Err(Error::Invalid(format!(
            "expected {} Hessian traces, got {}",
            model.layers.len(),
            traces.len()
        )));
    }
    let weights = sampling::width_weights(traces, &cfg.bits)?;
    let base = &cfg.base;
    let n = image_count(base, data)?;
    let lsq = Rc::new(Lsq::from_switchable(model, switchable, &cfg.bits)?);
    let reports =
        with_joint_training(model, &lsq, base, cfg.scale_lr, cfg.alrs, |m, vars, opt| {
            run_epochs(m, data, n, &lsq, vars, opt, &weights, cfg, on_step)
        })?;
    let switchable = finish(model, &lsq)?;
    model.meta.supernet = true;
    model.meta.bits = cfg.bits.clone();
    model.meta.hessian_traces = Some(traces.to_vec());
    Ok((switchable, reports))
}

#[allow(clippy::too_many_arguments)]
fn run_epochs(
    model: &mut Model,
    data: &Dataset,
    n: usize,
    lsq: &Lsq,
    vars: &[candle_core::Var],
    opt: &mut JointOptimisers,
    weights: &[Vec<f64>],
    cfg: &SupernetConfig,
    on_step: &mut dyn FnMut(&SupernetStepReport),
) -> Result<Vec<SupernetEpochReport>> {
    let base = &cfg.base;
    let device = model.weights[0].device().clone();
    let mut rng = rand::rngs::StdRng::seed_from_u64(base.seed);
    let steps_per_epoch = n.div_ceil(base.batch_size);
    let total_steps = steps_per_epoch * base.epochs;
    let top = top_width(&cfg.bits);
    let mut order: Vec<usize> = (0..n).collect();
    let mut reports = Vec::new();
    for epoch in 0..base.epochs {
        order.shuffle(&mut rng);
        let (mut sum_top, mut sum_sampled) = (0f32, 0f32);
        let mut width_counts = vec![vec![0usize; cfg.bits.len()]; model.layers.len()];
        for (step, idx) in order.chunks(base.batch_size).enumerate() {
            let t = epoch * steps_per_epoch + step;
            let schedule = cosine(t, total_steps);
            let lowest = sampling::lowest_admitted(
                &cfg.bits,
                t as f64 / total_steps as f64,
                cfg.switch_fraction,
            );
            let widths = sampling::sample_widths(weights, &cfg.bits, lowest, &mut rng)?;
            let (x, labels) = noisy_batch(data, idx, base.sigma, &mut rng, &device)?;
            let mut grads = JointGradients::new(vars, lsq);
            lsq.set_uniform(top);
            let loss_top = width_loss(model, lsq, &x, &labels)?;
            grads.add(&loss_top, lsq, cfg.alrs)?;
            if cfg.lowest_too {
                let k = cfg
                    .bits
                    .iter()
                    .position(|&b| b == lowest)
                    .expect("a listed width");
                lsq.set_uniform(k);
                let loss = width_loss(model, lsq, &x, &labels)?;
                grads.add(&loss, lsq, cfg.alrs)?;
            }
            lsq.set_widths(&widths);
            let loss_sampled = width_loss(model, lsq, &x, &labels)?;
            grads.add(&loss_sampled, lsq, cfg.alrs)?;
            opt.step(&grads, schedule)?;
            let (loss_top, loss_sampled) = (
                loss_top.to_scalar::<f32>()?,
                loss_sampled.to_scalar::<f32>()?,
            );
            if !(loss_top.is_finite() && loss_sampled.is_finite()) {
                return Err(Error::Invalid(format!(
                    "supernet training diverged (losses {loss_top}, {loss_sampled}) at epoch {epoch} step {step}"
                )));
            }
            sum_top += loss_top;
            sum_sampled += loss_sampled;
            for (l, &k) in widths.iter().enumerate() {
                width_counts[l][k] += 1;
            }
            on_step(&SupernetStepReport {
                epoch,
                step,
                steps_per_epoch,
                loss_top,
                loss_sampled,
                widths: widths.iter().map(|&k| cfg.bits[k]).collect(),
                lr: base.lr * schedule,
            });
        }
        reports.push(SupernetEpochReport {
            epoch,
            mean_loss_top: sum_top / steps_per_epoch as f32,
            mean_loss_sampled: sum_sampled / steps_per_epoch as f32,
            width_counts,
        });
    }
    Ok(reports)
}

#[cfg(test)]
mod tests;
