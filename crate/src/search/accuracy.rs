//! HAQ's reward: the accuracy of the model at a policy on a validation subset drawn (seeded)
//! from the **training** images — never the test set, on which the searches are compared —
//! run on the fast executor ([`CpuExecutor`]).

use super::Reward;
use crate::checkpoint::Loaded;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::exec::CpuExecutor;
use crate::model::Model;
use crate::quant::{Policy, Switchable};
use crate::smoothing::classifier::BaseClassifier;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// Settings of [`ValidationAccuracy`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationConfig {
    /// Images in the subset, 1..=the training set's size (drawn without replacement).
    pub images: usize,
    /// Chooses the subset (and the noise, if any).
    pub seed: u64,
    /// `Some(σ)`: each image carries one fixed N(0, σ²) noise draw (the same for every
    /// policy, so policies are compared on the same inputs) — accuracy under the noise the
    /// smoothed classifier sees; `None`: clean images.
    pub noise_sigma: Option<f32>,
    /// Threads of the executor (natively), ≥ 1; the result does not depend on it.
    pub threads: usize,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            images: 1000,
            seed: 0,
            noise_sigma: None,
            threads: 1,
        }
    }
}

/// Validation accuracy (a fraction in [0, 1]) of an int8 multi-bit model at any policy:
/// each evaluation applies the policy by Double Rounding ([`Switchable::apply`]) and reloads
/// the executor. Deterministic for a given config.
pub struct ValidationAccuracy {
    model: Model,
    switchable: Switchable,
    exec: CpuExecutor,
    indices: Vec<usize>,
    inputs: Vec<f32>,
    labels: Vec<u32>,
    name: String,
}

impl ValidationAccuracy {
    /// The reward for `loaded` (an int8 model file) on a subset of `train`.
    pub fn new(loaded: Loaded, train: &Dataset, cfg: &ValidationConfig) -> Result<Self> {
        let switchable = loaded.switchable.ok_or_else(|| {
            Error::Invalid(
                "validation accuracy at a policy needs an int8 multi-bit model file".into(),
            )
        })?;
        if cfg.images == 0 || cfg.images > train.len() {
            return Err(Error::Invalid(format!(
                "a validation subset of {} images was asked for, the training set has {}",
                cfg.images,
                train.len()
            )));
        }
        if train.rows != 28 || train.cols != 28 {
            return Err(Error::Invalid(format!(
                "the model takes 28×28 images, the set holds {}×{}",
                train.rows, train.cols
            )));
        }
        if cfg.threads == 0 {
            return Err(Error::Invalid(
                "the executor needs at least one thread".into(),
            ));
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
        let mut indices = rand::seq::index::sample(&mut rng, train.len(), cfg.images).into_vec();
        indices.sort_unstable();
        let mut inputs: Vec<f32> = indices
            .iter()
            .flat_map(|&i| train.image(i).iter().map(|&p| p as f32 / 255.0))
            .collect();
        let name = match cfg.noise_sigma {
            Some(sigma) => {
                crate::noise::check_sigma(sigma)?;
                for x in inputs.iter_mut() {
                    *x += sigma * Distribution::<f32>::sample(&StandardNormal, &mut rng);
                }
                format!("val-accuracy-noisy-{sigma}")
            }
            None => "val-accuracy".to_string(),
        };
        let labels = indices.iter().map(|&i| train.labels[i] as u32).collect();
        let exec = CpuExecutor::new(&loaded.model)?.with_threads(cfg.threads);
        Ok(Self {
            model: loaded.model,
            switchable,
            exec,
            indices,
            inputs,
            labels,
            name,
        })
    }

    /// The training images of the subset, ascending.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
}

impl Reward for ValidationAccuracy {
    fn name(&self) -> &str {
        &self.name
    }

    fn evaluate(&mut self, policy: &Policy) -> Result<f64> {
        self.switchable.apply(&mut self.model, policy)?;
        self.exec.reload(&self.model)?;
        let classes = self.exec.classify_batch(&self.inputs, self.labels.len())?;
        let correct = classes
            .iter()
            .zip(&self.labels)
            .filter(|(c, l)| c == l)
            .count();
        Ok(correct as f64 / self.labels.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    const SHIPPED: &[u8] = include_bytes!("../../../public/models/mnist-sigma0.25.safetensors");
    /// 8 labelled images: enough for the mechanics (which images, which policy); the CLI
    /// passes the training set.
    const IMAGES: &[u8] = include_bytes!("../../tests/fixtures/mnist-test.bsds");

    fn reward(cfg: &ValidationConfig) -> ValidationAccuracy {
        let data = Dataset::from_bytes(IMAGES).unwrap();
        ValidationAccuracy::new(crate::checkpoint::load(SHIPPED).unwrap(), &data, cfg).unwrap()
    }

    /// Accuracy of the candle reference model at `policy` on the same inputs.
    fn reference(r: &ValidationAccuracy, policy: &Policy) -> f64 {
        let mut loaded = crate::checkpoint::load(SHIPPED).unwrap();
        let sw = loaded.switchable.take().unwrap();
        sw.apply(&mut loaded.model, policy).unwrap();
        let x = Tensor::from_slice(&r.inputs, (r.labels.len(), 1, 28, 28), &Device::Cpu).unwrap();
        let p = loaded.model.predict(&x).unwrap();
        p.iter().zip(&r.labels).filter(|(a, b)| a == b).count() as f64 / p.len() as f64
    }

    #[test]
    fn accuracy_at_a_policy_equals_the_reference_model_at_that_policy() {
        let cfg = ValidationConfig {
            images: 8,
            seed: 1,
            noise_sigma: Some(0.5),
            threads: 2,
        };
        let mut r = reward(&cfg);
        assert_eq!(r.name(), "val-accuracy-noisy-0.5");
        let mut mixed = Policy::uniform(8, 2, 2).unwrap();
        mixed.weight_bits[3] = 6;
        mixed.act_bits[3] = 6;
        for policy in [
            Policy::uniform(8, 8, 8).unwrap(),
            mixed,
            Policy::uniform(8, 2, 2).unwrap(),
        ] {
            assert_eq!(
                r.evaluate(&policy).unwrap(),
                reference(&r, &policy),
                "{policy:?}"
            );
        }
        assert!(r.evaluate(&Policy::uniform(7, 8, 8).unwrap()).is_err());
    }

    #[test]
    fn the_subset_is_seeded_and_checked() {
        let cfg = |images, seed| ValidationConfig {
            images,
            seed,
            noise_sigma: None,
            threads: 1,
        };
        let a = reward(&cfg(5, 3));
        assert_eq!(a.name(), "val-accuracy");
        assert_eq!(a.indices(), reward(&cfg(5, 3)).indices());
        assert_eq!(a.indices().len(), 5);
        assert!(a.indices().windows(2).all(|w| w[0] < w[1] && w[1] < 8));
        let others: Vec<_> = (4..12)
            .map(|s| reward(&cfg(5, s)).indices().to_vec())
            .collect();
        assert!(others.iter().any(|o| o != a.indices()));
        let data = Dataset::from_bytes(IMAGES).unwrap();
        let load = || crate::checkpoint::load(SHIPPED).unwrap();
        let err = ValidationAccuracy::new(load(), &data, &cfg(9, 0))
            .err()
            .unwrap();
        assert!(err.to_string().contains("training set has 8"), "{err}");
        let mut float = load();
        float.switchable = None;
        assert!(ValidationAccuracy::new(float, &data, &cfg(4, 0)).is_err());
    }
}
