//! Which width each layer trains at in a supernet step (Double Rounding's HASB, DESIGN §3).
//!
//! Hessian-aware: a layer whose Hessian trace is below the mean of all layers' traces is
//! insensitive and samples the candidate widths uniformly; a sensitive one samples width b
//! with probability proportional to b, so it trains more often at the widths it needs.
//! Gradual bit-switching: training starts at the highest width only and lets the lower widths
//! in one by one, the lowest admitted width falling linearly to the list's lowest over the
//! first `switch_fraction` of the steps.

use crate::error::{Error, Result};
use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::Rng;

/// Per layer, whether it is sensitive: its Hessian trace at or above the mean of all layers'.
pub fn sensitive_layers(traces: &[f64]) -> Vec<bool> {
    let mean = traces.iter().sum::<f64>() / traces.len().max(1) as f64;
    traces.iter().map(|&t| t >= mean).collect()
}

/// Per layer, the sampling weight of each candidate width (`weights[l][k]` ↔ `bits[k]`).
pub fn width_weights(traces: &[f64], bits: &[u8]) -> Result<Vec<Vec<f64>>> {
    if traces.is_empty() || traces.iter().any(|t| !t.is_finite()) {
        return Err(Error::Invalid(format!(
            "the supernet needs one finite Hessian trace per layer, got {traces:?}"
        )));
    }
    Ok(sensitive_layers(traces)
        .into_iter()
        .map(|sensitive| {
            bits.iter()
                .map(|&b| if sensitive { b as f64 } else { 1.0 })
                .collect()
        })
        .collect())
}

/// The lowest width admitted at `progress` ∈ [0, 1] of training: the highest width at the
/// start, falling linearly to the lowest by `switch_fraction` (0 admits every width at once);
/// always a width of `bits`.
pub fn lowest_admitted(bits: &[u8], progress: f64, switch_fraction: f64) -> u8 {
    let top = *bits.iter().max().expect("a non-empty bit list");
    let bottom = *bits.iter().min().expect("a non-empty bit list");
    let reached = if switch_fraction <= 0.0 {
        1.0
    } else {
        (progress / switch_fraction).clamp(0.0, 1.0)
    };
    let floor = top as f64 - reached * (top - bottom) as f64;
    // the lowest listed width not below the floor (the top one always qualifies)
    bits.iter()
        .copied()
        .filter(|&b| b as f64 >= floor - 1e-9)
        .min()
        .unwrap_or(top)
}

/// One width index per layer, drawn by `weights` among the widths ≥ `lowest`.
pub fn sample_widths(
    weights: &[Vec<f64>],
    bits: &[u8],
    lowest: u8,
    rng: &mut impl Rng,
) -> Result<Vec<usize>> {
    weights
        .iter()
        .map(|w| {
            let admitted: Vec<f64> = w
                .iter()
                .zip(bits)
                .map(|(&p, &b)| if b >= lowest { p } else { 0.0 })
                .collect();
            let pick = WeightedIndex::new(&admitted)
                .map_err(|e| Error::Invalid(format!("width weights {admitted:?}: {e}")))?;
            Ok(pick.sample(rng))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn sensitive_layers_sample_in_proportion_to_the_width_the_others_uniformly() {
        // traces: mean 2.5; layers 1 and 3 are at or above it (sensitive)
        let traces = [1.0, 4.0, 0.5, 4.5];
        let bits = [8u8, 6, 4, 2];
        let weights = width_weights(&traces, &bits).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        const DRAWS: usize = 40_000;
        let mut counts = [[0usize; 4]; 4];
        for _ in 0..DRAWS {
            for (l, k) in sample_widths(&weights, &bits, 2, &mut rng)
                .unwrap()
                .into_iter()
                .enumerate()
            {
                counts[l][k] += 1;
            }
        }
        // expected probabilities written out from the rule: uniform 1/4, or b / (8+6+4+2)
        let uniform = [0.25; 4];
        let by_width = [0.4, 0.3, 0.2, 0.1];
        for (l, expected) in [uniform, by_width, uniform, by_width].iter().enumerate() {
            let mut chi2 = 0.0;
            for k in 0..4 {
                let e = expected[k] * DRAWS as f64;
                chi2 += (counts[l][k] as f64 - e).powi(2) / e;
            }
            // χ² with 3 degrees of freedom: P(χ² > 16.27) = 0.001
            assert!(chi2 < 16.27, "layer {l}: counts {:?}, χ² {chi2}", counts[l]);
        }
    }

    #[test]
    fn the_lower_widths_are_let_in_gradually() {
        let bits = [8u8, 7, 6, 5, 4, 3, 2];
        assert_eq!(lowest_admitted(&bits, 0.0, 0.5), 8);
        assert_eq!(lowest_admitted(&bits, 0.25, 0.5), 5);
        assert_eq!(lowest_admitted(&bits, 0.5, 0.5), 2);
        assert_eq!(lowest_admitted(&bits, 0.9, 0.5), 2);
        assert_eq!(lowest_admitted(&bits, 0.0, 0.0), 2);
        // a sparse list: the floor 5 admits 6 but not 4
        assert_eq!(lowest_admitted(&[8, 6, 4, 2], 0.25, 0.5), 6);
        // nothing below the admitted width is ever drawn
        let w = width_weights(&[1.0, 1.0], &bits).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..1000 {
            let ks = sample_widths(&w, &bits, 6, &mut rng).unwrap();
            assert!(ks.iter().all(|&k| bits[k] >= 6), "{ks:?}");
        }
    }

    #[test]
    fn traces_must_be_finite() {
        assert!(width_weights(&[1.0, f64::NAN], &[8, 4]).is_err());
        assert!(width_weights(&[], &[8, 4]).is_err());
    }
}
