//! Random search: policies drawn uniformly from the space (each searchable layer's width
//! uniform over the candidates, from a seed), each pushed under the budget by HAQ's budget
//! wall ([`SearchSpace::enforce_budget`]), evaluated, the best kept.

use super::{
    evaluate, Budget, Evaluated, ProgressFn, Reward, SearchProgress, SearchResult, SearchSpace,
};
use crate::error::{Error, Result};
use rand::{Rng, SeedableRng};

/// Draws `samples` ≥ 1 policies from `seed` and evaluates each (`episode` = its index). The
/// best is the first policy with the highest reward. `progress` hears of every evaluation;
/// returning false stops the search, which then returns what it has with `cancelled` set.
pub fn random_search(
    space: &SearchSpace,
    budget: &Budget,
    reward: &mut dyn Reward,
    samples: usize,
    seed: u64,
    progress: &mut ProgressFn,
) -> Result<SearchResult> {
    if samples == 0 {
        return Err(Error::Invalid(
            "random search needs at least one sample".into(),
        ));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut trace: Vec<Evaluated> = Vec::with_capacity(samples);
    let mut best: Option<Evaluated> = None;
    let mut cancelled = false;
    for episode in 0..samples {
        let mut widths: Vec<u8> = (0..space.num_layers())
            .map(|l| {
                let choices = space.choices(l);
                choices[rng.random_range(0..choices.len())]
            })
            .collect();
        space.enforce_budget(&mut widths, budget)?;
        let e = evaluate(space, &widths, reward, episode)?;
        if best.as_ref().is_none_or(|b| e.reward > b.reward) {
            best = Some(e.clone());
        }
        let best_reward = best.as_ref().map_or(e.reward, |b| b.reward);
        trace.push(e);
        let go_on = progress(&SearchProgress {
            episode,
            episodes: samples,
            reward: trace[episode].reward,
            best_reward,
        });
        if !go_on {
            cancelled = episode + 1 < samples;
            break;
        }
    }
    Ok(SearchResult {
        method: "random".into(),
        best: best.expect("at least one sample was evaluated"),
        trace,
        cancelled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::architecture;
    use crate::quant::Policy;

    /// Rewards width in the later layers: the budget wall must cut it back.
    struct LateBits;

    impl Reward for LateBits {
        fn name(&self) -> &str {
            "late-bits"
        }
        fn evaluate(&mut self, policy: &Policy) -> Result<f64> {
            Ok(policy
                .weight_bits
                .iter()
                .enumerate()
                .map(|(i, &b)| (i + 1) as f64 * b as f64)
                .sum())
        }
    }

    fn space() -> SearchSpace {
        SearchSpace::new(architecture(), &[8, 6, 4, 2], true).unwrap()
    }

    #[test]
    fn every_sample_fits_the_budget_and_the_best_is_the_trace_maximum() {
        let space = space();
        let budget = Budget::new(&space, space.bops(&space.uniform(4)).unwrap()).unwrap();
        let mut seen = Vec::new();
        let r = random_search(&space, &budget, &mut LateBits, 40, 3, &mut |p| {
            seen.push((p.episode, p.reward, p.best_reward));
            true
        })
        .unwrap();
        assert_eq!(r.trace.len(), 40);
        assert!(!r.cancelled);
        assert_eq!(seen.len(), 40);
        let max = r.trace.iter().map(|e| e.reward).fold(f64::MIN, f64::max);
        assert_eq!(r.best.reward, max);
        assert_eq!(seen[39].2, max);
        for (i, e) in r.trace.iter().enumerate() {
            assert_eq!(e.episode, i);
            assert!(e.bops <= budget.bops);
            assert_eq!(e.bops, space.bops(&e.widths).unwrap());
            assert_eq!((e.widths[0], e.widths[7]), (8, 8), "pins kept");
            assert_eq!(
                e.reward,
                LateBits
                    .evaluate(&space.policy(&e.widths).unwrap())
                    .unwrap()
            );
        }
        // the policies differ (40 draws from 4⁶ = 4,096)
        let distinct: std::collections::BTreeSet<_> = r.trace.iter().map(|e| &e.widths).collect();
        assert!(distinct.len() > 30);
    }

    #[test]
    fn the_same_seed_gives_the_same_search_and_cancel_stops_it() {
        let space = space();
        let budget = Budget::fraction(&space, 0.4).unwrap();
        let run = |seed| random_search(&space, &budget, &mut LateBits, 12, seed, &mut |_| true);
        assert_eq!(run(7).unwrap(), run(7).unwrap());
        assert_ne!(run(7).unwrap().trace, run(8).unwrap().trace);
        let r = random_search(&space, &budget, &mut LateBits, 12, 7, &mut |p| {
            p.episode < 4
        })
        .unwrap();
        assert!(r.cancelled);
        assert_eq!(r.trace.len(), 5);
        assert_eq!(r.trace[..], run(7).unwrap().trace[..5]);
        assert!(random_search(&space, &budget, &mut LateBits, 0, 7, &mut |_| true).is_err());
    }
}
