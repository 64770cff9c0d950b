//! CERTIFY and PREDICT of Cohen et al. (2019), and the Monte-Carlo sampling they share.
//!
//! Every noisy copy is addressed by a sample index (see [`noise`](super::noise)), and each
//! use of the noise has its own range of indices, so the draws are fresh where the algorithm
//! needs fresh draws and replayable everywhere:
//!
//! | draws | sample indices |
//! |---|---|
//! | CERTIFY's n estimation draws (replayed by IRS) | [`ESTIMATION_SAMPLES`] + 0..n |
//! | CERTIFY's n0 selection draws | [`SELECTION_SAMPLES`] + 0..n0 |
//! | PREDICT's n draws | [`PREDICTION_SAMPLES`] + 0..n |
//! | IRS's n0 selection draws when it recertifies fᵖ (full path) | [`IRS_SELECTION_SAMPLES`] + 0..n0 |
//! | IRS's n_χ estimation draws when it recertifies fᵖ (full path) | [`IRS_ESTIMATION_SAMPLES`] + 0..n_χ |
//!
//! Each range starts 2³² apart and no count exceeds [`MAX_SAMPLES`] (< 2³²), so the ranges
//! never overlap.

use crate::error::{Error, Result};
use crate::smoothing::bounds::{
    binomial_test_p_value, certified_radius, check_alpha, clopper_pearson_lower,
};
use crate::smoothing::classifier::{classify_checked, counts_checked, BaseClassifier};
use crate::smoothing::noise::{NoiseKey, NoisyCopies, IMAGE_PIXELS};
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// First sample index of CERTIFY's n estimation draws (the ones p_A is computed from, and
/// the ones IRS replays).
pub const ESTIMATION_SAMPLES: u64 = 0;
/// First sample index of CERTIFY's n0 selection draws (the guess ĉ_A).
pub const SELECTION_SAMPLES: u64 = 1 << 32;
/// First sample index of PREDICT's draws.
pub const PREDICTION_SAMPLES: u64 = 2 << 32;
/// First sample index of the selection draws of IRS's full path (fᵖ recertified): fresh,
/// so that they are independent of f's draws, whose answers chose that path.
pub const IRS_SELECTION_SAMPLES: u64 = 3 << 32;
/// First sample index of the estimation draws of IRS's full path (fᵖ recertified): fresh,
/// disjoint from f's estimation draws for the same reason.
pub const IRS_ESTIMATION_SAMPLES: u64 = 4 << 32;

/// Where CERTIFY takes its two sets of draws from: the first sample index of the n0
/// selection draws and of the n estimation draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SampleRanges {
    pub selection: u64,
    pub estimation: u64,
}

/// CERTIFY's own ranges ([`SELECTION_SAMPLES`], [`ESTIMATION_SAMPLES`]).
pub(crate) const CERTIFY_RANGES: SampleRanges = SampleRanges {
    selection: SELECTION_SAMPLES,
    estimation: ESTIMATION_SAMPLES,
};

/// Largest n, n0 or n_χ accepted: 10⁷ noisy copies (hours of work per image in a browser).
pub const MAX_SAMPLES: u64 = 10_000_000;
/// Largest batch accepted: 10,000 images of 784 f32 values hold 31 MB.
pub const MAX_BATCH: usize = 10_000;

/// How a long computation ended: with its result, or stopped by its progress hook.
/// A cancelled run carries no partial result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Outcome<T> {
    Completed(T),
    Cancelled,
}

impl<T> Outcome<T> {
    /// The result, or `None` if the run was cancelled.
    pub fn completed(self) -> Option<T> {
        match self {
            Outcome::Completed(t) => Some(t),
            Outcome::Cancelled => None,
        }
    }

    pub fn is_cancelled(&self) -> bool {
        matches!(self, Outcome::Cancelled)
    }
}

/// Unwraps a completed outcome, or returns `Ok(Outcome::Cancelled)` from the function.
macro_rules! completed_or_return {
    ($outcome:expr) => {
        match $outcome {
            $crate::smoothing::certify::Outcome::Completed(value) => value,
            $crate::smoothing::certify::Outcome::Cancelled => {
                return Ok($crate::smoothing::certify::Outcome::Cancelled)
            }
        }
    };
}
pub(crate) use completed_or_return;

pub(crate) fn check_samples(name: &str, what: &str, count: u64) -> Result<()> {
    if !(1..=MAX_SAMPLES).contains(&count) {
        return Err(Error::Invalid(format!(
            "{name} ({what}) must be between 1 and 10,000,000, got {count}"
        )));
    }
    Ok(())
}

pub(crate) fn check_batch(batch: usize) -> Result<()> {
    if !(1..=MAX_BATCH).contains(&batch) {
        return Err(Error::Invalid(format!(
            "batch (noisy copies per forward pass) must be between 1 and 10,000, got {batch}"
        )));
    }
    Ok(())
}

/// Regenerates the noisy copies `samples` of `copies` batch by batch into one reused buffer
/// and hands each batch to `visit(inputs, batch_len)`. After each batch it calls
/// `progress(done, total)` (samples so far, samples in the range) and stops if that returns
/// false. Memory is one batch, whatever the number of samples.
pub(crate) fn for_each_batch(
    copies: &NoisyCopies,
    samples: Range<u64>,
    batch: usize,
    progress: &mut dyn FnMut(u64, u64) -> bool,
    mut visit: impl FnMut(&[f32], usize) -> Result<()>,
) -> Result<Outcome<()>> {
    check_batch(batch)?;
    let total = samples.end.saturating_sub(samples.start);
    let mut inputs = Vec::with_capacity(batch.min(total as usize) * IMAGE_PIXELS);
    let mut start = samples.start;
    while start < samples.end {
        let end = samples.end.min(start + batch as u64);
        copies.fill(start..end, &mut inputs);
        visit(&inputs, (end - start) as usize)?;
        start = end;
        if !progress(start - samples.start, total) {
            return Ok(Outcome::Cancelled);
        }
    }
    Ok(Outcome::Completed(()))
}

/// How many of the noisy copies `samples` of an image the base classifier f assigns to each
/// class: `counts[c]` = #{s ∈ samples : f(x + σ·ε_s) = c}. Works in batches of `batch` copies
/// (memory independent of the number of samples) and calls `progress(done, total)` after
/// each batch; returning false from it cancels the run.
pub fn sample_counts(
    f: &mut dyn BaseClassifier,
    copies: &NoisyCopies,
    samples: Range<u64>,
    batch: usize,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Outcome<Vec<u64>>> {
    check_batch(batch)?;
    let mut counts = vec![0u64; f.num_classes()];
    let total = samples.end.saturating_sub(samples.start);
    let mut inputs = Vec::new();
    let mut start = samples.start;
    while start < samples.end {
        let end = samples.end.min(start + batch as u64);
        // An executor that draws the noise itself (the GPU) returns the batch's counts; the
        // others classify copies drawn here, into one reused buffer.
        match counts_checked(f, copies, start..end) {
            Some(batch_counts) => {
                for (c, n) in counts.iter_mut().zip(batch_counts?) {
                    *c += n;
                }
            }
            None => {
                copies.fill(start..end, &mut inputs);
                for class in classify_checked(f, &inputs, (end - start) as usize)? {
                    counts[class as usize] += 1;
                }
            }
        }
        start = end;
        if !progress(start - samples.start, total) {
            return Ok(Outcome::Cancelled);
        }
    }
    Ok(Outcome::Completed(counts))
}

/// The most frequent class (the lowest index among ties, as `numpy.argmax`).
fn argmax(counts: &[u64]) -> u32 {
    let mut best = 0;
    for (class, &count) in counts.iter().enumerate() {
        if count > counts[best] {
            best = class;
        }
    }
    best as u32
}

/// Settings of CERTIFY.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CertifyParams {
    /// Noise level σ > 0 (finite), in the [0, 1] pixel scale; the base classifier should have
    /// been trained with noise of this σ.
    pub sigma: f32,
    /// Selection draws for the guess ĉ_A, 1..=10⁷ (reference: 100).
    pub n0: u64,
    /// Estimation draws for p_A, 1..=10⁷ (reference: 100,000).
    pub n: u64,
    /// Failure probability α ∈ (0, 1) (reference: 0.001).
    pub alpha: f64,
    /// Noisy copies per call of the base classifier, 1..=10,000.
    pub batch: usize,
}

impl CertifyParams {
    /// Cohen et al.'s reference settings at noise level σ: n0 = 100, n = 100,000,
    /// α = 0.001, in batches of 100.
    pub fn new(sigma: f32) -> Self {
        Self {
            sigma,
            n0: 100,
            n: 100_000,
            alpha: 0.001,
            batch: 100,
        }
    }

    pub fn validate(&self) -> Result<()> {
        crate::noise::check_sigma(self.sigma)?;
        check_samples("n0", "selection samples", self.n0)?;
        check_samples("n", "estimation samples", self.n)?;
        check_alpha("α", self.alpha)?;
        check_batch(self.batch)
    }
}

/// The result of CERTIFY for one image, with the counts behind it (so it can be re-checked)
/// and what IRS needs to re-certify a modified classifier (ĉ_A, p_A, σ, the noise key).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    /// The smoothed classifier's class g(x), or `None` to abstain.
    pub prediction: Option<u32>,
    /// Certified ℓ₂ radius σ·Φ⁻¹(p_A) in [0, 1]-pixel units; 0 when abstaining.
    pub radius: f64,
    /// The guess ĉ_A = argmax of `counts_n0` (kept even when abstaining).
    pub c_hat: u32,
    /// Lower Clopper–Pearson bound on P(f(x + ε) = ĉ_A) at confidence 1 − α.
    pub p_a: f64,
    /// `counts[ĉ_A]` among the n estimation draws.
    pub n_a: u64,
    pub n: u64,
    pub n0: u64,
    /// Class counts of the n0 selection draws.
    pub counts_n0: Vec<u64>,
    /// Class counts of the n estimation draws.
    pub counts: Vec<u64>,
    pub sigma: f32,
    pub alpha: f64,
    /// Seed and image index of the noise (replayable).
    pub key: NoiseKey,
}

impl Certificate {
    pub fn abstained(&self) -> bool {
        self.prediction.is_none()
    }

    /// A certificate recovered from what a certification log keeps (the guess ĉ_A, n_A of
    /// n, σ, α, the noise key): p_A and the radius are recomputed exactly as CERTIFY does,
    /// so IRS can start from an earlier run instead of certifying the reference again. The
    /// class counts are not in a log and stay empty.
    pub fn from_counts(
        c_hat: u32,
        n_a: u64,
        n: u64,
        sigma: f32,
        alpha: f64,
        key: NoiseKey,
    ) -> Result<Self> {
        if n_a > n {
            return Err(Error::Invalid(format!("n_A = {n_a} exceeds n = {n}")));
        }
        let p_a = clopper_pearson_lower(n_a, n, alpha)?;
        let (prediction, radius) = if p_a < 0.5 {
            (None, 0.0)
        } else {
            (Some(c_hat), certified_radius(sigma, p_a))
        };
        Ok(Self {
            prediction,
            radius,
            c_hat,
            p_a,
            n_a,
            n,
            n0: 0,
            counts_n0: vec![],
            counts: vec![],
            sigma,
            alpha,
            key,
        })
    }
}

/// CERTIFY (Cohen et al. 2019, Algorithm "certify"): with probability at least 1 − α over
/// the noise, if it returns a class c with radius R then the smoothed classifier
/// g(x') = argmax_c P(f(x' + ε) = c), ε ~ N(0, σ²I), returns c for every x' with
/// ‖x' − x‖₂ < R. It abstains (`prediction: None`, radius 0) when p_A < ½.
///
/// Steps: ĉ_A = the most frequent class among n0 selection draws; n_A = how often f answers
/// ĉ_A among n fresh estimation draws; p_A = the lower Clopper–Pearson bound of n_A/n at
/// confidence 1 − α; R = σ·Φ⁻¹(p_A).
///
/// `image` is 784 pixels (0..=255, mapped to [0, 1]); `key` names the noise (same key →
/// the same certificate). `progress(done, n0 + n)` is called after every batch; returning
/// false cancels the run, which then returns [`Outcome::Cancelled`] and no certificate.
pub fn certify(
    f: &mut dyn BaseClassifier,
    image: &[u8],
    params: &CertifyParams,
    key: NoiseKey,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Outcome<Certificate>> {
    certify_on(f, image, params, key, CERTIFY_RANGES, progress)
}

/// [`certify`] on the draws `ranges` names (selection: `ranges.selection + 0..n0`,
/// estimation: `ranges.estimation + 0..n`), so a caller can certify on draws disjoint from
/// ones already used.
pub(crate) fn certify_on(
    f: &mut dyn BaseClassifier,
    image: &[u8],
    params: &CertifyParams,
    key: NoiseKey,
    ranges: SampleRanges,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Outcome<Certificate>> {
    params.validate()?;
    let copies = NoisyCopies::new(image, params.sigma, key)?;
    let CertifyParams {
        sigma,
        n0,
        n,
        alpha,
        batch,
    } = *params;
    let total = n0 + n;

    // ĉ_A: the most frequent class among n0 selection draws.
    let selection = ranges.selection..ranges.selection + n0;
    let mut report = |done: u64, _: u64| progress(done, total);
    let counts_n0 = completed_or_return!(sample_counts(f, &copies, selection, batch, &mut report)?);

    // n_A: how often f answers ĉ_A among n fresh estimation draws (counted for every class;
    // `Certificate::from_draws` takes ĉ_A's count, bounds it and decides).
    let estimation = ranges.estimation..ranges.estimation + n;
    let mut report = |done: u64, _: u64| progress(n0 + done, total);
    let counts = completed_or_return!(sample_counts(f, &copies, estimation, batch, &mut report)?);
    Ok(Outcome::Completed(Certificate::from_draws(
        counts_n0, counts, sigma, alpha, key,
    )?))
}

impl Certificate {
    /// CERTIFY's decision from its two sets of draws: ĉ_A = argmax of the n0 selection
    /// counts, n_A = the estimation counts' entry for ĉ_A, p_A its lower Clopper–Pearson
    /// bound at 1 − α, R = σ·Φ⁻¹(p_A), abstaining when p_A < ½. [`certify`] draws the counts
    /// itself; an executor that produces counts asynchronously (WebGPU in the browser) draws
    /// them on the same sample ranges ([`SELECTION_SAMPLES`], [`ESTIMATION_SAMPLES`]) and
    /// ends here, so both are the same CERTIFY.
    pub fn from_draws(
        counts_n0: Vec<u64>,
        counts: Vec<u64>,
        sigma: f32,
        alpha: f64,
        key: NoiseKey,
    ) -> Result<Self> {
        if counts_n0.is_empty() || counts.len() != counts_n0.len() {
            return Err(Error::Invalid(format!(
                "selection and estimation counts must cover the same classes, got {} and {}",
                counts_n0.len(),
                counts.len()
            )));
        }
        let (n0, n) = (counts_n0.iter().sum(), counts.iter().sum());
        let c_hat = argmax(&counts_n0);
        let n_a = counts[c_hat as usize];
        // the decision is `from_counts`'s; the draws behind it are kept
        Ok(Self {
            n0,
            counts_n0,
            counts,
            ..Self::from_counts(c_hat, n_a, n, sigma, alpha, key)?
        })
    }
}

/// Settings of PREDICT.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictParams {
    /// Noise level σ > 0 (finite), in the [0, 1] pixel scale.
    pub sigma: f32,
    /// Draws, 1..=10⁷ (reference: 100,000).
    pub n: u64,
    /// Failure probability α ∈ (0, 1) (reference: 0.001).
    pub alpha: f64,
    /// Noisy copies per call of the base classifier, 1..=10,000.
    pub batch: usize,
}

impl PredictParams {
    /// Cohen et al.'s reference settings at noise level σ: n = 100,000, α = 0.001, in
    /// batches of 100.
    pub fn new(sigma: f32) -> Self {
        Self {
            sigma,
            n: 100_000,
            alpha: 0.001,
            batch: 100,
        }
    }

    pub fn validate(&self) -> Result<()> {
        crate::noise::check_sigma(self.sigma)?;
        check_samples("n", "samples", self.n)?;
        check_alpha("α", self.alpha)?;
        check_batch(self.batch)
    }
}

/// The result of PREDICT for one image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The smoothed classifier's class g(x), or `None` to abstain.
    pub prediction: Option<u32>,
    /// Class counts of the n draws.
    pub counts: Vec<u64>,
    /// p-value of the two-sided binomial test of the top count against the runner-up.
    pub p_value: f64,
    pub n: u64,
    pub sigma: f32,
    pub alpha: f64,
    pub key: NoiseKey,
}

/// PREDICT (Cohen et al. 2019, Algorithm "predict"): with probability at least 1 − α over
/// the noise, it returns the smoothed classifier's class g(x) or abstains (`None`).
///
/// Steps: count f's answers on n draws; with n_A, n_B the top two counts, abstain if the
/// two-sided binomial test of n_A out of n_A + n_B against p = ½ has p-value > α, else return
/// the top class (the lowest index among tied classes, which then always abstains).
/// Progress and cancellation as in [`certify`], with total n.
pub fn predict(
    f: &mut dyn BaseClassifier,
    image: &[u8],
    params: &PredictParams,
    key: NoiseKey,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Outcome<Prediction>> {
    params.validate()?;
    let copies = NoisyCopies::new(image, params.sigma, key)?;
    let samples = PREDICTION_SAMPLES..PREDICTION_SAMPLES + params.n;
    let counts = completed_or_return!(sample_counts(f, &copies, samples, params.batch, progress)?);
    let top = argmax(&counts);
    let n_a = counts[top as usize];
    let n_b = counts
        .iter()
        .enumerate()
        .filter(|&(class, _)| class != top as usize)
        .map(|(_, &count)| count)
        .max()
        .unwrap_or(0);
    let p_value = binomial_test_p_value(n_a, n_a + n_b)?;
    Ok(Outcome::Completed(Prediction {
        prediction: (p_value <= params.alpha).then_some(top),
        counts,
        p_value,
        n: params.n,
        sigma: params.sigma,
        alpha: params.alpha,
        key,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smoothing::mocks::{image, Constant, Scrambled, Threshold};
    use statrs::distribution::{ContinuousCDF, Normal};

    fn go(_: u64, _: u64) -> bool {
        true
    }

    fn small(sigma: f32, n0: u64, n: u64, alpha: f64) -> CertifyParams {
        CertifyParams {
            sigma,
            n0,
            n,
            alpha,
            batch: 100,
        }
    }

    fn certify_done(
        f: &mut dyn BaseClassifier,
        x: &[u8],
        params: &CertifyParams,
        key: NoiseKey,
    ) -> Certificate {
        certify(f, x, params, key, &mut go)
            .unwrap()
            .completed()
            .unwrap()
    }

    #[test]
    fn constant_classifier_gets_the_closed_form_radius() {
        // f ≡ 7: n_A = n, so p_A = the α-quantile of Beta(n, 1) = α^(1/n), and the radius is
        // σ·Φ⁻¹(α^(1/n)).
        let (sigma, n, alpha) = (0.5, 1000, 0.001);
        let cert = certify_done(
            &mut Constant::new(7),
            &image(0),
            &small(sigma, 50, n, alpha),
            NoiseKey::new(1, 0),
        );
        let p_a = alpha.powf(1.0 / n as f64);
        let radius = f64::from(sigma) * Normal::standard().inverse_cdf(p_a);
        assert_eq!(cert.prediction, Some(7));
        assert_eq!((cert.c_hat, cert.n_a, cert.n, cert.n0), (7, n, n, 50));
        assert_eq!(cert.counts_n0[7], 50);
        assert!((cert.p_a - p_a).abs() < 1e-12, "{}", cert.p_a);
        assert!(
            (cert.radius - radius).abs() < 1e-9,
            "{} vs {radius}",
            cert.radius
        );
    }

    #[test]
    fn random_classifier_abstains() {
        // Every class has probability 1/10, so p_A ≤ ~0.1 + noise < ½: abstain, radius 0.
        let cert = certify_done(
            &mut Scrambled,
            &image(0),
            &small(0.25, 100, 2000, 0.001),
            NoiseKey::new(3, 9),
        );
        assert_eq!(cert.prediction, None);
        assert_eq!(cert.radius, 0.0);
        assert!(cert.p_a < 0.15, "{}", cert.p_a);
        // The counts are spread over all ten classes.
        assert!(
            cert.counts.iter().all(|&c| c > 120 && c < 280),
            "{:?}",
            cert.counts
        );
        let pred = predict(
            &mut Scrambled,
            &image(0),
            &PredictParams {
                sigma: 0.25,
                n: 2000,
                alpha: 0.001,
                batch: 100,
            },
            NoiseKey::new(3, 9),
            &mut go,
        )
        .unwrap()
        .completed()
        .unwrap();
        assert_eq!(pred.prediction, None);
    }

    #[test]
    fn linear_classifier_certifies_close_to_its_true_radius() {
        // f = [x₀ > t] with x₀ = 1 (pixel 255), t = 0.5, σ = 0.5: P(f(x+ε) = 1) = Φ(1) ≈ 0.841
        // and the exact radius of g is the distance 0.5 to the boundary. With n = 10⁴ the
        // lower bound sits about z₀.₉₉₉·√(p(1−p)/n) ≈ 3.09·0.0037 ≈ 0.011 below p, so the
        // expected certificate is σ·Φ⁻¹(0.830) ≈ 0.477, with a standard error of
        // σ·0.0037/φ(1) ≈ 0.008. It may exceed 0.5 only with probability α; 0.44 is more
        // than 4 standard errors below the expectation.
        let sigma = 0.5;
        let cert = certify_done(
            &mut Threshold {
                pixel: 0,
                threshold: 0.5,
            },
            &image(255),
            &small(sigma, 100, 10_000, 0.001),
            NoiseKey::new(5, 1),
        );
        assert_eq!(cert.prediction, Some(1));
        assert!(cert.radius <= 0.5 && cert.radius > 0.44, "{}", cert.radius);
        let rate = cert.n_a as f64 / cert.n as f64;
        // Observed rate within 4 standard errors (0.0037) of Φ(1).
        assert!((rate - 0.841_344_7).abs() < 0.015, "{rate}");
    }

    #[test]
    fn predict_agrees_with_a_clear_majority() {
        let params = PredictParams {
            sigma: 0.5,
            n: 1000,
            alpha: 0.001,
            batch: 64,
        };
        let mut f = Threshold {
            pixel: 0,
            threshold: 0.5,
        };
        let pred = predict(&mut f, &image(255), &params, NoiseKey::new(1, 2), &mut go)
            .unwrap()
            .completed()
            .unwrap();
        assert_eq!(pred.prediction, Some(1));
        assert!(pred.p_value < 1e-6);
        assert_eq!(pred.counts.iter().sum::<u64>(), 1000);
        // On the boundary (x₀ = 128/255 ≈ t) the two classes are a coin flip: abstain.
        let mut on_boundary = Threshold {
            pixel: 0,
            threshold: 128.0 / 255.0,
        };
        let pred = predict(
            &mut on_boundary,
            &image(128),
            &params,
            NoiseKey::new(1, 2),
            &mut go,
        )
        .unwrap()
        .completed()
        .unwrap();
        assert_eq!(pred.prediction, None, "{:?}", pred.counts);
    }

    #[test]
    fn same_seed_same_certificate_other_seed_other_counts() {
        // On the boundary every draw is a coin flip, so the counts depend on the noise.
        let mut f = Threshold {
            pixel: 0,
            threshold: 128.0 / 255.0,
        };
        let params = small(0.25, 100, 1000, 0.001);
        let a = certify_done(&mut f, &image(128), &params, NoiseKey::new(42, 3));
        let b = certify_done(&mut f, &image(128), &params, NoiseKey::new(42, 3));
        assert_eq!(a, b);
        let other_seed = certify_done(&mut f, &image(128), &params, NoiseKey::new(43, 3));
        let other_image = certify_done(&mut f, &image(128), &params, NoiseKey::new(42, 4));
        assert_ne!(a.counts, other_seed.counts);
        assert_ne!(a.counts, other_image.counts);
        // A different batch size only changes how the same draws are grouped.
        let rebatched = certify_done(
            &mut f,
            &image(128),
            &CertifyParams { batch: 7, ..params },
            NoiseKey::new(42, 3),
        );
        assert_eq!(a, rebatched);
    }

    #[test]
    fn selection_and_estimation_draws_are_different_noise() {
        // With n0 = n the two phases would have identical counts if they reused the draws.
        let mut f = Threshold {
            pixel: 0,
            threshold: 128.0 / 255.0,
        };
        let cert = certify_done(
            &mut f,
            &image(128),
            &small(0.25, 500, 500, 0.001),
            NoiseKey::new(9, 9),
        );
        assert_ne!(cert.counts_n0, cert.counts);
    }

    #[test]
    fn the_sample_ranges_never_overlap() {
        // Every use of the noise starts at its own index; with at most MAX_SAMPLES draws each,
        // the ranges [start, start + MAX_SAMPLES) must be pairwise disjoint.
        let starts = [
            ESTIMATION_SAMPLES,
            SELECTION_SAMPLES,
            PREDICTION_SAMPLES,
            IRS_SELECTION_SAMPLES,
            IRS_ESTIMATION_SAMPLES,
        ];
        for (i, &a) in starts.iter().enumerate() {
            for &b in &starts[i + 1..] {
                let (lo, hi) = (a.min(b), a.max(b));
                assert!(lo + MAX_SAMPLES <= hi, "ranges at {a} and {b} overlap");
            }
        }
    }

    #[test]
    fn bad_arguments_name_the_argument() {
        let x = image(0);
        let key = NoiseKey::default();
        let good = small(0.25, 10, 10, 0.001);
        let cases: Vec<(CertifyParams, &str)> = vec![
            (CertifyParams { sigma: 0.0, ..good }, "σ"),
            (
                CertifyParams {
                    sigma: -0.5,
                    ..good
                },
                "σ",
            ),
            (
                CertifyParams {
                    sigma: f32::NAN,
                    ..good
                },
                "σ",
            ),
            (CertifyParams { alpha: 0.0, ..good }, "α"),
            (CertifyParams { alpha: 1.0, ..good }, "α"),
            (
                CertifyParams {
                    alpha: f64::NAN,
                    ..good
                },
                "α",
            ),
            (CertifyParams { n0: 0, ..good }, "n0 (selection samples)"),
            (CertifyParams { n: 0, ..good }, "n (estimation samples)"),
            (
                CertifyParams {
                    n: 10_000_001,
                    ..good
                },
                "n (estimation samples)",
            ),
            (
                CertifyParams {
                    n0: u64::MAX,
                    ..good
                },
                "n0 (selection samples)",
            ),
            (CertifyParams { batch: 0, ..good }, "batch"),
        ];
        for (params, name) in cases {
            let err = certify(&mut Constant::new(0), &x, &params, key, &mut go)
                .unwrap_err()
                .to_string();
            assert!(err.contains(name), "{params:?}: {err}");
        }
        let err = certify(&mut Constant::new(0), &x[..783], &good, key, &mut go)
            .unwrap_err()
            .to_string();
        assert!(err.contains("784 pixels"), "{err}");
        let err = predict(
            &mut Constant::new(0),
            &x,
            &PredictParams {
                n: 0,
                ..PredictParams::new(0.25)
            },
            key,
            &mut go,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("n (samples)"), "{err}");
    }

    #[test]
    fn cancelling_stops_cleanly_without_a_certificate() {
        let mut f = Constant::new(2);
        let mut seen = Vec::new();
        let outcome = certify(
            &mut f,
            &image(0),
            &small(0.25, 100, 1000, 0.001),
            NoiseKey::default(),
            &mut |done, total| {
                seen.push((done, total));
                done < 300
            },
        )
        .unwrap();
        assert!(outcome.is_cancelled());
        // One selection batch (100), then estimation batches up to 300 done: 3 batches.
        assert_eq!(seen, vec![(100, 1100), (200, 1100), (300, 1100)]);
        assert_eq!(f.batches, 3);
        // Cancelling during the selection phase also stops.
        let outcome = certify(
            &mut f,
            &image(0),
            &small(0.25, 1000, 1000, 0.001),
            NoiseKey::default(),
            &mut |_, _| false,
        )
        .unwrap();
        assert_eq!(outcome, Outcome::Cancelled);
    }

    #[test]
    fn progress_reaches_the_total() {
        let mut last = (0, 0);
        certify(
            &mut Constant::new(0),
            &image(0),
            &CertifyParams {
                batch: 30,
                ..small(0.25, 50, 100, 0.01)
            },
            NoiseKey::default(),
            &mut |done, total| {
                assert!(done > last.0);
                last = (done, total);
                true
            },
        )
        .unwrap();
        assert_eq!(last, (150, 150));
    }

    #[test]
    fn sample_counts_stream_in_batches() {
        let copies = NoisyCopies::new(&image(128), 0.25, NoiseKey::new(1, 1)).unwrap();
        let mut f = Threshold {
            pixel: 0,
            threshold: 128.0 / 255.0,
        };
        let whole = sample_counts(&mut f, &copies, 0..1000, 1000, &mut go).unwrap();
        let pieces = sample_counts(&mut f, &copies, 0..1000, 33, &mut go).unwrap();
        assert_eq!(whole, pieces);
        let counts = whole.completed().unwrap();
        assert_eq!(counts.len(), 10);
        assert_eq!(counts[0] + counts[1], 1000);
        // Split ranges add up: the draws are addressed by index.
        let a = sample_counts(&mut f, &copies, 0..400, 100, &mut go).unwrap();
        let b = sample_counts(&mut f, &copies, 400..1000, 100, &mut go).unwrap();
        let (a, b) = (a.completed().unwrap(), b.completed().unwrap());
        assert_eq!(a[1] + b[1], counts[1]);
    }

    #[test]
    fn real_model_can_be_certified() {
        use crate::model::{Model, ModelMeta};
        let mut model =
            Model::init(ModelMeta::new("mnist", 0.25), 3, &candle_core::Device::Cpu).unwrap();
        let params = CertifyParams {
            batch: 50,
            ..small(0.25, 20, 100, 0.01)
        };
        let a = certify_done(&mut model, &image(200), &params, NoiseKey::new(1, 0));
        let b = certify_done(&mut model, &image(200), &params, NoiseKey::new(1, 0));
        assert_eq!(a, b);
        assert_eq!(a.counts.iter().sum::<u64>(), 100);
        assert_eq!(a.counts_n0.iter().sum::<u64>(), 20);
    }
}
