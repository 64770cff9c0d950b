//! Ground truth: every policy of a (small) space evaluated once, so that the exact optimum
//! under any budget — and every method's regret against it — can be read from the table.
//! With one width per layer from {8, 6, 4, 2} and no pins, `bsnet8` has 4⁸ = 65,536
//! policies.

use super::{evaluate, Evaluated, ProgressFn, Reward, SearchProgress, SearchSpace};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Largest space [`Exhaustive::run`] enumerates.
pub const MAX_POLICIES: u128 = 1 << 20;

/// Every policy of `space` with its reward (`table[i].episode == i`), in enumeration order:
/// the last layer's width varies fastest, each layer's widths in the space's order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exhaustive {
    pub space: SearchSpace,
    /// The [`Reward::name`] the table was measured with.
    pub reward: String,
    pub table: Vec<Evaluated>,
    /// False if the enumeration was cancelled before the last policy.
    pub complete: bool,
}

impl Exhaustive {
    /// Evaluates every policy of `space` (at most [`MAX_POLICIES`]) with `reward`;
    /// `progress` hears of each, and returning false stops the enumeration (the table is
    /// then incomplete and has no optimum).
    pub fn run(
        space: &SearchSpace,
        reward: &mut dyn Reward,
        progress: &mut ProgressFn,
    ) -> Result<Self> {
        let count = space.count();
        if count > MAX_POLICIES {
            return Err(Error::Invalid(format!(
                "the space holds {count} policies, more than the {MAX_POLICIES} an exhaustive \
                 search enumerates: pin layers or offer fewer widths"
            )));
        }
        let count = count as usize;
        let choices: Vec<Vec<u8>> = (0..space.num_layers()).map(|l| space.choices(l)).collect();
        let mut table: Vec<Evaluated> = Vec::with_capacity(count);
        let mut best = f64::NEG_INFINITY;
        let mut complete = true;
        for i in 0..count {
            let e = evaluate(space, &policy_at(&choices, i), reward, i)?;
            best = best.max(e.reward);
            let go_on = progress(&SearchProgress {
                episode: i,
                episodes: count,
                reward: e.reward,
                best_reward: best,
            });
            table.push(e);
            if !go_on {
                complete = i + 1 == count;
                break;
            }
        }
        Ok(Self {
            space: space.clone(),
            reward: reward.name().to_string(),
            table,
            complete,
        })
    }

    /// The exact optimum under `budget` BOPs: the highest reward among policies costing at
    /// most `budget`; among equal rewards the cheaper, then the earlier in the table.
    pub fn optimum(&self, budget: u64) -> Result<Evaluated> {
        if !self.complete {
            return Err(Error::Invalid(format!(
                "the enumeration stopped after {} policies of {}: its optimum is not known",
                self.table.len(),
                self.space.count()
            )));
        }
        let mut best: Option<&Evaluated> = None;
        for e in self.table.iter().filter(|e| e.bops <= budget) {
            let better = best
                .is_none_or(|b| e.reward > b.reward || (e.reward == b.reward && e.bops < b.bops));
            if better {
                best = Some(e);
            }
        }
        best.cloned().ok_or_else(|| {
            Error::Invalid(format!(
                "no policy fits a budget of {budget} BOPs (the cheapest costs {})",
                self.table.iter().map(|e| e.bops).min().unwrap_or(0)
            ))
        })
    }

    /// Regret of a method that reached `reward` under `budget`: optimum reward − `reward`
    /// (≥ 0 for any policy within the budget evaluated with the same reward).
    pub fn regret(&self, budget: u64, reward: f64) -> Result<f64> {
        Ok(self.optimum(budget)?.reward - reward)
    }

    /// The Pareto front of BOPs against reward: every policy no other beats on both (fewer
    /// or equal BOPs and a higher reward), ordered by BOPs.
    pub fn pareto_front(&self) -> Vec<Evaluated> {
        let mut sorted: Vec<&Evaluated> = self.table.iter().collect();
        sorted.sort_by(|a, b| a.bops.cmp(&b.bops).then(b.reward.total_cmp(&a.reward)));
        let mut front: Vec<Evaluated> = Vec::new();
        for e in sorted {
            if front.last().is_none_or(|f| e.reward > f.reward) {
                front.push(e.clone());
            }
        }
        front
    }
}

/// The `index`-th policy in enumeration order (mixed radix, last layer fastest).
fn policy_at(choices: &[Vec<u8>], mut index: usize) -> Vec<u8> {
    let mut widths = vec![0u8; choices.len()];
    for (l, c) in choices.iter().enumerate().rev() {
        widths[l] = c[index % c.len()];
        index /= c.len();
    }
    widths
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LayerKind, LayerSpec};
    use crate::quant::Policy;

    /// A linear layer of `macs` multiply-accumulates (1 input, `macs` outputs).
    fn linear(name: &str, macs: usize) -> LayerSpec {
        LayerSpec {
            name: name.into(),
            kind: LayerKind::Linear,
            in_channels: 1,
            out_channels: macs,
            kernel: 1,
            stride: 1,
            padding: 0,
            in_hw: [1, 1],
            out_hw: [1, 1],
        }
    }

    /// A separable reward: v_l(b) per searchable layer, from a hand-made table.
    struct Separable;

    impl Reward for Separable {
        fn name(&self) -> &str {
            "separable"
        }
        fn evaluate(&mut self, policy: &Policy) -> Result<f64> {
            let v = |l: usize, b: u8| -> f64 {
                let k = match b {
                    2 => 0,
                    4 => 1,
                    _ => 2,
                };
                [[0.0, 5.0, 6.0], [0.0, 3.0, 10.0], [0.0, 7.0, 8.0]][l - 1][k]
            };
            Ok((1..4).map(|l| v(l, policy.weight_bits[l])).sum())
        }
    }

    /// Layer 0 pinned (a constant cost whatever the first-layer rule), layers 1..3 with
    /// 1, 2, 4 MACs at {8, 4, 2} bits: over the all-2-bit policy, layer l at b costs
    /// MACs_l · (b² − 4) more — 12/60, 24/120, 48/240 at 4/8 bits.
    fn space() -> SearchSpace {
        let layers = vec![
            linear("a", 3),
            linear("b", 1),
            linear("c", 2),
            linear("d", 4),
        ];
        let mut s = SearchSpace::new(layers, &[8, 4, 2], false).unwrap();
        s.pinned[0] = Some(8);
        s
    }

    #[test]
    fn the_optimum_is_the_hand_worked_one_at_every_budget() {
        let space = space();
        let mut reports = 0;
        let ex = Exhaustive::run(&space, &mut Separable, &mut |p| {
            assert_eq!(p.episodes, 27);
            reports += 1;
            true
        })
        .unwrap();
        assert_eq!((ex.table.len(), reports, ex.complete), (27, 27, true));
        let base = space.min_bops().unwrap();
        // (extra BOPs over all-2, optimum widths, reward), worked out by hand
        for (extra, widths, reward) in [
            (0, [8, 2, 2, 2], 0.0),
            (11, [8, 2, 2, 2], 0.0),
            (12, [8, 4, 2, 2], 5.0),
            (36, [8, 4, 4, 2], 8.0),
            (60, [8, 4, 2, 4], 12.0),
            (84, [8, 4, 4, 4], 15.0),
            (144, [8, 8, 4, 4], 16.0),
            (420, [8, 8, 8, 8], 24.0),
        ] {
            let best = ex.optimum(base + extra).unwrap();
            assert_eq!(
                (best.widths.as_slice(), best.reward),
                (&widths[..], reward),
                "{extra}"
            );
            assert!(best.bops <= base + extra);
        }
        assert!(ex.optimum(base - 1).is_err());
        assert_eq!(ex.regret(base + 60, 8.0).unwrap(), 4.0);
        // the front climbs in both BOPs and reward and ends at the all-8 policy
        let front = ex.pareto_front();
        assert!(front
            .windows(2)
            .all(|p| p[0].bops < p[1].bops && p[0].reward < p[1].reward));
        assert_eq!(front.last().unwrap().reward, 24.0);
        assert_eq!(front[0].reward, 0.0);
    }

    #[test]
    fn a_cancelled_enumeration_has_no_optimum_and_big_spaces_are_refused() {
        let space = space();
        let ex = Exhaustive::run(&space, &mut Separable, &mut |p| p.episode < 9).unwrap();
        assert!(!ex.complete);
        assert_eq!(ex.table.len(), 10);
        let err = ex.optimum(u64::MAX).unwrap_err().to_string();
        assert!(err.contains("stopped after 10 policies of 27"), "{err}");
        let big = SearchSpace::new(
            (0..11).map(|i| linear(&format!("l{i}"), 1)).collect(),
            &[8, 6, 4, 2],
            false,
        )
        .unwrap();
        let err = Exhaustive::run(&big, &mut Separable, &mut |_| true).unwrap_err();
        assert!(err.to_string().contains("4194304 policies"), "{err}");
    }

    #[test]
    fn enumeration_visits_every_policy_once() {
        let space = SearchSpace::new(crate::model::architecture(), &[8, 2], true).unwrap();
        let choices: Vec<Vec<u8>> = (0..8).map(|l| space.choices(l)).collect();
        let all: std::collections::BTreeSet<Vec<u8>> =
            (0..64).map(|i| policy_at(&choices, i)).collect();
        assert_eq!(all.len(), 64);
        assert!(all.iter().all(|w| space.check(w).is_ok()));
        assert_eq!(policy_at(&choices, 1), vec![8, 8, 8, 8, 8, 8, 2, 8]);
    }
}
