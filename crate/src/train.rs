//! Training of the base classifier with Gaussian noise augmentation at the σ it will be
//! smoothed with (Cohen et al., 2019): each training image gets fresh N(0, σ²) noise every
//! time it is seen. AdamW with a cosine learning-rate schedule; every random number comes
//! from `TrainConfig::seed`.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::noise;
use candle_core::{Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainConfig {
    /// Noise level of the augmentation (σ ≥ 0; 0 trains without noise).
    pub sigma: f32,
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate (cosine-annealed to 0 over the run).
    pub lr: f64,
    pub weight_decay: f64,
    pub seed: u64,
    /// Train on only the first `limit` images (None: all).
    pub limit: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            sigma: 0.25,
            epochs: 3,
            batch_size: 128,
            lr: 3e-3,
            weight_decay: 1e-4,
            seed: 0,
            limit: None,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        if !(self.sigma.is_finite() && self.sigma >= 0.0) {
            return Err(Error::Invalid(format!(
                "training σ must be ≥ 0, got {}",
                self.sigma
            )));
        }
        if self.epochs == 0 || self.batch_size == 0 || !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::Invalid(
                "epochs, batch size and learning rate must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// What the caller hears after every optimisation step.
#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    pub epoch: usize,
    pub step: usize,
    pub steps_per_epoch: usize,
    pub loss: f32,
    pub lr: f64,
}

/// Mean training loss per epoch.
#[derive(Clone, Debug, Serialize)]
pub struct EpochReport {
    pub epoch: usize,
    pub mean_loss: f32,
}

/// Trains `model` in place on `data` and returns the loss per epoch.
pub fn train(
    model: &mut Model,
    data: &Dataset,
    cfg: &TrainConfig,
    on_step: &mut dyn FnMut(&StepReport),
) -> Result<Vec<EpochReport>> {
    cfg.validate()?;
    let n = cfg.limit.unwrap_or(data.len()).min(data.len());
    if n == 0 {
        return Err(Error::Invalid("no training images".into()));
    }
    let device = model.weights[0].device().clone();
    // Replace the trainable tensors by variables the optimiser can update.
    let mut vars = Vec::new();
    for t in model.trainable_mut() {
        let v = Var::from_tensor(t)?;
        *t = v.as_tensor().clone();
        vars.push(v);
    }
    let params = ParamsAdamW {
        lr: cfg.lr,
        weight_decay: cfg.weight_decay,
        ..Default::default()
    };
    let mut opt = AdamW::new(vars, params)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let steps_per_epoch = n.div_ceil(cfg.batch_size);
    let total_steps = (steps_per_epoch * cfg.epochs) as f64;
    let mut reports = Vec::new();
    let mut order: Vec<usize> = (0..n).collect();
    for epoch in 0..cfg.epochs {
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0f32;
        for (step, idx) in order.chunks(cfg.batch_size).enumerate() {
            let t = (epoch * steps_per_epoch + step) as f64;
            let lr = cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * t / total_steps).cos());
            opt.set_learning_rate(lr);
            let clean = data.batch(idx, &device)?;
            let x = if cfg.sigma > 0.0 {
                noise::add_gaussian(&clean, cfg.sigma, &mut rng)?
            } else {
                clean
            };
            let labels: Vec<u32> = idx.iter().map(|&i| data.labels[i] as u32).collect();
            let labels = Tensor::new(labels.as_slice(), &device)?;
            let logits = model.forward_t(&x, true)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &labels)?;
            opt.backward_step(&loss)?;
            let loss = loss.to_scalar::<f32>()?;
            if !loss.is_finite() {
                return Err(Error::Invalid(format!(
                    "training diverged (loss {loss}) at epoch {epoch} step {step}"
                )));
            }
            loss_sum += loss;
            on_step(&StepReport {
                epoch,
                step,
                steps_per_epoch,
                loss,
                lr,
            });
        }
        reports.push(EpochReport {
            epoch,
            mean_loss: loss_sum / steps_per_epoch as f32,
        });
    }
    // Detach the variables again so the trained model is a plain inference model.
    for t in model.trainable_mut() {
        *t = t.detach();
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelMeta;
    use candle_core::Device;

    /// 256 synthetic images of two classes: a bright left half or a bright right half.
    fn halves() -> Dataset {
        let mut labels = vec![];
        let mut pixels = vec![];
        for i in 0..256usize {
            let class = (i % 2) as u8;
            labels.push(class);
            for _r in 0..28 {
                for c in 0..28 {
                    let bright = (c < 14) == (class == 0);
                    pixels.push(if bright { 200 } else { 30 } + (i % 7) as u8);
                }
            }
        }
        Dataset::new(28, 28, 10, labels, pixels).unwrap()
    }

    #[test]
    fn training_on_a_tiny_subset_lowers_the_loss_and_learns_it() {
        let data = halves();
        let mut model = Model::init(ModelMeta::new("synthetic", 0.25), 1, &Device::Cpu).unwrap();
        let cfg = TrainConfig {
            epochs: 4,
            batch_size: 32,
            lr: 3e-3,
            ..Default::default()
        };
        let mut losses = vec![];
        let reports = train(&mut model, &data, &cfg, &mut |s| losses.push(s.loss)).unwrap();
        assert_eq!(reports.len(), 4);
        assert!(
            reports[3].mean_loss < 0.5 * reports[0].mean_loss,
            "{reports:?}"
        );
        let eval = crate::eval::evaluate(&model, &data, 0, 256, &mut |_, _| {}).unwrap();
        assert!(eval.accuracy() > 0.95, "{}", eval.accuracy());
    }

    #[test]
    fn rejects_bad_settings() {
        let data = halves();
        let mut model = Model::init(ModelMeta::new("synthetic", 0.25), 1, &Device::Cpu).unwrap();
        for cfg in [
            TrainConfig {
                sigma: -1.0,
                ..Default::default()
            },
            TrainConfig {
                epochs: 0,
                ..Default::default()
            },
            TrainConfig {
                lr: f64::NAN,
                ..Default::default()
            },
        ] {
            assert!(train(&mut model, &data, &cfg, &mut |_| {}).is_err());
        }
    }
}
