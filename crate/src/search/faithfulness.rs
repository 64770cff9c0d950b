//! How faithful is ARQ's reward? Over policies spread across the BOPs range, each cheap score
//! a search could rank policies by — the ACR certified incrementally by IRS (ARQ's reward),
//! the ACR certified from scratch with the same number of samples, and clean accuracy — is
//! compared by rank (Spearman's ρ) with the ACR by full certification (n = 10⁴ by default),
//! all on the same validation images of the training set and the same noise.
//!
//! A search only needs the order of policies to be right, so the rank correlation with the
//! expensive truth is the figure that says whether a cheap reward misleads it.

use crate::checkpoint;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::exec::CpuExecutor;
use crate::model::Model;
use crate::quant::Switchable;
use crate::search::accuracy::{ValidationAccuracy, ValidationConfig};
use crate::search::reward::{IrsAcr, IrsAcrSettings};
use crate::search::validation::ValidationSet;
use crate::search::{Reward, SearchSpace};
use crate::smoothing::{self, CertifyParams, NoiseKey, Outcome};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Settings of a [`Study`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StudySettings {
    /// ARQ's reward as a search computes it: the reference certification of the stored
    /// model (n, n0, α), IRS's n_χ, the validation seed and the noise seed.
    pub reward: IrsAcrSettings,
    /// Samples of the full certification each policy is judged by (the truth).
    pub n_full: u64,
}

impl StudySettings {
    pub fn validate(&self) -> Result<()> {
        self.reward.validate()?;
        if self.n_full < self.reward.irs.n_chi {
            return Err(Error::Invalid(format!(
                "the full certification (n = {}) must use at least as many samples as IRS (n_χ = {})",
                self.n_full, self.reward.irs.n_chi
            )));
        }
        self.full().validate()
    }

    /// CERTIFY with `n` estimation samples and the reward's σ, n0, α and batch.
    fn certify_params(&self, n: u64) -> CertifyParams {
        CertifyParams {
            n,
            ..self.reward.certify
        }
    }

    fn full(&self) -> CertifyParams {
        self.certify_params(self.n_full)
    }

    fn scratch(&self) -> CertifyParams {
        self.certify_params(self.reward.irs.n_chi)
    }
}

/// Every score of one policy on the validation images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyScores {
    /// Width per quantizable layer (weights and activations), forward order.
    pub widths: Vec<u8>,
    pub bops: u64,
    /// ARQ's reward: ACR by IRS from the stored model's certificates with n_χ samples.
    pub irs_acr: f64,
    /// ACR certified from scratch with n0 selection and n_χ estimation samples.
    pub scratch_acr: f64,
    /// Clean accuracy (a fraction).
    pub accuracy: f64,
    /// ACR by full certification (the truth the others are ranked against).
    pub full_acr: f64,
    /// Standard error of `full_acr` over the images.
    pub full_acr_se: f64,
}

/// Spearman's ρ of each cheap score with the full ACR; `None` where a series is constant
/// (e.g. every policy classifies every validation image correctly), so no order exists.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RankCorrelations {
    pub policies: usize,
    pub irs_acr: Option<f64>,
    pub scratch_acr: Option<f64>,
    pub accuracy: Option<f64>,
}

impl RankCorrelations {
    pub fn of(scores: &[PolicyScores]) -> Result<Self> {
        let full: Vec<f64> = scores.iter().map(|s| s.full_acr).collect();
        let constant = |v: &[f64]| v.iter().all(|&a| a == v[0]);
        let rho = |pick: fn(&PolicyScores) -> f64| {
            let x: Vec<f64> = scores.iter().map(pick).collect();
            if scores.len() >= 2 && (constant(&x) || constant(&full)) {
                return Ok(None);
            }
            spearman(&x, &full).map(Some)
        };
        Ok(Self {
            policies: scores.len(),
            irs_acr: rho(|s| s.irs_acr)?,
            scratch_acr: rho(|s| s.scratch_acr)?,
            accuracy: rho(|s| s.accuracy)?,
        })
    }
}

/// Ranks 1..=n of `values` (ascending), ties sharing the mean of the ranks they span.
pub fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut out = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // positions start..end hold equal values: ranks start+1..=end, mean (start+1+end)/2
        let mean = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            out[i] = mean;
        }
        start = end;
    }
    out
}

/// Spearman's rank correlation: Pearson's correlation of the (tie-averaged) ranks.
pub fn spearman(x: &[f64], y: &[f64]) -> Result<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return Err(Error::Invalid(format!(
            "a rank correlation needs two equally long series of at least 2 values, got {} and {}",
            x.len(),
            y.len()
        )));
    }
    if x.iter().chain(y).any(|v| !v.is_finite()) {
        return Err(Error::Invalid(
            "a rank correlation needs finite values".into(),
        ));
    }
    let (rx, ry) = (ranks(x), ranks(y));
    let mean = (x.len() as f64 + 1.0) / 2.0;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        sxy += (a - mean) * (b - mean);
        sxx += (a - mean) * (a - mean);
        syy += (b - mean) * (b - mean);
    }
    if sxx == 0.0 || syy == 0.0 {
        return Err(Error::Invalid(
            "a rank correlation is undefined when one series is constant".into(),
        ));
    }
    Ok(sxy / (sxx * syy).sqrt())
}

/// `count` distinct policies spread over the BOPs range: the uniform policies of every
/// trained width, then one policy per budget evenly spaced between the cheapest and the
/// dearest policy, reached by a random descent from the all-highest policy (a random layer
/// not yet at the lowest width goes one width down, from `seed`, until the policy fits).
pub fn spread_policies(space: &SearchSpace, count: usize, seed: u64) -> Result<Vec<Vec<u8>>> {
    if count < 2 || (count as u128) > space.count() {
        return Err(Error::Invalid(format!(
            "between 2 and {} policies (the size of the space) can be spread, got {count}",
            space.count()
        )));
    }
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(count);
    for &b in &space.bits {
        let w = space.uniform(b);
        if out.len() < count && !out.contains(&w) {
            out.push(w);
        }
    }
    let (lo, hi) = (space.min_bops()?, space.max_bops()?);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let slots = count - out.len();
    let mut attempts = 0usize;
    while out.len() < count {
        // budgets at the middle of `slots` equal bins, taken in turn (a slot whose draw
        // repeats an earlier policy waits for the next round)
        let slot = attempts % slots;
        attempts += 1;
        if attempts > 1000 * count {
            return Err(Error::Invalid(format!(
                "could not draw {count} distinct policies from this space"
            )));
        }
        let budget = lo + ((hi - lo) as f64 * (slot as f64 + 0.5) / slots as f64) as u64;
        let mut w = space.uniform(space.max_bits());
        while space.bops(&w)? > budget {
            let lowerable: Vec<usize> = (0..w.len())
                .filter(|&l| space.choices(l).iter().any(|&b| b < w[l]))
                .collect();
            let Some(&l) = lowerable.get(rng.random_range(0..lowerable.len().max(1))) else {
                break;
            };
            w[l] = *space
                .choices(l)
                .iter()
                .filter(|&&b| b < w[l])
                .max()
                .expect("a lower width exists");
        }
        if !out.contains(&w) {
            out.push(w);
        }
    }
    Ok(out)
}

/// Scores policies of one int8 multi-bit model on one validation subset.
pub struct Study {
    irs: IrsAcr,
    accuracy: ValidationAccuracy,
    model: Model,
    switchable: Switchable,
    exec: CpuExecutor,
    validation: ValidationSet,
    settings: StudySettings,
}

impl Study {
    /// Builds ARQ's reward (certifying the stored model on `val_size` training images drawn
    /// by the reward's seed; `progress(done, total)` after each, false cancels) and the
    /// accuracy on the same images.
    pub fn new(
        model_bytes: &[u8],
        train: &Dataset,
        val_size: usize,
        settings: StudySettings,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<Outcome<Self>> {
        settings.validate()?;
        let seed = settings.reward.seed;
        let threads = settings.reward.threads;
        let validation = ValidationSet::draw(train, val_size, seed)?;
        let accuracy = ValidationAccuracy::new(
            checkpoint::load(model_bytes)?,
            train,
            &ValidationConfig {
                images: val_size,
                seed,
                noise_sigma: None,
                threads,
            },
        )?;
        // both draw with the same seed and size, so they must hold the same images
        if accuracy.indices() != validation.indices.as_slice() {
            return Err(Error::Invalid(
                "the accuracy and the certification were drawn on different images".into(),
            ));
        }
        let irs = match IrsAcr::new(
            checkpoint::load(model_bytes)?,
            validation.clone(),
            settings.reward,
            progress,
        )? {
            Outcome::Completed(r) => r,
            Outcome::Cancelled => return Ok(Outcome::Cancelled),
        };
        let loaded = checkpoint::load(model_bytes)?;
        let switchable = loaded
            .switchable
            .ok_or_else(|| Error::Invalid("the study needs an int8 multi-bit model".into()))?;
        let exec = CpuExecutor::new(&loaded.model)?.with_threads(threads);
        Ok(Outcome::Completed(Self {
            irs,
            accuracy,
            model: loaded.model,
            switchable,
            exec,
            validation,
            settings,
        }))
    }

    /// ACR of the stored model (w8a8) by the reward's reference certification.
    pub fn reference_acr(&self) -> f64 {
        self.irs.reference_acr()
    }

    /// Every score of `widths` (checked against `space`).
    pub fn score(&mut self, space: &SearchSpace, widths: &[u8]) -> Result<PolicyScores> {
        let policy = space.policy(widths)?;
        let irs_acr = self.irs.evaluate(&policy)?;
        let accuracy = self.accuracy.evaluate(&policy)?;
        self.switchable.apply(&mut self.model, &policy)?;
        self.exec.reload(&self.model)?;
        let (scratch_acr, _) = self.acr(&self.settings.scratch())?;
        let (full_acr, full_acr_se) = self.acr(&self.settings.full())?;
        Ok(PolicyScores {
            widths: widths.to_vec(),
            bops: space.bops(widths)?,
            irs_acr,
            scratch_acr,
            accuracy,
            full_acr,
            full_acr_se,
        })
    }

    /// ACR and its standard error over the validation images of the loaded policy, certified
    /// from scratch with `params` on the reward's noise (image i: `NoiseKey::new(seed, i)`).
    fn acr(&mut self, params: &CertifyParams) -> Result<(f64, f64)> {
        let mut radii = Vec::with_capacity(self.validation.len());
        for (k, &index) in self.validation.indices.iter().enumerate() {
            let key = NoiseKey::new(self.settings.reward.seed, index as u32);
            let cert = smoothing::certify(
                &mut self.exec,
                self.validation.images.image(k),
                params,
                key,
                &mut |_, _| true,
            )?
            .completed()
            .ok_or_else(|| Error::Invalid("certification was cancelled".into()))?;
            let label = self.validation.images.labels[k] as u32;
            radii.push(if cert.prediction == Some(label) {
                cert.radius
            } else {
                0.0
            });
        }
        Ok(mean_and_standard_error(&radii))
    }
}

/// Mean and standard error of the mean (sample standard deviation / √n).
fn mean_and_standard_error(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint;

    const SHIPPED: &[u8] = include_bytes!("../../../public/models/mnist-sigma0.25.safetensors");
    const IMAGES: &[u8] = include_bytes!("../../tests/fixtures/mnist-test.bsds");

    #[test]
    fn spearman_matches_a_hand_worked_case_with_ties() {
        // x ranks: 10→1, 20→2.5, 20→2.5, 40→4; y ranks: 3→2, 1→1, 4→3, 9→4.
        // Pearson of (1, 2.5, 2.5, 4) and (2, 1, 3, 4), both with mean 2.5:
        // deviations (−1.5, 0, 0, 1.5) and (−0.5, −1.5, 0.5, 1.5):
        // Σxy = 0.75 + 0 + 0 + 2.25 = 3, Σxx = 4.5, Σyy = 5 → ρ = 3 / √22.5 = 0.632455…
        let rho = spearman(&[10.0, 20.0, 20.0, 40.0], &[3.0, 1.0, 4.0, 9.0]).unwrap();
        assert!((rho - 3.0 / 22.5f64.sqrt()).abs() < 1e-12, "{rho}");
        // without ties it is 1 − 6Σd²/(n(n²−1)): y ranks (1, 3, 2, 4, 5), d = (0, −1, 1, 0, 0),
        // Σd² = 2 → 1 − 12/120 = 0.9
        let rho = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[1.0, 4.0, 2.0, 8.0, 9.0]).unwrap();
        assert!((rho - 0.9).abs() < 1e-12, "{rho}");
        // a monotone transform changes nothing; reversing the order flips the sign
        let x = [0.3, 0.1, 0.7, 0.5];
        let y: Vec<f64> = x.iter().map(|v: &f64| v.exp() * 10.0).collect();
        assert_eq!(spearman(&x, &y).unwrap(), 1.0);
        let z: Vec<f64> = x.iter().map(|v| -v).collect();
        assert_eq!(spearman(&x, &z).unwrap(), -1.0);
        assert_eq!(ranks(&[5.0, 5.0, 5.0, 1.0]), vec![3.0, 3.0, 3.0, 1.0]);
    }

    #[test]
    fn spearman_refuses_what_has_no_rank_correlation() {
        assert!(spearman(&[1.0], &[1.0]).is_err());
        assert!(spearman(&[1.0, 2.0], &[1.0]).is_err());
        assert!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_err());
        assert!(spearman(&[1.0, f64::NAN], &[1.0, 2.0]).is_err());
    }

    fn space() -> SearchSpace {
        let loaded = checkpoint::load(SHIPPED).unwrap();
        SearchSpace::new(loaded.model.layers.clone(), &loaded.model.meta.bits, false).unwrap()
    }

    #[test]
    fn spread_policies_are_distinct_reproducible_and_cover_the_range() {
        let space = space();
        let p = spread_policies(&space, 40, 7).unwrap();
        assert_eq!(p.len(), 40);
        assert_eq!(p, spread_policies(&space, 40, 7).unwrap());
        assert_ne!(p, spread_policies(&space, 40, 8).unwrap());
        for (i, a) in p.iter().enumerate() {
            space.check(a).unwrap();
            assert!(p[..i].iter().all(|b| b != a), "policy {i} repeats");
        }
        // the uniform policies come first; the others reach into every quarter of the range
        for (i, &b) in space.bits.iter().enumerate() {
            assert_eq!(p[i], space.uniform(b));
        }
        let (lo, hi) = (space.min_bops().unwrap(), space.max_bops().unwrap());
        for q in 0..4 {
            let (a, b) = (lo + (hi - lo) * q / 4, lo + (hi - lo) * (q + 1) / 4);
            let inside = p[space.bits.len()..]
                .iter()
                .filter(|w| (a..=b).contains(&space.bops(w).unwrap()))
                .count();
            assert!(inside >= 5, "quarter {q}: {inside} policies");
        }
        assert!(spread_policies(&space, 1, 0).is_err());
    }

    #[test]
    fn the_stored_model_scores_its_own_certificates_and_full_certification_is_the_truth() {
        let images = Dataset::from_bytes(IMAGES).unwrap();
        let mut reward = IrsAcrSettings::new(0.25, 200, 50, 3);
        reward.certify.n0 = 20;
        reward.irs.n0 = 20;
        let settings = StudySettings {
            reward,
            n_full: 200,
        };
        let mut study = Study::new(SHIPPED, &images, 6, settings, &mut |_, _| true)
            .unwrap()
            .completed()
            .unwrap();
        let space = space();
        let stored = space.uniform(crate::quant::MAX_BITS);
        let s = study.score(&space, &stored).unwrap();
        // at w8a8 with n_full = the reference's n, full certification repeats the reference
        // certification exactly (same model, same noise, same settings)
        assert!((s.full_acr - study.reference_acr()).abs() < 1e-12);
        // IRS against itself loses the zero-disagreement bound, never gains
        assert!(s.irs_acr <= s.full_acr + 1e-12);
        assert!((0.0..=1.0).contains(&s.accuracy) && s.full_acr_se >= 0.0);
        let bad = StudySettings {
            n_full: 10,
            ..settings
        };
        assert!(Study::new(SHIPPED, &images, 6, bad, &mut |_, _| true).is_err());
    }
}
