//! Counter-based Gaussian noise: the value of ε for (seed, image, sample, element) is a pure
//! function of those four numbers, so any noisy copy x + σ·ε can be regenerated instead of
//! stored — later on the GPU, and by IRS to replay the noise f was certified with.
//!
//! The generator is Philox-4x32-10 (Salmon, Moraes, Dror & Shaw, SC 2011): ten rounds of a
//! keyed bijection on a 128-bit counter, built only from 32-bit multiplications, xors and
//! wrapping additions — operations WGSL has (the high half of a 32×32-bit product is
//! computed there from 16-bit halves; see the test `mulhilo_from_16_bit_halves_matches`).
//! One call gives four 32-bit words, which Box–Muller turns into four N(0, 1) values.
//!
//! Layout, for element e (0..784) of sample s of image i under seed k:
//!
//! ```text
//! key     = [k mod 2³², k div 2³²]
//! counter = [e div 4, s mod 2³², s div 2³², i]
//! (w0, w1, w2, w3) = philox4x32_10(counter, key)
//! (z0, z1) = box_muller(w0, w1), (z2, z3) = box_muller(w2, w3);  ε = z[e mod 4]
//! ```
//!
//! Distinct (seed, image, sample, element/4) give distinct Philox inputs, hence independent
//! draws. The integer words are exact on every platform; the f32 logarithm, square root and
//! sine/cosine may differ in the last bit between libm implementations (native, wasm, GPU).

use crate::error::{Error, Result};
use crate::model::IMAGE_SIDE;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// Pixels of one input image (28×28, one channel).
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

/// Philox-4x32 multipliers and Weyl key increments (Salmon et al. 2011).
const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;
const PHILOX_ROUNDS: usize = 10;

/// 2⁻²⁴: Box–Muller uses the top 24 bits of each word, which f32 represents exactly.
const TWO_POW_MINUS_24: f32 = 1.0 / 16_777_216.0;

/// Where one image's noise comes from: the run's seed and the image's index in its dataset.
/// Together with a sample index and an element index it names one draw of ε.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NoiseKey {
    pub seed: u64,
    /// Index of the image (datasets here hold at most 70,000 images; 32 bits, as on the GPU).
    pub image_index: u32,
}

impl NoiseKey {
    pub fn new(seed: u64, image_index: u32) -> Self {
        Self { seed, image_index }
    }
}

/// High and low 32-bit halves of the 64-bit product a·b.
#[inline]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let product = u64::from(a) * u64::from(b);
    ((product >> 32) as u32, product as u32)
}

/// Philox-4x32-10: the 128-bit `counter` encrypted under the 64-bit `key`. Matches the
/// Random123 reference implementation's known-answer vectors.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let [mut c0, mut c1, mut c2, mut c3] = counter;
    let [mut k0, mut k1] = key;
    for round in 0..PHILOX_ROUNDS {
        if round > 0 {
            k0 = k0.wrapping_add(PHILOX_W0);
            k1 = k1.wrapping_add(PHILOX_W1);
        }
        let (hi0, lo0) = mulhilo(PHILOX_M0, c0);
        let (hi1, lo1) = mulhilo(PHILOX_M1, c2);
        (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0);
    }
    [c0, c1, c2, c3]
}

/// Box–Muller: two independent N(0, 1) values from two uniform 32-bit words, in f32.
/// u₁ = (⌊a/2⁸⌋ + 1)·2⁻²⁴ ∈ (0, 1] (never 0, so the logarithm is finite) and
/// u₂ = ⌊b/2⁸⌋·2⁻²⁴ ∈ [0, 1); returns √(−2 ln u₁)·(cos 2πu₂, sin 2πu₂). The magnitude is at
/// most √(48 ln 2) ≈ 5.77 (a tail of probability below 10⁻⁸ is cut off).
#[inline]
pub fn box_muller(a: u32, b: u32) -> [f32; 2] {
    let u1 = ((a >> 8) as f32 + 1.0) * TWO_POW_MINUS_24;
    let u2 = (b >> 8) as f32 * TWO_POW_MINUS_24;
    let r = (-2.0 * u1.ln()).sqrt();
    let (sin, cos) = (std::f32::consts::TAU * u2).sin_cos();
    [r * cos, r * sin]
}

/// The four N(0, 1) draws of elements 4q..4q+4 of sample `sample_index` of an image.
#[inline]
fn normal_quad(key: NoiseKey, sample_index: u64, quad: u32) -> [f32; 4] {
    let w = philox4x32_10(
        [
            quad,
            sample_index as u32,
            (sample_index >> 32) as u32,
            key.image_index,
        ],
        [key.seed as u32, (key.seed >> 32) as u32],
    );
    let [z0, z1] = box_muller(w[0], w[1]);
    let [z2, z3] = box_muller(w[2], w[3]);
    [z0, z1, z2, z3]
}

/// ε ~ N(0, 1) for element `element_index` of noisy sample `sample_index` of image
/// `image_index` under `seed`: a pure function, the same on every call and platform (up to
/// the last bit of f32 transcendental functions).
pub fn standard_normal(seed: u64, image_index: u32, sample_index: u64, element_index: u32) -> f32 {
    let quad = normal_quad(
        NoiseKey::new(seed, image_index),
        sample_index,
        element_index / 4,
    );
    quad[(element_index % 4) as usize]
}

/// One image and the Gaussian noise around it: regenerates the noisy copies x + σ·ε of
/// any range of sample indices, with pixels 0..=255 mapped to [0, 1] and no clipping.
#[derive(Clone, Debug)]
pub struct NoisyCopies {
    /// x in [0, 1], 784 values.
    x: Vec<f32>,
    sigma: f32,
    key: NoiseKey,
}

impl NoisyCopies {
    /// `image` must have 784 pixels (28×28, row-major); σ must be finite and > 0.
    pub fn new(image: &[u8], sigma: f32, key: NoiseKey) -> Result<Self> {
        crate::noise::check_sigma(sigma)?;
        if image.len() != IMAGE_PIXELS {
            return Err(Error::Invalid(format!(
                "the image must have {IMAGE_PIXELS} pixels (28×28), got {}",
                image.len()
            )));
        }
        Ok(Self {
            x: image.iter().map(|&p| f32::from(p) / 255.0).collect(),
            sigma,
            key,
        })
    }

    pub fn sigma(&self) -> f32 {
        self.sigma
    }

    pub fn key(&self) -> NoiseKey {
        self.key
    }

    /// The clean image x in [0, 1] (784 values), for executors that add the noise themselves.
    pub fn image(&self) -> &[f32] {
        &self.x
    }

    /// Replaces the contents of `out` by the noisy copies for sample indices `samples`, as a
    /// row-major `[samples.len(), 1, 28, 28]` array.
    pub fn fill(&self, samples: Range<u64>, out: &mut Vec<f32>) {
        out.clear();
        out.reserve((samples.end.saturating_sub(samples.start)) as usize * IMAGE_PIXELS);
        for sample in samples {
            for (quad, x) in self.x.chunks(4).enumerate() {
                let eps = normal_quad(self.key, sample, quad as u32);
                out.extend(x.iter().zip(eps).map(|(&x, eps)| x + self.sigma * eps));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_matches_random123_known_answers() {
        // The known-answer vectors published with the Random123 library (kat_vectors).
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0]
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    /// The way WGSL (no 64-bit integers) must compute the 32×32 → 64-bit product: from
    /// 16-bit halves, with only 32-bit wrapping operations.
    fn mulhilo_16(a: u32, b: u32) -> (u32, u32) {
        let (a_lo, a_hi) = (a & 0xffff, a >> 16);
        let (b_lo, b_hi) = (b & 0xffff, b >> 16);
        let lo_lo = a_lo * b_lo;
        let hi_lo = a_hi * b_lo;
        let lo_hi = a_lo * b_hi;
        let hi_hi = a_hi * b_hi;
        let middle = (lo_lo >> 16) + (hi_lo & 0xffff) + (lo_hi & 0xffff);
        let hi = hi_hi + (hi_lo >> 16) + (lo_hi >> 16) + (middle >> 16);
        (hi, a.wrapping_mul(b))
    }

    #[test]
    fn mulhilo_from_16_bit_halves_matches() {
        let mut h = 1u32;
        for i in 0..100_000u32 {
            h = crate::smoothing::mocks::mix(h ^ i);
            let a = h;
            let b = crate::smoothing::mocks::mix(h.wrapping_add(0x9e37_79b9));
            assert_eq!(mulhilo_16(a, b), mulhilo(a, b), "{a:#x} · {b:#x}");
        }
        for (a, b) in [(u32::MAX, u32::MAX), (0, u32::MAX), (PHILOX_M0, u32::MAX)] {
            assert_eq!(mulhilo_16(a, b), mulhilo(a, b));
        }
    }

    #[test]
    fn pinned_values_for_other_implementations() {
        // Reference values for a GPU port. They were computed outside this crate by an
        // independent Philox-4x32-10 written in Python (checked against Random123's first
        // known-answer vector) with the same counter layout and Box–Muller in float64. The
        // words must match exactly; an f32 implementation matches the normals to a few ulp of
        // the angle 2πu₂ and the radius (|ε| ≤ 5.8), hence the tolerance 1e-5.
        assert_eq!(
            philox4x32_10([5, 7, 0, 42], [0x89ab_cdef, 0x0123_4567]),
            PINNED_WORDS
        );
        for &(seed, image, sample, element, want) in PINNED_NORMALS {
            let got = standard_normal(seed, image, sample, element);
            assert!(
                (f64::from(got) - want).abs() < 1e-5,
                "ε(seed {seed}, image {image}, sample {sample}, element {element}) = {got}, pinned {want}"
            );
        }
    }

    const PINNED_WORDS: [u32; 4] = [0x3abd_6a7e, 0xf4a4_acfd, 0xd549_8b5d, 0x790b_db70];
    /// (seed, image, sample, element, ε).
    const PINNED_NORMALS: &[(u64, u32, u64, u32, f64)] = &[
        (0, 0, 0, 0, 0.991_137_475_145_897_1),
        (0, 0, 0, 1, -0.924_662_780_354_433_2),
        (0, 0, 0, 2, -0.617_609_054_984_854_4),
        (0, 0, 0, 3, -0.482_068_347_264_496_3),
        (0, 0, 0, 4, -0.153_638_112_438_844_6),
        (0, 0, 1, 0, 1.136_367_187_483_950_7),
        (0x0123_4567_89ab_cdef, 42, 7, 5, 0.407_951_079_027_783),
        (1, 69_999, 99_999, 783, 0.818_952_361_320_870_6),
        (
            u64::MAX,
            u32::MAX,
            (1 << 32) + 3,
            777,
            0.671_194_081_331_766_7,
        ),
    ];

    #[test]
    fn noise_is_standard_normal() {
        // 2,000 samples × 784 elements = 1,568,000 draws. Standard errors: of the mean
        // 1/√N ≈ 0.0008; of the variance √(2/N) ≈ 0.0011; of P(|ε| < 1) = 0.6827,
        // √(0.68·0.32/N) ≈ 0.0004. Tolerances are 5 standard errors (a false alarm has
        // probability below 10⁻⁶, and the draws are fixed anyway), tight enough to catch a
        // wrong scale, an offset, or a non-Gaussian shape such as uniform noise.
        let copies = NoisyCopies::new(&[0u8; IMAGE_PIXELS], 1.0, NoiseKey::new(7, 3)).unwrap();
        let mut eps = Vec::new();
        copies.fill(0..2_000, &mut eps);
        let n = eps.len() as f64;
        let mean = eps.iter().map(|&e| f64::from(e)).sum::<f64>() / n;
        let var = eps
            .iter()
            .map(|&e| (f64::from(e) - mean).powi(2))
            .sum::<f64>()
            / n;
        let within_one = eps.iter().filter(|e| e.abs() < 1.0).count() as f64 / n;
        let kurtosis = eps.iter().map(|&e| f64::from(e).powi(4)).sum::<f64>() / n;
        assert!(mean.abs() < 5.0 / n.sqrt(), "mean {mean}");
        assert!((var - 1.0).abs() < 5.0 * (2.0 / n).sqrt(), "variance {var}");
        assert!(
            (within_one - 0.682_689).abs() < 0.002,
            "P(|ε|<1) {within_one}"
        );
        // E[ε⁴] = 3 with standard error √(96/N) ≈ 0.008.
        assert!((kurtosis - 3.0).abs() < 0.04, "E[ε⁴] {kurtosis}");
    }

    /// Pearson correlation of two equally long series.
    fn correlation(a: &[f32], b: &[f32]) -> f64 {
        let n = a.len() as f64;
        let (ma, mb) = (
            a.iter().map(|&v| f64::from(v)).sum::<f64>() / n,
            b.iter().map(|&v| f64::from(v)).sum::<f64>() / n,
        );
        let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
        for (&x, &y) in a.iter().zip(b) {
            let (dx, dy) = (f64::from(x) - ma, f64::from(y) - mb);
            sab += dx * dy;
            saa += dx * dx;
            sbb += dy * dy;
        }
        sab / (saa * sbb).sqrt()
    }

    #[test]
    fn different_counters_give_uncorrelated_noise() {
        // Each comparison pairs 400 × 784 = 313,600 draws; for independent draws the sample
        // correlation has standard error 1/√N ≈ 0.0018, tolerance 5 standard errors.
        let draw = |seed, image, samples: Range<u64>| {
            let mut out = Vec::new();
            NoisyCopies::new(&[0u8; IMAGE_PIXELS], 1.0, NoiseKey::new(seed, image))
                .unwrap()
                .fill(samples, &mut out);
            out
        };
        let base = draw(1, 0, 0..400);
        let tolerance = 5.0 / (base.len() as f64).sqrt();
        let others = [
            ("next sample", draw(1, 0, 1..401)),
            ("other image", draw(1, 1, 0..400)),
            ("other seed", draw(2, 0, 0..400)),
            ("seed's high word", draw(1 + (1 << 32), 0, 0..400)),
            ("samples 2³² apart", draw(1, 0, (1 << 32)..(1 << 32) + 400)),
        ];
        for (what, other) in &others {
            let r = correlation(&base, other);
            assert!(r.abs() < tolerance, "{what}: correlation {r}");
        }
        // Neighbouring elements: the two halves of one Box–Muller pair, the two pairs of one
        // Philox call, and neighbouring Philox calls.
        for lag in [1usize, 2, 4] {
            let r = correlation(&base[..base.len() - lag], &base[lag..]);
            assert!(r.abs() < tolerance, "elements {lag} apart: correlation {r}");
        }
    }

    #[test]
    fn noise_is_exactly_reproducible_and_addressable() {
        let image: Vec<u8> = (0..IMAGE_PIXELS).map(|i| (i % 256) as u8).collect();
        let copies = NoisyCopies::new(&image, 0.5, NoiseKey::new(11, 5)).unwrap();
        let (mut all, mut again, mut part) = (Vec::new(), Vec::new(), Vec::new());
        copies.fill(0..10, &mut all);
        copies.fill(0..10, &mut again);
        assert_eq!(all, again);
        // Sample 7 alone equals the 8th copy of the range: samples are addressed, not streamed.
        copies.fill(7..8, &mut part);
        assert_eq!(part[..], all[7 * IMAGE_PIXELS..8 * IMAGE_PIXELS]);
        // And every element is x + σ·ε(seed, image, sample, element).
        for element in [0u32, 1, 2, 3, 4, 783] {
            let want = f32::from(image[element as usize]) / 255.0
                + 0.5 * standard_normal(11, 5, 7, element);
            assert_eq!(part[element as usize], want);
        }
        assert_eq!(all.len(), 10 * IMAGE_PIXELS);
    }

    #[test]
    fn noisy_copies_reject_bad_arguments() {
        let img = [0u8; IMAGE_PIXELS];
        let key = NoiseKey::default();
        for sigma in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let err = NoisyCopies::new(&img, sigma, key).unwrap_err().to_string();
            assert!(err.contains('σ'), "{err}");
        }
        let err = NoisyCopies::new(&img[..700], 0.5, key)
            .unwrap_err()
            .to_string();
        assert!(err.contains("784 pixels") && err.contains("700"), "{err}");
    }
}
