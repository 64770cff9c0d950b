//! HAQ's quantization environment (DESIGN §6): an episode walks the quantizable layers in
//! forward order, one step each; at each step the agent sees the layer's state and answers an
//! action a ∈ [0, 1], which becomes the layer's width; after the last layer the budget wall
//! lowers widths until the policy fits the BOPs budget.
//!
//! State per layer (10 features, each min-max normalised over the model's layers to [0, 1];
//! a feature that is the same for every layer becomes 0):
//! `[is_depthwise, in_channels, out_channels, stride, kernel, #weights, in_h·in_w,
//!   layer index, previous action, weight/activation flag]`.
//! `is_depthwise` is 0 for every layer of `bsnet8` (no grouped convolutions). The
//! weight/activation flag is constant here because one width covers a layer's weights and
//! its input activations together (HAQ alternates weight and activation steps; this space
//! does not), so it carries no information and normalises to 0. The previous action is the
//! agent's raw action at the previous layer (0 before the first), already in [0, 1].

use crate::error::Result;
use crate::search::space::{Budget, SearchSpace};

/// Features per state.
pub const STATE_DIM: usize = 10;
/// Index of the previous action in a state.
const PREVIOUS_ACTION: usize = 8;

/// The width for action `a` ∈ [0, 1] among `candidates` (any order): with the K candidates
/// sorted ascending c₀ < … < c_{K−1}, the index is ⌊a·K⌋ clamped to K − 1, i.e. [0, 1] is cut
/// into K equal intervals. For a contiguous list b_min..=b_max this is DESIGN §6's
/// round(a·(b_max − b_min + 1) + b_min − 0.5) (ties rounded up), clamped at a = 1.
pub fn action_to_width(candidates: &[u8], a: f64) -> u8 {
    let mut sorted = candidates.to_vec();
    sorted.sort_unstable();
    let k = sorted.len();
    let index = (a.clamp(0.0, 1.0) * k as f64).floor() as usize;
    sorted[index.min(k - 1)]
}

/// The environment of one search: the space, the budget and the layers' static features.
pub struct QuantEnv<'a> {
    space: &'a SearchSpace,
    budget: Budget,
    /// Normalised static features per layer (the previous-action slot left at 0).
    features: Vec<[f32; STATE_DIM]>,
}

impl<'a> QuantEnv<'a> {
    pub fn new(space: &'a SearchSpace, budget: Budget) -> Self {
        let n = space.num_layers();
        let raw: Vec<[f64; STATE_DIM]> = space
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                [
                    0.0, // no depthwise convolutions in this model family
                    l.in_channels as f64,
                    l.out_channels as f64,
                    l.stride as f64,
                    l.kernel as f64,
                    l.weights() as f64,
                    (l.in_hw[0] * l.in_hw[1]) as f64,
                    i as f64,
                    0.0, // previous action: filled in per step
                    1.0, // weights and activations together, at every layer
                ]
            })
            .collect();
        let mut features = vec![[0.0f32; STATE_DIM]; n];
        for f in 0..STATE_DIM {
            let lo = raw.iter().map(|r| r[f]).fold(f64::INFINITY, f64::min);
            let hi = raw.iter().map(|r| r[f]).fold(f64::NEG_INFINITY, f64::max);
            for (row, out) in raw.iter().zip(features.iter_mut()) {
                out[f] = if hi > lo {
                    ((row[f] - lo) / (hi - lo)) as f32
                } else {
                    0.0
                };
            }
        }
        Self {
            space,
            budget,
            features,
        }
    }

    pub fn space(&self) -> &SearchSpace {
        self.space
    }

    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// The state at `layer` after the agent answered `previous_action` ∈ [0, 1] at the
    /// layer before (0 at the first layer).
    pub fn state(&self, layer: usize, previous_action: f32) -> [f32; STATE_DIM] {
        let mut s = self.features[layer];
        s[PREVIOUS_ACTION] = previous_action.clamp(0.0, 1.0);
        s
    }

    /// The width of `layer` for action `a`: its pin if pinned, else [`action_to_width`] over
    /// the candidate list.
    pub fn width(&self, layer: usize, a: f32) -> u8 {
        action_to_width(&self.space.choices(layer), a as f64)
    }

    /// The budget wall: lowers `widths` (one per layer, from [`width`](Self::width)) until
    /// the policy costs at most the budget ([`SearchSpace::enforce_budget`]).
    pub fn finish(&self, widths: &mut [u8]) -> Result<()> {
        self.space.enforce_budget(widths, &self.budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::architecture;

    #[test]
    fn actions_cut_the_unit_interval_into_equal_parts_per_candidate() {
        let bits = [8, 6, 4, 2];
        // K = 4: [0, ¼) → 2, [¼, ½) → 4, [½, ¾) → 6, [¾, 1] → 8
        assert_eq!(action_to_width(&bits, 0.0), 2);
        assert_eq!(action_to_width(&bits, 0.2499), 2);
        assert_eq!(action_to_width(&bits, 0.25), 4);
        assert_eq!(action_to_width(&bits, 0.5), 6);
        assert_eq!(action_to_width(&bits, 0.74), 6);
        assert_eq!(action_to_width(&bits, 0.75), 8);
        assert_eq!(action_to_width(&bits, 1.0), 8);
    }

    #[test]
    fn on_a_contiguous_list_it_is_the_design_formula() {
        // DESIGN §6: bits = round(a·(b_max − b_min + 1) + b_min − 0.5), for 2..=8
        let bits: Vec<u8> = (2..=8).collect();
        for k in 0..=1000 {
            let a = k as f64 / 1000.0;
            let formula = (a * 7.0 + 2.0 - 0.5).round().min(8.0) as u8;
            assert_eq!(action_to_width(&bits, a), formula, "a = {a}");
        }
    }

    #[test]
    fn states_are_normalised_per_feature_and_carry_the_previous_action() {
        let space = SearchSpace::new(architecture(), &[8, 6, 4, 2], false).unwrap();
        let budget = Budget::new(&space, space.max_bops().unwrap()).unwrap();
        let env = QuantEnv::new(&space, budget);
        let first = env.state(0, 0.0);
        let last = env.state(7, 0.3);
        // stem: 1 input channel (the minimum), 28×28 input (the maximum), index 0
        assert_eq!(first[1], 0.0);
        assert_eq!(first[6], 1.0);
        assert_eq!(first[7], 0.0);
        // fc: 2,352 inputs (the maximum), kernel 1 (the minimum), index 7 (the maximum)
        assert_eq!(last[1], 1.0);
        assert_eq!(last[4], 0.0);
        assert_eq!(last[7], 1.0);
        assert_eq!(last[8], 0.3);
        // constant features (depthwise, the weight/activation flag) are 0
        for s in [first, last] {
            assert_eq!(s[0], 0.0);
            assert_eq!(s[9], 0.0);
            assert!(s.iter().all(|v| (0.0..=1.0).contains(v)));
        }
        // block1.conv2: 16 of 1..=2352 inputs
        let s = env.state(2, 0.0);
        assert!((s[1] - 15.0 / 2351.0).abs() < 1e-6);
    }

    #[test]
    fn pinned_layers_ignore_the_action() {
        let space = SearchSpace::new(architecture(), &[8, 6, 4, 2], true).unwrap();
        let budget = Budget::new(&space, space.max_bops().unwrap()).unwrap();
        let env = QuantEnv::new(&space, budget);
        assert_eq!(env.width(0, 0.0), 8);
        assert_eq!(env.width(7, 0.1), 8);
        assert_eq!(env.width(3, 0.1), 2);
    }
}
