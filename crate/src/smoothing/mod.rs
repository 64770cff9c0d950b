//! Randomized smoothing (Cohen, Rosenfeld & Kolter, ICML 2019) and incremental randomized
//! smoothing (IRS; Ugare, Singh, Misailovic et al., ICLR 2024).
//!
//! The smoothed classifier of a base classifier f at noise level σ is
//! g(x) = argmax_c P(f(x + ε) = c), ε ~ N(0, σ²I). It cannot be evaluated exactly, so
//! [`certify`] and [`predict`] estimate it from noisy copies of x with statistical guarantees
//! that hold with probability at least 1 − α over the noise:
//!
//! - [`certify`] (CERTIFY): the class it returns is g(x), and g is constant on the ℓ₂ ball of
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
//! turns per-image results into certified accuracy and the average certified radius.
//!
//! No I/O and no clocks in here: callers time runs themselves (`std::time::Instant` does not
//! exist in a browser) and report progress through the hooks every long call takes.

pub mod bounds;
pub mod classifier;
pub mod noise;

pub use bounds::{
    binomial_test_p_value, certified_radius, clopper_pearson_lower, clopper_pearson_upper,
};
pub use classifier::BaseClassifier;
pub use noise::{standard_normal, NoiseKey, NoisyCopies, IMAGE_PIXELS};

/// Base classifiers with known behaviour, for the tests of every file in this module.
#[cfg(test)]
pub(crate) mod mocks {
    /// A well-mixed 32-bit hash (the finaliser of MurmurHash3), to make a classifier's answer
    /// look random over the noise while staying a pure function of its input.
    pub fn mix(mut h: u32) -> u32 {
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }
}
