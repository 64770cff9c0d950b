//! Incremental randomized smoothing (IRS; Ugare, Singh, Misailovic et al., ICLR 2024):
//! certify a modified classifier fᵖ — here a quantized copy of f — from f's cached
//! certificate and a few replayed noisy copies, instead of recertifying from scratch.
//!
//! The idea: for every class c, P(fᵖ(x+ε) = c) ≥ P(f(x+ε) = c) − P(f(x+ε) ≠ fᵖ(x+ε)). So a
//! lower bound p_A for f and an upper bound ζ on the disagreement probability give the lower
//! bound p_A − ζ for fᵖ, and the disagreement of two similar networks is rare, so it is
//! bounded tightly by far fewer samples (n_χ ≪ n) than p_A needs. When p_A is already close
//! to 1 (≥ γ), subtracting ζ costs more radius than recertifying fᵖ with n_χ samples, so IRS
//! does that instead.
//!
//! The guarantee of the whole procedure. Each path makes its own claim: on the incremental
//! path, the radius holds if f's p_A and the bound ζ both hold (probability ≥ 1 − α − α_χ);
//! on the full path, fᵖ is certified by CERTIFY on fresh draws (sample indices
//! [`IRS_SELECTION_SAMPLES`] and [`IRS_ESTIMATION_SAMPLES`], disjoint from every draw of f,
//! whose answers chose the path), so its claim holds with probability ≥ 1 − α given the
//! path. Together, a certificate returned by [`certify_incremental`] is wrong with
//! probability at most α + α_χ (union bound): given f's guess ĉ_A, "f's bound fails" (n_A
//! high) and "incremental path" (n_A low enough for p_A < γ) are an increasing and a
//! decreasing event of one binomial count, so P(both) ≤ α·P(incremental); the full path
//! fails with at most α·P(full); these add up to α, and ζ adds α_χ.

use crate::error::{Error, Result};
use crate::smoothing::bounds::{certified_radius, check_alpha, clopper_pearson_upper};
use crate::smoothing::certify::{
    certify_on, check_batch, check_samples, completed_or_return, for_each_batch, Certificate,
    CertifyParams, Outcome, SampleRanges, ESTIMATION_SAMPLES, IRS_ESTIMATION_SAMPLES,
    IRS_SELECTION_SAMPLES,
};
use crate::smoothing::classifier::{classify_checked, BaseClassifier};
use crate::smoothing::noise::NoisyCopies;
use serde::{Deserialize, Serialize};

/// γ of the IRS paper for small images: below it IRS reuses p_A, at or above it recertifies.
pub const DEFAULT_GAMMA: f64 = 0.99;

/// Settings of incremental certification.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct IrsParams {
    /// Replayed draws n_χ, 1..=10⁷ (reference experiments: 1 % to 10 % of f's n).
    pub n_chi: u64,
    /// Failure probability α_χ ∈ (0, 1) of the disagreement bound ζ (reference: 0.001).
    pub alpha_chi: f64,
    /// Threshold γ ∈ [0, 1] on f's p_A: p_A < γ takes the incremental path, p_A ≥ γ
    /// recertifies fᵖ (reference: 0.99; γ = 0 always recertifies, γ = 1 never does).
    pub gamma: f64,
    /// Selection draws n0 when recertifying fᵖ, 1..=10⁷ (reference: 100).
    pub n0: u64,
    /// Noisy copies per call of each classifier, 1..=10,000.
    pub batch: usize,
}

impl IrsParams {
    /// The reference settings with n_χ replayed draws: α_χ = 0.001, γ = 0.99, n0 = 100, in
    /// batches of 100.
    pub fn new(n_chi: u64) -> Self {
        Self {
            n_chi,
            alpha_chi: 0.001,
            gamma: DEFAULT_GAMMA,
            n0: 100,
            batch: 100,
        }
    }

    pub fn validate(&self) -> Result<()> {
        check_samples("n_χ", "replayed samples", self.n_chi)?;
        check_alpha("α_χ", self.alpha_chi)?;
        if !(0.0..=1.0).contains(&self.gamma) {
            return Err(Error::Invalid(format!(
                "γ must be in [0, 1] (e.g. 0.99), got {}",
                self.gamma
            )));
        }
        check_samples("n0", "selection samples", self.n0)?;
        check_batch(self.batch)
    }
}

/// Which way IRS certified an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IrsPath {
    /// p_A < γ: f's p_A reused, minus the disagreement bound ζ.
    Incremental,
    /// p_A ≥ γ: fᵖ certified from scratch with n0 and n_χ fresh draws (disjoint from f's).
    Full,
}

/// The result of IRS for one image and one modified classifier fᵖ.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncrementalCertificate {
    pub path: IrsPath,
    /// The smoothed fᵖ's class, or `None` to abstain.
    pub prediction: Option<u32>,
    /// Certified ℓ₂ radius σ·Φ⁻¹(p) for the bound p below; 0 when abstaining.
    pub radius: f64,
    /// The lower bound on P(fᵖ(x+ε) = class) the radius comes from: f's p_A − ζ on the
    /// incremental path, fᵖ's own p_A on the full path.
    pub p_a: f64,
    /// Upper Clopper–Pearson bound ζ on P(f(x+ε) ≠ fᵖ(x+ε)) at confidence 1 − α_χ
    /// (incremental path only).
    pub zeta: Option<f64>,
    /// Replayed draws on which f and fᵖ disagreed (incremental path only).
    pub disagreements: Option<u64>,
    pub n_chi: u64,
    /// The counts behind `p_a`: f's n_A and n from the reference (incremental path) or fᵖ's
    /// n_A out of n_χ (full path).
    pub n_a: u64,
    pub n: u64,
}

fn check_reference(
    f: &dyn BaseClassifier,
    f_p: &dyn BaseClassifier,
    reference: &Certificate,
) -> Result<()> {
    crate::noise::check_sigma(reference.sigma)?;
    check_alpha("the reference certificate's α", reference.alpha)?;
    if f.num_classes() != f_p.num_classes() {
        return Err(Error::Invalid(format!(
            "f has {} classes but fᵖ has {}: IRS compares two versions of one classifier",
            f.num_classes(),
            f_p.num_classes()
        )));
    }
    if !(0.0..=1.0).contains(&reference.p_a) || reference.c_hat as usize >= f.num_classes() {
        return Err(Error::Invalid(format!(
            "the reference certificate is inconsistent (ĉ_A = {}, p_A = {}) for a classifier of {} classes",
            reference.c_hat,
            reference.p_a,
            f.num_classes()
        )));
    }
    Ok(())
}

/// IRS's IncrementalRobustCertify: certifies the modified classifier fᵖ at x from the
/// `reference` certificate of f at x (made by [`certify`] with the same `image`; it supplies
/// ĉ_A, p_A, σ, α and the noise key).
///
/// - If p_A < γ ([`IrsPath::Incremental`]): replay f's first n_χ estimation draws, count
///   the disagreements of f and fᵖ on them, ζ = upper Clopper–Pearson bound of
///   disagreements / n_χ at confidence 1 − α_χ; abstain if p_A − ζ < ½, else return ĉ_A with
///   radius σ·Φ⁻¹(p_A − ζ). With probability at least 1 − α − α_χ, the smoothed fᵖ returns
///   ĉ_A on the whole ℓ₂ ball of that radius.
/// - If p_A ≥ γ ([`IrsPath::Full`]): CERTIFY fᵖ at the reference's α with n0 and n_χ fresh
///   draws (the same noise key, but sample indices [`IRS_SELECTION_SAMPLES`] + 0..n0 and
///   [`IRS_ESTIMATION_SAMPLES`] + 0..n_χ, never used for f); with probability at least
///   1 − α the smoothed fᵖ returns its class on the ball of the radius returned.
///
/// Overall (see the module documentation), a returned certificate holds with probability at
/// least 1 − (α + α_χ), whichever path was taken.
///
/// `progress(done, total)` is called after every batch (total n_χ, or n0 + n_χ on the full
/// path); returning false cancels the run, which then returns [`Outcome::Cancelled`].
pub fn certify_incremental(
    f: &mut dyn BaseClassifier,
    f_p: &mut dyn BaseClassifier,
    image: &[u8],
    reference: &Certificate,
    params: &IrsParams,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Outcome<IncrementalCertificate>> {
    params.validate()?;
    check_reference(f, f_p, reference)?;
    let copies = NoisyCopies::new(image, reference.sigma, reference.key)?;
    let n_chi = params.n_chi;

    if reference.p_a >= params.gamma {
        let full = CertifyParams {
            sigma: reference.sigma,
            n0: params.n0,
            n: n_chi,
            alpha: reference.alpha,
            batch: params.batch,
        };
        // Fresh draws: f's selection and estimation draws chose this path, so reusing them
        // would make fᵖ's sample depend on the decision to take it.
        let fresh = SampleRanges {
            selection: IRS_SELECTION_SAMPLES,
            estimation: IRS_ESTIMATION_SAMPLES,
        };
        let cert = completed_or_return!(certify_on(
            f_p,
            image,
            &full,
            reference.key,
            fresh,
            progress
        )?);
        return Ok(Outcome::Completed(IncrementalCertificate {
            path: IrsPath::Full,
            prediction: cert.prediction,
            radius: cert.radius,
            p_a: cert.p_a,
            zeta: None,
            disagreements: None,
            n_chi,
            n_a: cert.n_a,
            n: cert.n,
        }));
    }

    let mut disagreements = 0u64;
    let replay = ESTIMATION_SAMPLES..ESTIMATION_SAMPLES + n_chi;
    completed_or_return!(for_each_batch(
        &copies,
        replay,
        params.batch,
        progress,
        |inputs, len| {
            let answers = classify_checked(f, inputs, len)?;
            let answers_p = classify_checked(f_p, inputs, len)?;
            disagreements += answers
                .iter()
                .zip(&answers_p)
                .filter(|(a, b)| a != b)
                .count() as u64;
            Ok(())
        }
    )?);
    let zeta = clopper_pearson_upper(disagreements, n_chi, params.alpha_chi)?;
    let p_a = reference.p_a - zeta;
    let (prediction, radius) = if p_a < 0.5 {
        (None, 0.0)
    } else {
        (
            Some(reference.c_hat),
            certified_radius(reference.sigma, p_a),
        )
    };
    Ok(Outcome::Completed(IncrementalCertificate {
        path: IrsPath::Incremental,
        prediction,
        radius,
        p_a,
        zeta: Some(zeta),
        disagreements: Some(disagreements),
        n_chi,
        n_a: reference.n_a,
        n: reference.n,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smoothing::certify::{certify, sample_counts, SELECTION_SAMPLES};
    use crate::smoothing::mocks::{image, Constant, Perturbed, Threshold};
    use crate::smoothing::noise::NoiseKey;
    use std::collections::HashSet;

    fn go(_: u64, _: u64) -> bool {
        true
    }

    fn threshold() -> Threshold {
        Threshold {
            pixel: 0,
            threshold: 0.5,
        }
    }

    /// f = [x₀ > 0.5] at x₀ = 1, σ = 0.5: p ≈ Φ(1) ≈ 0.84, so p_A < γ (incremental path).
    fn reference(f: &mut dyn BaseClassifier, x: &[u8], n: u64) -> Certificate {
        let params = CertifyParams {
            sigma: 0.5,
            n0: 100,
            n,
            alpha: 0.001,
            batch: 100,
        };
        certify(f, x, &params, NoiseKey::new(17, 4), &mut go)
            .unwrap()
            .completed()
            .unwrap()
    }

    fn irs(
        f: &mut dyn BaseClassifier,
        f_p: &mut dyn BaseClassifier,
        x: &[u8],
        reference: &Certificate,
        params: &IrsParams,
    ) -> IncrementalCertificate {
        certify_incremental(f, f_p, x, reference, params, &mut go)
            .unwrap()
            .completed()
            .unwrap()
    }

    #[test]
    fn unchanged_classifier_keeps_the_prediction_with_zero_disagreements() {
        let x = image(255);
        let cert = reference(&mut threshold(), &x, 10_000);
        assert!(cert.p_a < DEFAULT_GAMMA && cert.prediction == Some(1));
        let out = irs(
            &mut threshold(),
            &mut threshold(),
            &x,
            &cert,
            &IrsParams::new(1000),
        );
        assert_eq!(out.path, IrsPath::Incremental);
        assert_eq!(out.disagreements, Some(0));
        // No disagreement: ζ = the upper bound of 0/n_χ = 1 − α_χ^(1/n_χ) ≈ 0.0069.
        let zeta = 1.0 - 0.001f64.powf(1.0 / 1000.0);
        assert!((out.zeta.unwrap() - zeta).abs() < 1e-12);
        // The same prediction as certifying fᵖ (= f) from scratch, at a slightly smaller
        // radius σ·Φ⁻¹(p_A − ζ).
        let full = reference(&mut threshold(), &x, 10_000);
        assert_eq!(out.prediction, full.prediction);
        assert_eq!(out.p_a, cert.p_a - out.zeta.unwrap());
        assert_eq!(out.radius, certified_radius(0.5, out.p_a));
        assert!(out.radius < cert.radius && out.radius > cert.radius - 0.05);
        assert_eq!((out.n_a, out.n, out.n_chi), (cert.n_a, cert.n, 1000));
    }

    #[test]
    fn both_classifiers_see_the_same_replayed_noise() {
        // On the decision boundary f is a coin flip over the noise; a copy of f agrees with it
        // on every draw only if both are shown the very same noisy copies.
        let x = image(128);
        let boundary = || Threshold {
            pixel: 0,
            threshold: 128.0 / 255.0,
        };
        let cert = reference(&mut boundary(), &x, 1000);
        let out = irs(
            &mut boundary(),
            &mut boundary(),
            &x,
            &cert,
            &IrsParams::new(500),
        );
        assert_eq!(out.disagreements, Some(0));
        // The reference abstained (p_A < ½), so IRS abstains too.
        assert_eq!(cert.prediction, None);
        assert_eq!((out.prediction, out.radius), (None, 0.0));
    }

    #[test]
    fn zeta_bounds_the_observed_disagreement_rate() {
        // fᵖ flips f's answer on a pseudo-random 5 % of inputs.
        let x = image(255);
        let cert = reference(&mut threshold(), &x, 10_000);
        let n_chi = 2000;
        let out = irs(
            &mut threshold(),
            &mut Perturbed {
                inner: threshold(),
                rate: 0.05,
            },
            &x,
            &cert,
            &IrsParams::new(n_chi),
        );
        let disagreements = out.disagreements.unwrap();
        let rate = disagreements as f64 / n_chi as f64;
        // 2,000 draws at 5 %: standard error 0.0049; 4 of them is 0.02.
        assert!((rate - 0.05).abs() < 0.02, "disagreement rate {rate}");
        let zeta = out.zeta.unwrap();
        assert!(zeta >= rate, "ζ = {zeta} < observed rate {rate}");
        assert_eq!(
            zeta,
            clopper_pearson_upper(disagreements, n_chi, 0.001).unwrap()
        );
        assert!((out.p_a - (cert.p_a - zeta)).abs() < 1e-15);
        assert!(out.radius <= certified_radius(0.5, cert.p_a - rate));
        assert_eq!(out.prediction, Some(1));
    }

    #[test]
    fn too_much_disagreement_abstains() {
        let x = image(255);
        let cert = reference(&mut threshold(), &x, 10_000);
        let out = irs(
            &mut threshold(),
            &mut Perturbed {
                inner: threshold(),
                rate: 0.4,
            },
            &x,
            &cert,
            &IrsParams::new(1000),
        );
        assert_eq!(out.path, IrsPath::Incremental);
        assert!(out.p_a < 0.5);
        assert_eq!((out.prediction, out.radius), (None, 0.0));
    }

    #[test]
    fn high_p_a_takes_the_full_path() {
        // f ≡ 3 with n = 1000, α = 0.001: p_A = 0.001^(1/1000) ≈ 0.9931 ≥ γ = 0.99.
        let x = image(0);
        let cert = reference(&mut Constant::new(3), &x, 1000);
        assert!(cert.p_a >= DEFAULT_GAMMA, "{}", cert.p_a);
        let mut f_p = Constant::new(3);
        let out = irs(
            &mut Constant::new(3),
            &mut f_p,
            &x,
            &cert,
            &IrsParams::new(500),
        );
        assert_eq!(out.path, IrsPath::Full);
        assert_eq!((out.zeta, out.disagreements), (None, None));
        // fᵖ certified on its own with n_χ = 500 draws: p_A = α^(1/500).
        let p_a = 0.001f64.powf(1.0 / 500.0);
        assert!((out.p_a - p_a).abs() < 1e-12);
        assert_eq!((out.prediction, out.n_a, out.n), (Some(3), 500, 500));
        assert!((out.radius - certified_radius(0.5, p_a)).abs() < 1e-12);
        // f itself was not needed on this path; fᵖ saw n0 + n_χ draws (batches of 100).
        assert_eq!(f_p.batches, 6);
        // A fᵖ that answers differently is certified for its own class.
        let out = irs(
            &mut Constant::new(3),
            &mut Constant::new(8),
            &x,
            &cert,
            &IrsParams::new(500),
        );
        assert_eq!(out.prediction, Some(8));
        // With γ = 1 the same reference takes the incremental path instead.
        let out = irs(
            &mut Constant::new(3),
            &mut Constant::new(3),
            &x,
            &cert,
            &IrsParams {
                gamma: 1.0,
                ..IrsParams::new(500)
            },
        );
        assert_eq!(out.path, IrsPath::Incremental);
        assert_eq!(out.disagreements, Some(0));
    }

    /// Records the first four pixels of every noisy input it is shown (as bit patterns: two
    /// different draws practically never coincide in all four), answering as `inner`.
    struct Recording<C> {
        inner: C,
        seen: HashSet<[u32; 4]>,
    }

    impl<C: BaseClassifier> BaseClassifier for Recording<C> {
        fn num_classes(&self) -> usize {
            self.inner.num_classes()
        }
        fn classify_batch(&mut self, inputs: &[f32], batch: usize) -> Result<Vec<u32>> {
            let pixels = inputs.len() / batch;
            self.seen.extend(
                inputs
                    .chunks(pixels)
                    .map(|x| [0, 1, 2, 3].map(|i| x[i].to_bits())),
            );
            self.inner.classify_batch(inputs, batch)
        }
    }

    #[test]
    fn full_path_certifies_on_fresh_draws() {
        // f ≡ 3 with n = 1000: p_A = 0.001^(1/1000) ≥ γ, so IRS recertifies fᵖ. fᵖ is a coin
        // flip over the noise (x₀ on its threshold), so its counts show which draws it saw.
        let x = image(128);
        let key = NoiseKey::new(17, 4);
        let mut f = Recording {
            inner: Constant::new(3),
            seen: HashSet::new(),
        };
        let cert = reference(&mut f, &x, 1000);
        assert!(cert.p_a >= DEFAULT_GAMMA && cert.key == key);
        let coin = || Threshold {
            pixel: 0,
            threshold: 128.0 / 255.0,
        };
        let mut f_p = Recording {
            inner: coin(),
            seen: HashSet::new(),
        };
        let params = IrsParams::new(400);
        let out = irs(&mut Constant::new(3), &mut f_p, &x, &cert, &params);
        assert_eq!(out.path, IrsPath::Full);

        // fᵖ saw none of the 1,100 draws f was certified on, and n0 + n_χ of its own.
        assert_eq!(f.seen.len(), 1100);
        assert_eq!(f_p.seen.len(), 500);
        assert!(f.seen.is_disjoint(&f_p.seen));

        // Its guess and n_A are those of the ranges set aside for this path: the guess from
        // IRS_SELECTION_SAMPLES + 0..n0, n_A from IRS_ESTIMATION_SAMPLES + 0..n_χ.
        let copies = NoisyCopies::new(&x, 0.5, key).unwrap();
        let count = |start: u64, len: u64| {
            sample_counts(&mut coin(), &copies, start..start + len, 100, &mut go)
                .unwrap()
                .completed()
                .unwrap()
        };
        let selection = count(IRS_SELECTION_SAMPLES, 100);
        let c_hat = if selection[1] > selection[0] { 1 } else { 0 };
        let estimation = count(IRS_ESTIMATION_SAMPLES, 400);
        assert_eq!(out.n_a, estimation[c_hat]);
        assert_eq!(out.n, 400);
        // The old behaviour (CERTIFY of fᵖ on f's own ranges) counts other draws.
        let reused = count(ESTIMATION_SAMPLES, 400);
        let reused_selection = count(SELECTION_SAMPLES, 100);
        assert_ne!((reused_selection, reused), (selection, estimation));
    }

    #[test]
    fn bad_arguments_and_cancellation() {
        let x = image(255);
        let cert = reference(&mut threshold(), &x, 1000);
        let good = IrsParams::new(100);
        let cases: Vec<(IrsParams, &str)> = vec![
            (IrsParams { n_chi: 0, ..good }, "n_χ"),
            (
                IrsParams {
                    n_chi: 20_000_000,
                    ..good
                },
                "n_χ",
            ),
            (
                IrsParams {
                    alpha_chi: 0.0,
                    ..good
                },
                "α_χ",
            ),
            (
                IrsParams {
                    alpha_chi: f64::NAN,
                    ..good
                },
                "α_χ",
            ),
            (IrsParams { gamma: 1.5, ..good }, "γ"),
            (
                IrsParams {
                    gamma: f64::NAN,
                    ..good
                },
                "γ",
            ),
            (IrsParams { batch: 0, ..good }, "batch"),
        ];
        for (params, name) in cases {
            let err = certify_incremental(
                &mut threshold(),
                &mut threshold(),
                &x,
                &cert,
                &params,
                &mut go,
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains(name), "{params:?}: {err}");
        }
        let broken = Certificate {
            c_hat: 12,
            ..cert.clone()
        };
        let err = certify_incremental(
            &mut threshold(),
            &mut threshold(),
            &x,
            &broken,
            &good,
            &mut go,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("reference certificate"), "{err}");
        let err = certify_incremental(
            &mut threshold(),
            &mut threshold(),
            &x[..10],
            &cert,
            &good,
            &mut go,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("784 pixels"), "{err}");

        let mut calls = 0;
        let outcome = certify_incremental(
            &mut threshold(),
            &mut threshold(),
            &x,
            &cert,
            &IrsParams::new(1000),
            &mut |done, total| {
                calls += 1;
                assert_eq!(total, 1000);
                done < 200
            },
        )
        .unwrap();
        assert_eq!(outcome, Outcome::Cancelled);
        assert_eq!(calls, 2);
    }
}
