//! The episode loop that ARQ and HAQ share: the DDPG agent ([`super::ddpg`]) proposes one
//! width per layer in the environment ([`super::env`]), the budget wall makes the policy
//! affordable, a [`Reward`] scores it, and the score becomes the reward of every step of the
//! episode. The two methods differ only in the reward.

use crate::error::{Error, Result};
use crate::search::ddpg::{Ddpg, DdpgConfig, Transition};
use crate::search::env::{QuantEnv, STATE_DIM};
use crate::search::space::{Budget, SearchSpace};
use crate::search::{Evaluated, ProgressFn, Reward, SearchProgress, SearchResult};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How long an agent searches and from which seed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RlSettings {
    /// Episodes (≥ 1), the warm-up included; one policy is evaluated per episode.
    pub episodes: usize,
    /// Seed of the agent (weights, warm-up actions, exploration, replay sampling).
    pub seed: u64,
    pub ddpg: DdpgConfig,
}

impl RlSettings {
    /// HAQ's agent settings for `episodes` episodes from `seed`.
    pub fn new(episodes: usize, seed: u64) -> Self {
        Self {
            episodes,
            seed,
            ddpg: DdpgConfig::default(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.episodes == 0 {
            return Err(Error::Invalid(
                "a search needs at least one episode (got 0)".into(),
            ));
        }
        self.ddpg.validate()
    }
}

/// Runs the agent for `settings.episodes` episodes under `budget` and returns the best
/// policy found (every policy is within the budget: the wall sees to it), with every
/// episode's policy in the trace, in order. A policy met again is not re-evaluated (rewards
/// are deterministic per policy). `progress` is called after every episode; returning false
/// stops the search, which returns what it found so far with `cancelled` set.
pub fn run(
    method: &str,
    space: &SearchSpace,
    budget: Budget,
    reward: &mut dyn Reward,
    settings: &RlSettings,
    progress: &mut ProgressFn,
) -> Result<SearchResult> {
    settings.validate()?;
    // re-check: a Budget may have been built for another space
    let budget = Budget::new(space, budget.bops)?;
    let env = QuantEnv::new(space, budget);
    let layers = space.num_layers();
    let mut agent = Ddpg::new(STATE_DIM, layers, settings.ddpg, settings.seed)?;
    let mut seen: HashMap<Vec<u8>, f64> = HashMap::new();
    let mut trace: Vec<Evaluated> = Vec::with_capacity(settings.episodes);
    let mut best: Option<Evaluated> = None;
    let mut cancelled = false;

    for episode in 0..settings.episodes {
        let mut states = Vec::with_capacity(layers);
        let mut actions = Vec::with_capacity(layers);
        let mut widths = Vec::with_capacity(layers);
        let mut previous = 0.0f32;
        for layer in 0..layers {
            let state = env.state(layer, previous);
            let a = agent.act(&state, episode)?;
            widths.push(env.width(layer, a));
            states.push(state);
            actions.push(a);
            previous = a;
        }
        env.finish(&mut widths)?;

        let value = match seen.get(&widths) {
            Some(&v) => v,
            None => {
                let v = reward.evaluate(&space.policy(&widths)?)?;
                if !v.is_finite() {
                    return Err(Error::Invalid(format!(
                        "the reward {} returned {v} for widths {widths:?}",
                        reward.name()
                    )));
                }
                seen.insert(widths.clone(), v);
                v
            }
        };

        // HAQ: the episode's reward for every one of its steps
        for layer in 0..layers {
            let done = layer + 1 == layers;
            agent.remember(Transition {
                state: states[layer].to_vec(),
                action: actions[layer],
                reward: value as f32,
                next_state: states[if done { layer } else { layer + 1 }].to_vec(),
                done,
            })?;
        }
        if episode >= settings.ddpg.warmup {
            for _ in 0..layers {
                agent.update();
            }
        }

        let evaluated = Evaluated {
            bops: space.bops(&widths)?,
            size_bytes: space.size_bytes(&widths)?,
            widths,
            reward: value,
            episode,
        };
        if best.as_ref().is_none_or(|b| value > b.reward) {
            best = Some(evaluated.clone());
        }
        trace.push(evaluated);
        let report = SearchProgress {
            episode,
            episodes: settings.episodes,
            reward: value,
            best_reward: best.as_ref().map_or(value, |b| b.reward),
        };
        if !progress(&report) {
            cancelled = true;
            break;
        }
    }
    Ok(SearchResult {
        method: method.into(),
        best: best.expect("at least one episode ran"),
        trace,
        cancelled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::architecture;
    use crate::quant::Policy;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// A separable reward with a known optimum: each layer has a preferred width, and a policy
    /// loses the squared distance (in candidate steps) from it, summed over layers.
    struct Preferred {
        preferred: Vec<u8>,
        calls: usize,
    }

    const BITS: [u8; 4] = [8, 6, 4, 2];

    fn step(b: u8) -> i32 {
        BITS.iter().position(|&c| c == b).unwrap() as i32
    }

    impl Preferred {
        fn value(&self, widths: &[u8]) -> f64 {
            -widths
                .iter()
                .zip(&self.preferred)
                .map(|(&w, &p)| ((step(w) - step(p)) as f64).powi(2))
                .sum::<f64>()
        }
    }

    impl Reward for Preferred {
        fn name(&self) -> &str {
            "preferred"
        }
        fn evaluate(&mut self, policy: &Policy) -> Result<f64> {
            self.calls += 1;
            Ok(self.value(&policy.weight_bits))
        }
    }

    fn preferred() -> Preferred {
        // cheap layers (stem, shortcuts, fc) prefer 8 bits, the expensive ones fewer
        Preferred {
            preferred: vec![8, 4, 4, 8, 2, 2, 8, 8],
            calls: 0,
        }
    }

    fn space() -> SearchSpace {
        SearchSpace::new(architecture(), &BITS, false).unwrap()
    }

    /// The budget of every layer at 3 bits, by hand: MACs × 3 × 3, but the stem's input is
    /// float (32 bits): 56,448·3·32 + 2,118,368·9 = 24,484,320 BOPs. The preferred policy
    /// (36.2 M BOPs) does not fit; the pinned space's cheapest policy (24.3 M) does.
    fn budget(space: &SearchSpace) -> Budget {
        let stem = space.layers[0].macs();
        let rest: u64 = space.layers[1..].iter().map(|l| l.macs()).sum();
        Budget::new(space, stem * 3 * 32 + rest * 9).unwrap()
    }

    /// The true optimum under the budget, by enumerating all 4⁸ policies.
    fn optimum(space: &SearchSpace, budget: Budget, reward: &Preferred) -> f64 {
        let mut best = f64::NEG_INFINITY;
        for code in 0..4usize.pow(8) {
            let widths: Vec<u8> = (0..8).map(|l| BITS[(code >> (2 * l)) & 3]).collect();
            if space.bops(&widths).unwrap() <= budget.bops {
                best = best.max(reward.value(&widths));
            }
        }
        best
    }

    /// Random search with the same wall: uniform widths per layer, then lowered to the budget.
    fn random_search(space: &SearchSpace, budget: Budget, reward: &Preferred, n: usize) -> f64 {
        let mut rng = StdRng::seed_from_u64(0);
        (0..n)
            .map(|_| {
                let mut widths: Vec<u8> = (0..8).map(|_| BITS[rng.random_range(0..4)]).collect();
                space.enforce_budget(&mut widths, &budget).unwrap();
                reward.value(&widths)
            })
            .fold(f64::NEG_INFINITY, f64::max)
    }

    #[test]
    fn ddpg_beats_random_search_on_a_reward_with_a_known_optimum() {
        let space = space();
        let budget = budget(&space);
        let mut reward = preferred();
        let best = optimum(&space, budget, &reward);
        // (seeds 0–3 at 150 episodes: DDPG regret 0, 0, 2, 0; random search 6–13 over seeds 0–3)
        let episodes = 150;
        let settings = RlSettings::new(episodes, 1);
        let result = run("test", &space, budget, &mut reward, &settings, &mut |_| {
            true
        })
        .unwrap();
        let random = random_search(&space, budget, &reward, episodes);
        let (ddpg_regret, random_regret) = (best - result.best.reward, best - random);
        eprintln!("optimum {best}, DDPG regret {ddpg_regret}, random regret {random_regret}");
        // the margin: DDPG's regret at most half of random search's, with the same number of
        // proposed policies
        assert!(random_regret > 0.0);
        assert!(
            ddpg_regret <= 0.5 * random_regret,
            "DDPG {ddpg_regret}, random {random_regret}"
        );
    }

    #[test]
    fn every_policy_respects_the_budget_and_the_trace_lists_every_episode() {
        let space = SearchSpace::new(architecture(), &BITS, true).unwrap();
        let budget = budget(&space);
        let mut reward = preferred();
        let settings = RlSettings::new(30, 3);
        let result = run("test", &space, budget, &mut reward, &settings, &mut |_| {
            true
        })
        .unwrap();
        assert_eq!(result.trace.len(), 30);
        assert!(!result.cancelled);
        for (k, e) in result.trace.iter().enumerate() {
            assert_eq!(e.episode, k);
            assert!(e.bops <= budget.bops);
            assert_eq!(e.bops, space.bops(&e.widths).unwrap());
            assert_eq!((e.widths[0], e.widths[7]), (8, 8), "pins respected");
        }
        let top = result
            .trace
            .iter()
            .map(|e| e.reward)
            .fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(result.best.reward, top);
        // repeated policies are not evaluated again
        let distinct: std::collections::HashSet<_> =
            result.trace.iter().map(|e| e.widths.clone()).collect();
        assert_eq!(reward.calls, distinct.len());
    }

    #[test]
    fn the_same_seed_gives_the_same_policies() {
        let space = space();
        let budget = budget(&space);
        let settings = RlSettings::new(40, 9);
        let a = run(
            "t",
            &space,
            budget,
            &mut preferred(),
            &settings,
            &mut |_| true,
        )
        .unwrap();
        let b = run(
            "t",
            &space,
            budget,
            &mut preferred(),
            &settings,
            &mut |_| true,
        )
        .unwrap();
        assert_eq!(a, b);
        let other = RlSettings::new(40, 10);
        let c = run("t", &space, budget, &mut preferred(), &other, &mut |_| true).unwrap();
        assert_ne!(a.trace, c.trace);
    }

    #[test]
    fn progress_reports_every_episode_and_can_cancel() {
        let space = space();
        let budget = budget(&space);
        let mut seen = vec![];
        let result = run(
            "t",
            &space,
            budget,
            &mut preferred(),
            &RlSettings::new(10, 0),
            &mut |p| {
                seen.push((p.episode, p.episodes, p.best_reward >= p.reward));
                p.episode < 3
            },
        )
        .unwrap();
        assert!(result.cancelled);
        assert_eq!(result.trace.len(), 4);
        assert_eq!(seen, (0..4).map(|e| (e, 10, true)).collect::<Vec<_>>());
    }

    #[test]
    fn zero_episodes_and_a_foreign_budget_are_errors() {
        let space = space();
        let budget = budget(&space);
        let err = run(
            "t",
            &space,
            budget,
            &mut preferred(),
            &RlSettings::new(0, 0),
            &mut |_| true,
        )
        .unwrap_err();
        assert!(err.to_string().contains("at least one episode"), "{err}");
        let too_low = Budget { bops: 1 };
        let err = run(
            "t",
            &space,
            too_low,
            &mut preferred(),
            &RlSettings::new(5, 0),
            &mut |_| true,
        )
        .unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
    }
}
