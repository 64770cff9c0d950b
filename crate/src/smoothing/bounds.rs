//! The statistics of randomized smoothing, one small function per concept, each delegating
//! to `statrs`: Clopper–Pearson confidence bounds on a binomial proportion, the two-sided
//! binomial test PREDICT uses, and the certified radius σ·Φ⁻¹(p_A).

use crate::error::{Error, Result};
use statrs::distribution::{Beta, Binomial, ContinuousCDF, DiscreteCDF, Normal};

/// Checks a significance level: α ∈ (0, 1). `name` is how messages call it (α, α_χ).
pub(crate) fn check_alpha(name: &str, alpha: f64) -> Result<()> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(Error::Invalid(format!(
            "{name} must be in (0, 1) (e.g. 0.001), got {alpha}"
        )));
    }
    Ok(())
}

fn check_counts(successes: u64, trials: u64) -> Result<()> {
    if trials == 0 || successes > trials {
        return Err(Error::Invalid(format!(
            "a binomial bound needs 0 ≤ successes ≤ trials and trials ≥ 1, got {successes} of {trials}"
        )));
    }
    Ok(())
}

fn beta(a: u64, b: u64) -> Result<Beta> {
    Beta::new(a as f64, b as f64)
        .map_err(|e| Error::Invalid(format!("Beta({a}, {b}) distribution: {e}")))
}

/// Lower one-sided Clopper–Pearson bound on p from `successes` out of `trials` Bernoulli(p)
/// draws: with probability at least 1 − α over the draws, p ≥ the returned value.
/// It is the α-quantile of Beta(successes, trials − successes + 1), and 0 when there are no
/// successes. Requires 0 ≤ successes ≤ trials, trials ≥ 1, α ∈ (0, 1); returns a value in
/// [0, 1).
pub fn clopper_pearson_lower(successes: u64, trials: u64, alpha: f64) -> Result<f64> {
    check_counts(successes, trials)?;
    check_alpha("α", alpha)?;
    if successes == 0 {
        return Ok(0.0);
    }
    Ok(beta(successes, trials - successes + 1)?.inverse_cdf(alpha))
}

/// Upper one-sided Clopper–Pearson bound on p from `successes` out of `trials` Bernoulli(p)
/// draws: with probability at least 1 − α over the draws, p ≤ the returned value.
/// It is the (1 − α)-quantile of Beta(successes + 1, trials − successes), and 1 when every
/// draw succeeded. Requires 0 ≤ successes ≤ trials, trials ≥ 1, α ∈ (0, 1); returns a value
/// in (0, 1].
pub fn clopper_pearson_upper(successes: u64, trials: u64, alpha: f64) -> Result<f64> {
    check_counts(successes, trials)?;
    check_alpha("α", alpha)?;
    if successes == trials {
        return Ok(1.0);
    }
    Ok(beta(successes + 1, trials - successes)?.inverse_cdf(1.0 - alpha))
}

/// p-value of the exact two-sided binomial test of H₀: p = ½ after `successes` out of
/// `trials` draws: P(X ≤ min(k, n−k)) + P(X ≥ max(k, n−k)) for X ~ Binomial(n, ½), which by
/// symmetry is min(1, 2·P(X ≤ min(k, n−k))). Requires 0 ≤ successes ≤ trials, trials ≥ 1.
pub fn binomial_test_p_value(successes: u64, trials: u64) -> Result<f64> {
    check_counts(successes, trials)?;
    let binomial = Binomial::new(0.5, trials)
        .map_err(|e| Error::Invalid(format!("Binomial({trials}, ½) distribution: {e}")))?;
    let smaller = successes.min(trials - successes);
    Ok((2.0 * binomial.cdf(smaller)).min(1.0))
}

/// The certified ℓ₂ radius σ·Φ⁻¹(p_A) of Cohen et al.'s Theorem 1 for a lower bound p_A on
/// the top class's probability under N(0, σ²I) noise. Meaningful for p_A ∈ [½, 1): it is
/// 0 at ½ and grows without bound as p_A → 1 (callers abstain below ½, where it would be
/// negative).
pub fn certified_radius(sigma: f32, p_a: f64) -> f64 {
    debug_assert!((0.0..=1.0).contains(&p_a), "p_A = {p_a}");
    f64::from(sigma) * Normal::standard().inverse_cdf(p_a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn close(got: f64, want: f64, tolerance: f64) {
        assert!(
            (got - want).abs() <= tolerance,
            "got {got}, want {want} (±{tolerance})"
        );
    }

    #[test]
    fn clopper_pearson_matches_independent_values() {
        // Reference values computed with scipy 1.17.1 outside this crate:
        // beta.ppf(α, k, n−k+1) for lower bounds, beta.ppf(1−α, k+1, n−k) for upper ones.
        close(
            clopper_pearson_lower(990, 1000, 0.001).unwrap(),
            0.976_036_187_155_311_4,
            1e-9,
        );
        close(
            clopper_pearson_lower(5, 20, 0.05).unwrap(),
            0.104_080_835_910_136_09,
            1e-9,
        );
        close(
            clopper_pearson_upper(5, 20, 0.05).unwrap(),
            0.455_582_404_001_748_9,
            1e-9,
        );
        close(
            clopper_pearson_lower(99_000, 100_000, 0.001).unwrap(),
            0.988_989_340_377_474_8,
            1e-9,
        );
        close(
            clopper_pearson_upper(3, 10_000, 0.001).unwrap(),
            0.001_305_567_075_226_798_6,
            1e-12,
        );
        // Closed forms: Beta(1, 2) has CDF 1 − (1 − p)², so the 0.3-quantile is 1 − √0.7;
        // Beta(n, 1) has CDF pⁿ, so all-successes gives α^(1/n); Beta(1, n) gives
        // 1 − α^(1/n) for the upper bound after no successes.
        close(
            clopper_pearson_lower(1, 2, 0.3).unwrap(),
            1.0 - 0.7f64.sqrt(),
            1e-12,
        );
        close(
            clopper_pearson_lower(1000, 1000, 0.001).unwrap(),
            0.001f64.powf(1e-3),
            1e-12,
        );
        close(
            clopper_pearson_upper(0, 500, 0.001).unwrap(),
            1.0 - 0.001f64.powf(1.0 / 500.0),
            1e-12,
        );
    }

    #[test]
    fn clopper_pearson_edges_and_ordering() {
        assert_eq!(clopper_pearson_lower(0, 10, 0.05).unwrap(), 0.0);
        assert_eq!(clopper_pearson_upper(10, 10, 0.05).unwrap(), 1.0);
        for n in [1u64, 2, 7, 100] {
            for k in 0..=n {
                let (lo, hi) = (
                    clopper_pearson_lower(k, n, 0.01).unwrap(),
                    clopper_pearson_upper(k, n, 0.01).unwrap(),
                );
                let rate = k as f64 / n as f64;
                assert!(lo <= rate && rate <= hi, "{k}/{n}: [{lo}, {hi}]");
                // Symmetry: the upper bound for k is one minus the lower bound for n − k.
                close(
                    hi,
                    1.0 - clopper_pearson_lower(n - k, n, 0.01).unwrap(),
                    1e-12,
                );
                // A smaller α (more confidence) widens the bound.
                assert!(clopper_pearson_lower(k, n, 0.001).unwrap() <= lo);
            }
        }
    }

    /// The exact probability that the bound misses p: Σ over outcomes k whose bound excludes
    /// p of the Binomial(n, p) probability of k.
    fn exact_miss_probability(n: u64, p: f64, alpha: f64, upper: bool) -> f64 {
        let binomial = Binomial::new(p, n).unwrap();
        (0..=n)
            .filter(|&k| {
                if upper {
                    clopper_pearson_upper(k, n, alpha).unwrap() < p
                } else {
                    clopper_pearson_lower(k, n, alpha).unwrap() > p
                }
            })
            .map(|k| statrs::distribution::Discrete::pmf(&binomial, k))
            .sum()
    }

    #[test]
    fn clopper_pearson_has_exact_coverage_at_least_one_minus_alpha() {
        // Clopper–Pearson is exact-conservative: for every p and n the miss probability is at
        // most α. Checked here exactly (summing binomial probabilities) on a grid.
        for n in [1u64, 5, 20, 100, 300] {
            for p in [0.001, 0.02, 0.1, 0.3, 0.5, 0.77, 0.95, 0.999] {
                for upper in [false, true] {
                    let miss = exact_miss_probability(n, p, 0.05, upper);
                    assert!(miss <= 0.05 + 1e-12, "n {n}, p {p}, upper {upper}: {miss}");
                }
            }
        }
    }

    #[test]
    fn clopper_pearson_covers_the_true_p_in_seeded_trials() {
        // 1,000 seeded experiments per (p, n), each n Bernoulli(p) draws, α = 0.05. The number
        // of misses of a valid bound is at most Binomial(1000, 0.05): mean ≤ 50, standard
        // deviation ≤ 6.9; we allow 50 + 4·6.9 ≈ 78 (a false alarm has probability < 10⁻⁴,
        // and the seed is fixed). A bound with 90 % coverage would miss ~100 times and fail.
        // The pooled miss rate is checked too, from both sides: summing the exact miss
        // probabilities of these 15 settings (scipy, outside this crate) gives 3.3 % for the
        // lower and 3.1 % for the upper bound (Clopper–Pearson is conservative), and over
        // 15,000 experiments the rate's standard error is 0.15 %. A bound that is valid only
        // because it is too wide (always 0, or at α/2) would miss far less than 2 %.
        let mut rng = rand::rngs::StdRng::seed_from_u64(2024);
        let trials = 1000;
        let (mut pooled_misses, mut pooled) = ([0usize; 2], 0usize);
        for p in [0.02, 0.3, 0.5, 0.8, 0.97] {
            for n in [20u64, 100, 500] {
                let mut misses = [0usize; 2];
                for _ in 0..trials {
                    let k = (0..n).filter(|_| rng.random::<f64>() < p).count() as u64;
                    if clopper_pearson_lower(k, n, 0.05).unwrap() > p {
                        misses[0] += 1;
                    }
                    if clopper_pearson_upper(k, n, 0.05).unwrap() < p {
                        misses[1] += 1;
                    }
                }
                assert!(
                    misses[0] <= 78,
                    "lower bound missed p = {p}, n = {n} {} times",
                    misses[0]
                );
                assert!(
                    misses[1] <= 78,
                    "upper bound missed p = {p}, n = {n} {} times",
                    misses[1]
                );
                pooled_misses[0] += misses[0];
                pooled_misses[1] += misses[1];
                pooled += trials;
            }
        }
        for misses in pooled_misses {
            // 15,000 experiments: a valid bound misses ≤ 750 ± 27 times (4 sd ≈ 107).
            let rate = misses as f64 / pooled as f64;
            assert!(misses <= 750 + 107, "pooled miss rate {rate}");
            assert!(
                rate > 0.02,
                "pooled miss rate {rate}: the bound is too wide"
            );
        }
    }

    #[test]
    fn binomial_test_matches_independent_values() {
        // scipy 1.17.1: binomtest(k, n, 0.5).pvalue.
        for (k, n, want) in [
            (60, 100, 0.056_887_933_640_980_89),
            (7, 10, 0.343_75),
            (50, 100, 1.0),
            (0, 20, 1.907_348_632_812_5e-6),
            (530, 1000, 0.062_023_195_098_363_43),
            (5230, 10_000, 4.416_176_017_051_986e-6),
        ] {
            let got = binomial_test_p_value(k, n).unwrap();
            assert!(
                (got - want).abs() <= 1e-9 * want.max(1e-3),
                "binomial test {k} of {n}: {got}, want {want}"
            );
            // Two-sided: the same for k and n − k.
            assert_eq!(binomial_test_p_value(n - k, n).unwrap(), got);
        }
    }

    #[test]
    fn radius_is_sigma_times_the_normal_quantile() {
        // scipy: 0.25·norm.ppf(beta.ppf(0.001, 990, 11)) and 0.5·norm.ppf(0.8).
        close(
            certified_radius(0.25, 0.976_036_187_155_311_4),
            0.494_502_395_535_299_84,
            1e-9,
        );
        close(certified_radius(0.5, 0.8), 0.420_810_616_786_457_15, 1e-9);
        assert_eq!(certified_radius(1.0, 0.5), 0.0);
    }

    #[test]
    fn bad_arguments_are_named() {
        for alpha in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
            let err = clopper_pearson_lower(1, 2, alpha).unwrap_err().to_string();
            assert!(err.contains("α must be in (0, 1)"), "{err}");
            assert!(clopper_pearson_upper(1, 2, alpha).is_err());
        }
        let err = clopper_pearson_lower(3, 2, 0.1).unwrap_err().to_string();
        assert!(err.contains("3 of 2"), "{err}");
        assert!(clopper_pearson_upper(0, 0, 0.1).is_err());
        assert!(binomial_test_p_value(0, 0).is_err());
    }
}
