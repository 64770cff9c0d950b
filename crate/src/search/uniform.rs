//! The uniform baseline: every searchable layer at the same width, the highest candidate
//! width whose BOPs fit the budget (pinned layers keep their pin).

use super::{evaluate, Budget, ProgressFn, Reward, SearchProgress, SearchResult, SearchSpace};
use crate::error::{Error, Result};

/// The highest uniform width of `space` within `budget`.
pub fn uniform_width(space: &SearchSpace, budget: &Budget) -> Result<u8> {
    for &b in &space.bits {
        if space.bops(&space.uniform(b))? <= budget.bops {
            return Ok(b);
        }
    }
    Err(Error::Invalid(format!(
        "no uniform policy fits a budget of {} BOPs (the cheapest costs {})",
        budget.bops,
        space.min_bops()?
    )))
}

/// Evaluates the [`uniform_width`] policy once with `reward` (reported to `progress`).
pub fn uniform_search(
    space: &SearchSpace,
    budget: &Budget,
    reward: &mut dyn Reward,
    progress: &mut ProgressFn,
) -> Result<SearchResult> {
    let widths = space.uniform(uniform_width(space, budget)?);
    let best = evaluate(space, &widths, reward, 0)?;
    let go_on = progress(&SearchProgress {
        episode: 0,
        episodes: 1,
        reward: best.reward,
        best_reward: best.reward,
    });
    Ok(SearchResult {
        method: "uniform".into(),
        trace: vec![best.clone()],
        best,
        cancelled: !go_on,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::architecture;
    use crate::quant::Policy;

    /// Reward = mean width, so a test can see which policy was evaluated.
    struct MeanBits;

    impl Reward for MeanBits {
        fn name(&self) -> &str {
            "mean-bits"
        }
        fn evaluate(&mut self, policy: &Policy) -> Result<f64> {
            let w = &policy.weight_bits;
            Ok(w.iter().map(|&b| b as f64).sum::<f64>() / w.len() as f64)
        }
    }

    #[test]
    fn uniform_takes_the_highest_width_that_fits() {
        let space = SearchSpace::new(architecture(), &[8, 6, 4, 2], false).unwrap();
        let at = |b: u8| space.bops(&space.uniform(b)).unwrap();
        for (bops, expected) in [
            (at(8), 8),
            (at(8) - 1, 6),
            (at(6), 6),
            (at(4) + 1, 4),
            (at(4), 4),
            (at(2), 2),
        ] {
            let budget = Budget::new(&space, bops).unwrap();
            assert_eq!(uniform_width(&space, &budget).unwrap(), expected, "{bops}");
            let r = uniform_search(&space, &budget, &mut MeanBits, &mut |_| true).unwrap();
            assert_eq!(r.best.widths, vec![expected; 8]);
            assert_eq!(r.best.reward, expected as f64);
            assert!(r.best.bops <= bops);
            assert_eq!(r.trace, vec![r.best.clone()]);
        }
    }

    #[test]
    fn pinned_layers_keep_their_pin() {
        let space = SearchSpace::new(architecture(), &[8, 4, 2], true).unwrap();
        let budget = Budget::new(&space, space.bops(&space.uniform(4)).unwrap()).unwrap();
        let r = uniform_search(&space, &budget, &mut MeanBits, &mut |_| false).unwrap();
        assert_eq!(r.best.widths, vec![8, 4, 4, 4, 4, 4, 4, 8]);
        assert!(r.cancelled);
    }
}
