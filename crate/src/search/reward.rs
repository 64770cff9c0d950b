//! ARQ's reward (Yang et al.): the average certified radius (ACR) of the smoothed classifier
//! of the quantized model on a validation subset of the training images, measured
//! incrementally with IRS — the stored model f (int8 at w8a8) is certified once per search with
//! n samples per image (FullRobustCertify), and each candidate policy fᵖ is re-certified from
//! those certificates with n_χ ≪ n replayed samples (IncrementalRobustCertify).
//!
//! Both f and fᵖ run on the fast executor; fᵖ is the same model switched to the policy by
//! Double Rounding (the loaded model's [`Switchable`]), so no float copy is involved.

use crate::checkpoint::Loaded;
use crate::error::{Error, Result};
use crate::exec::CpuExecutor;
use crate::model::Model;
use crate::quant::{Policy, Switchable, MAX_BITS};
use crate::search::validation::ValidationSet;
use crate::search::Reward;
use crate::smoothing::{
    self, BaseClassifier, Certificate, CertificationRow, CertifyParams, IrsParams, NoiseKey,
    Outcome,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Settings of [`IrsAcr`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IrsAcrSettings {
    /// Full certification of the stored model (σ, n0, n, α, batch).
    pub certify: CertifyParams,
    /// Incremental certification of each policy (n_χ, α_χ, γ, n0, batch).
    pub irs: IrsParams,
    /// Noise seed: image i of the training set uses `NoiseKey::new(seed, i)`.
    pub seed: u64,
    /// Threads of each fast executor (natively; wasm uses one).
    pub threads: usize,
}

impl IrsAcrSettings {
    /// σ from the model, n0 = 100, n and n_χ as given, α = α_χ = 0.001, γ = 0.99.
    pub fn new(sigma: f32, n: u64, n_chi: u64, seed: u64) -> Self {
        Self {
            certify: CertifyParams {
                n,
                ..CertifyParams::new(sigma)
            },
            irs: IrsParams::new(n_chi),
            seed,
            threads: 1,
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.certify.validate()?;
        self.irs.validate()?;
        if self.threads == 0 || self.threads > 256 {
            return Err(Error::Invalid("threads must be between 1 and 256".into()));
        }
        Ok(())
    }
}

/// ACR by IRS of the smoothed quantized classifier on a validation subset (larger is better).
pub struct IrsAcr {
    model: Model,
    switchable: Switchable,
    /// The stored model (w8a8), lowered once.
    f: CpuExecutor,
    /// The model at the policy being scored, re-lowered per policy.
    f_p: CpuExecutor,
    validation: ValidationSet,
    /// f's certificate of every validation image (the IRS cache).
    references: Vec<Certificate>,
    /// f's answers on the replayed noisy copies, which IRS asks for again at every policy.
    f_answers: HashMap<(u64, usize), Vec<u32>>,
    settings: IrsAcrSettings,
}

/// FNV-1a over the bits of a batch of inputs: the key of a replayed batch.
fn fingerprint(inputs: &[f32]) -> u64 {
    inputs.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, v| {
        (h ^ u64::from(v.to_bits())).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The stored model f with its answers remembered per batch of inputs (keyed by a 64-bit
/// fingerprint of the batch and its size): IRS replays the same noisy copies through f for
/// every policy, so after the first policy f is not run again on the incremental path.
struct Remembered<'a> {
    f: &'a mut CpuExecutor,
    answers: &'a mut HashMap<(u64, usize), Vec<u32>>,
}

impl BaseClassifier for Remembered<'_> {
    fn num_classes(&self) -> usize {
        self.f.num_classes()
    }

    fn classify_batch(&mut self, inputs: &[f32], batch: usize) -> Result<Vec<u32>> {
        let key = (fingerprint(inputs), batch);
        if let Some(answers) = self.answers.get(&key) {
            return Ok(answers.clone());
        }
        let answers = self.f.classify_batch(inputs, batch)?;
        self.answers.insert(key, answers.clone());
        Ok(answers)
    }
}

impl IrsAcr {
    /// Certifies the stored model (an int8 model at w8a8) on every image of `validation`
    /// with `settings.certify` and keeps the certificates. `progress(done, total)` is called
    /// after each image; returning false cancels ([`Outcome::Cancelled`]).
    pub fn new(
        loaded: Loaded,
        validation: ValidationSet,
        settings: IrsAcrSettings,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<Outcome<Self>> {
        settings.validate()?;
        let Loaded {
            mut model,
            switchable,
        } = loaded;
        let switchable = switchable.ok_or_else(|| {
            Error::Invalid(format!(
                "ARQ searches an int8 multi-bit model (its widths switch by Double Rounding); \
                 this one is a `{}` model",
                model.meta.kind
            ))
        })?;
        let stored = Policy::uniform(model.layers.len(), MAX_BITS, MAX_BITS)?;
        switchable.apply(&mut model, &stored)?;
        let mut f = CpuExecutor::new(&model)?.with_threads(settings.threads);
        let f_p = CpuExecutor::new(&model)?.with_threads(settings.threads);
        let total = validation.len();
        let mut references = Vec::with_capacity(total);
        for (k, &index) in validation.indices.iter().enumerate() {
            let key = NoiseKey::new(settings.seed, index as u32);
            let image = validation.images.image(k);
            let cert = match smoothing::certify(
                &mut f,
                image,
                &settings.certify,
                key,
                &mut |_, _| true,
            )? {
                Outcome::Completed(c) => c,
                Outcome::Cancelled => return Ok(Outcome::Cancelled),
            };
            references.push(cert);
            if !progress(k + 1, total) {
                return Ok(Outcome::Cancelled);
            }
        }
        Ok(Outcome::Completed(Self {
            model,
            switchable,
            f,
            f_p,
            validation,
            references,
            f_answers: HashMap::new(),
            settings,
        }))
    }

    /// The stored model's own certificates on the validation images.
    pub fn references(&self) -> &[Certificate] {
        &self.references
    }

    pub fn validation(&self) -> &ValidationSet {
        &self.validation
    }

    /// ACR of the stored model (w8a8) by full certification, the reward's ceiling in spirit:
    /// a quantized policy's IRS radius is at most its reference's on the incremental path.
    pub fn reference_acr(&self) -> f64 {
        let rows: Vec<CertificationRow> = self
            .references
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let label = self.validation.images.labels[k] as u32;
                CertificationRow::from_certificate(self.validation.indices[k] as u64, label, c, 0.0)
            })
            .collect();
        smoothing::acr(&rows)
    }
}

impl Reward for IrsAcr {
    fn name(&self) -> &str {
        "irs-acr"
    }

    /// ACR over the validation images of fᵖ = the model at `policy`, each image certified by
    /// IRS from its cached reference; wrong or abstaining images count 0.
    fn evaluate(&mut self, policy: &Policy) -> Result<f64> {
        self.switchable.apply(&mut self.model, policy)?;
        self.f_p.reload(&self.model)?;
        let mut rows = Vec::with_capacity(self.references.len());
        let mut f = Remembered {
            f: &mut self.f,
            answers: &mut self.f_answers,
        };
        for (k, reference) in self.references.iter().enumerate() {
            let cert = smoothing::certify_incremental(
                &mut f,
                &mut self.f_p,
                self.validation.images.image(k),
                reference,
                &self.settings.irs,
                &mut |_, _| true,
            )?
            .completed()
            .ok_or_else(|| Error::Invalid("incremental certification was cancelled".into()))?;
            let label = self.validation.images.labels[k] as u32;
            rows.push(CertificationRow::from_incremental(
                self.validation.indices[k] as u64,
                label,
                &cert,
                0.0,
            ));
        }
        Ok(smoothing::acr(&rows))
    }
}

/// The reward a search scores policies with, built once per search (ARQ's certifies the
/// stored model first); shared by the CLI and the wasm engine.
pub enum Scorer {
    Acr(Box<IrsAcr>),
    Accuracy(Box<crate::search::accuracy::ValidationAccuracy>),
}

impl Scorer {
    pub fn reward(&mut self) -> &mut dyn Reward {
        match self {
            Scorer::Acr(r) => r.as_mut(),
            Scorer::Accuracy(r) => r.as_mut(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint;
    use crate::data::Dataset;
    use statrs::distribution::{ContinuousCDF, Normal};

    const SHIPPED: &[u8] = include_bytes!("../../../public/models/mnist-sigma0.25.safetensors");
    const IMAGES: &[u8] = include_bytes!("../../tests/fixtures/mnist-test.bsds");

    /// Stands in for training images (a unit test only needs some digits).
    fn images() -> Dataset {
        Dataset::from_bytes(IMAGES).unwrap()
    }

    fn settings(gamma: f64) -> IrsAcrSettings {
        let mut s = IrsAcrSettings::new(0.5, 300, 60, 11);
        s.certify.n0 = 30;
        s.irs.n0 = 30;
        s.irs.gamma = gamma;
        s
    }

    fn reward(gamma: f64) -> IrsAcr {
        let validation = ValidationSet::draw(&images(), 8, 5).unwrap();
        IrsAcr::new(
            checkpoint::load(SHIPPED).unwrap(),
            validation,
            settings(gamma),
            &mut |_, _| true,
        )
        .unwrap()
        .completed()
        .unwrap()
    }

    #[test]
    fn the_stored_model_against_itself_loses_exactly_the_zero_disagreement_bound() {
        // γ = 1: every image takes the incremental path. f and fᵖ are the same network, so
        // there are no disagreements and ζ is the Clopper–Pearson upper bound of 0 out of n_χ:
        // 1 − α_χ^(1/n_χ). Each radius is then σ·Φ⁻¹(p_A − ζ) if that bound is ≥ ½ and ĉ_A is
        // the label, else 0.
        let mut r = reward(1.0);
        let (n_chi, alpha_chi, sigma) = (60.0, 0.001f64, 0.5);
        let zeta = 1.0 - alpha_chi.powf(1.0 / n_chi);
        let normal = Normal::new(0.0, 1.0).unwrap();
        let expected: f64 = r
            .references()
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let p = c.p_a - zeta;
                let label = r.validation().images.labels[k] as u32;
                if p >= 0.5 && c.c_hat == label {
                    sigma * normal.inverse_cdf(p)
                } else {
                    0.0
                }
            })
            .sum::<f64>()
            / 8.0;
        let w8a8 = Policy::uniform(8, 8, 8).unwrap();
        let got = r.evaluate(&w8a8).unwrap();
        assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
        assert!(got < r.reference_acr());
        assert!(
            expected > 0.1,
            "the model certifies some digits at σ = 0.5: {expected}"
        );
    }

    #[test]
    fn a_policy_scores_the_same_every_time_and_coarser_widths_score_lower() {
        let mut r = reward(0.99);
        let w4 = Policy::uniform(8, 4, 4).unwrap();
        let w2 = Policy::uniform(8, 2, 2).unwrap();
        let first = r.evaluate(&w4).unwrap();
        let coarse = r.evaluate(&w2).unwrap();
        assert_eq!(first, r.evaluate(&w4).unwrap());
        // w2a2 disagrees with the stored model far more often than w4a4 (the shipped model's
        // accuracy drops at 2 bits), so its bound ζ is wider
        assert!(coarse < first, "w2a2 {coarse}, w4a4 {first}");
    }

    #[test]
    fn remembering_the_stored_model_s_answers_changes_no_reward() {
        // the second policy scored after a first one (f's answers remembered) equals the same
        // policy scored by a fresh reward (f run again)
        let mut mixed = Policy::uniform(8, 4, 4).unwrap();
        mixed.weight_bits[2] = 2;
        mixed.act_bits[2] = 2;
        let mut warm = reward(1.0);
        warm.evaluate(&Policy::uniform(8, 6, 6).unwrap()).unwrap();
        assert!(!warm.f_answers.is_empty());
        let remembered = warm.evaluate(&mixed).unwrap();
        let fresh = reward(1.0).evaluate(&mixed).unwrap();
        assert_eq!(remembered, fresh);
    }

    #[test]
    fn a_float_model_or_bad_settings_are_clear_errors() {
        let loaded = checkpoint::load(SHIPPED).unwrap();
        let float = Loaded {
            switchable: None,
            ..loaded
        };
        let validation = ValidationSet::draw(&images(), 4, 0).unwrap();
        let err = IrsAcr::new(float, validation.clone(), settings(0.99), &mut |_, _| true)
            .err()
            .unwrap();
        assert!(err.to_string().contains("int8"), "{err}");
        let mut bad = settings(0.99);
        bad.irs.n_chi = 0;
        let loaded = checkpoint::load(SHIPPED).unwrap();
        assert!(IrsAcr::new(loaded, validation, bad, &mut |_, _| true).is_err());
    }

    #[test]
    fn building_the_cache_can_be_cancelled() {
        let validation = ValidationSet::draw(&images(), 4, 0).unwrap();
        let mut calls = 0;
        let out = IrsAcr::new(
            checkpoint::load(SHIPPED).unwrap(),
            validation,
            settings(0.99),
            &mut |done, _| {
                calls += 1;
                done < 2
            },
        )
        .unwrap();
        assert!(out.is_cancelled());
        assert_eq!(calls, 2);
    }
}
