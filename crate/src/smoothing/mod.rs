//! Randomized smoothing (Cohen, Rosenfeld & Kolter, ICML 2019) and incremental randomized
//! smoothing (IRS; Ugare, Singh, Misailovic et al., ICLR 2024).
//!
//! The smoothed classifier of a base classifier f at noise level σ is
//! g(x) = argmax_c P(f(x + ε) = c), ε ~ N(0, σ²I). It cannot be evaluated exactly, so
//! [`certify()`] and [`predict`] estimate it from noisy copies of x with statistical guarantees
//! that hold with probability at least 1 − α over the noise:
//!
//! - [`certify()`] (CERTIFY): the class it returns is g(x), and g is constant on the ℓ₂ ball of
//!   the returned radius σ·Φ⁻¹(p_A) around x, where p_A is the lower Clopper–Pearson bound
//!   of the top class's probability. It abstains when p_A < ½.
//! - [`predict`] (PREDICT): the class it returns is g(x); it abstains when a two-sided binomial
//!   test cannot separate the top two classes at level α.
//! - [`certify_incremental`] (IRS): re-certifies a modified classifier fᵖ (a quantized f)
//!   from f's cached [`Certificate`] and n_χ ≪ n replayed noisy copies, bounding the
//!   disagreement probability P(f(x+ε) ≠ fᵖ(x+ε)) from above by ζ and certifying with
//!   p_A − ζ.
//!
//! The module is split by concern, the way the paper is: [`noise`] draws the noisy copies
//! (counter-based, so they can be replayed anywhere), [`classifier`] is the one trait the
//! base classifier implements wherever it runs, [`bounds`] holds the statistics (each a thin
//! call into `statrs`), [`certify`](mod@certify) and [`irs`] are the algorithms, [`metrics`]
//! turns per-image results into certified accuracy and the average certified radius;
//! [`reference`] records the settings a certification's soundness depends on, which IRS
//! checks before it reuses one.
//!
//! No I/O and no clocks in here: callers time runs themselves (`std::time::Instant` does not
//! exist in a browser) and report progress through the hooks every long call takes.

pub mod bounds;
pub mod certify;
pub mod classifier;
pub mod irs;
pub mod metrics;
pub mod noise;
pub mod reference;

pub use bounds::{
    binomial_test_p_value, certified_radius, clopper_pearson_lower, clopper_pearson_upper,
};
pub use certify::{
    certify, predict, sample_counts, Certificate, CertifyParams, Outcome, PredictParams,
    Prediction, ESTIMATION_SAMPLES, MAX_BATCH, MAX_SAMPLES, PREDICTION_SAMPLES, SELECTION_SAMPLES,
};
pub use classifier::BaseClassifier;
pub use irs::{certify_incremental, IncrementalCertificate, IrsParams, IrsPath, DEFAULT_GAMMA};
pub use metrics::{acr, certified_accuracy, certified_accuracy_curve, CertificationRow};
pub use noise::{standard_normal, NoiseKey, NoisyCopies, IMAGE_PIXELS};

/// Base classifiers with known behaviour, for the tests of every file in this module.
#[cfg(test)]
pub(crate) mod mocks {
    use super::BaseClassifier;
    use crate::error::Result;

    /// A well-mixed 32-bit hash (the finaliser of MurmurHash3), to make a classifier's answer
    /// look random over the noise while staying a pure function of its input.
    pub fn mix(mut h: u32) -> u32 {
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }

    fn hash_input(input: &[f32]) -> u32 {
        input[..8]
            .iter()
            .fold(0x1234_5678, |h, v| mix(h ^ v.to_bits()))
    }

    /// f(x) = `class` for every x: p_A = 1, so the certificate is known in closed form.
    pub struct Constant {
        pub class: u32,
        pub classes: usize,
        /// How many batches it has classified (to see where a cancelled run stopped).
        pub batches: usize,
    }

    impl Constant {
        pub fn new(class: u32) -> Self {
            Self {
                class,
                classes: 10,
                batches: 0,
            }
        }
    }

    impl BaseClassifier for Constant {
        fn num_classes(&self) -> usize {
            self.classes
        }
        fn classify_batch(&mut self, _inputs: &[f32], batch: usize) -> Result<Vec<u32>> {
            self.batches += 1;
            Ok(vec![self.class; batch])
        }
    }

    /// A linear classifier on one pixel: class 1 if x[pixel] > threshold, else 0. Smoothed,
    /// P(f(x + ε) = 1) = Φ((x[pixel] − threshold)/σ), and the exact certified radius is the
    /// distance |x[pixel] − threshold| to the decision boundary.
    pub struct Threshold {
        pub pixel: usize,
        pub threshold: f32,
    }

    impl BaseClassifier for Threshold {
        fn num_classes(&self) -> usize {
            10
        }
        fn classify_batch(&mut self, inputs: &[f32], batch: usize) -> Result<Vec<u32>> {
            let pixels = inputs.len() / batch;
            Ok(inputs
                .chunks(pixels)
                .map(|x| u32::from(x[self.pixel] > self.threshold))
                .collect())
        }
    }

    /// A class that looks uniformly random over the noise (a hash of the noisy input modulo
    /// 10): the smoothed classifier has no majority class, so CERTIFY and PREDICT abstain.
    pub struct Scrambled;

    impl BaseClassifier for Scrambled {
        fn num_classes(&self) -> usize {
            10
        }
        fn classify_batch(&mut self, inputs: &[f32], batch: usize) -> Result<Vec<u32>> {
            let pixels = inputs.len() / batch;
            Ok(inputs.chunks(pixels).map(|x| hash_input(x) % 10).collect())
        }
    }

    /// Agrees with `inner` except on a pseudo-random fraction `rate` of the noisy inputs,
    /// where it answers the next class: a stand-in for a quantized copy of `inner`.
    pub struct Perturbed<C> {
        pub inner: C,
        pub rate: f64,
    }

    impl<C: BaseClassifier> BaseClassifier for Perturbed<C> {
        fn num_classes(&self) -> usize {
            self.inner.num_classes()
        }
        fn classify_batch(&mut self, inputs: &[f32], batch: usize) -> Result<Vec<u32>> {
            let classes = self.num_classes() as u32;
            let pixels = inputs.len() / batch;
            let base = self.inner.classify_batch(inputs, batch)?;
            let cut = (self.rate * 2f64.powi(32)) as u64;
            Ok(inputs
                .chunks(pixels)
                .zip(base)
                .map(|(x, c)| {
                    if u64::from(mix(hash_input(x) ^ 0x9e37_79b9)) < cut {
                        (c + 1) % classes
                    } else {
                        c
                    }
                })
                .collect())
        }
    }

    /// A 28×28 image whose first pixel is `first` and the rest mid-grey.
    pub fn image(first: u8) -> Vec<u8> {
        let mut x = vec![128u8; super::IMAGE_PIXELS];
        x[0] = first;
        x
    }
}
