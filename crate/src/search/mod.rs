//! Mixed-precision search (ARQ, HAQ, HAWQ-V3's and Double Rounding's ILPs, and baselines):
//! choose one bit-width per quantizable layer under a bit-operations budget.
//!
//! The pieces every method shares live here:
//! - [`space`]: the policy space (a width per layer from the model's trained bit list, for
//!   weights and activations together), the BOPs [`Budget`](space::Budget) and HAQ's budget wall;
//! - [`Reward`]: what a policy is worth (validation accuracy for HAQ, certified radius for ARQ);
//! - [`Evaluated`], [`SearchProgress`], [`SearchResult`]: what a search reports as it goes and
//!   at the end (every evaluated policy can be written out as a trace).

pub mod accuracy;
pub mod arq;
pub mod ddpg;
pub mod env;
pub mod exhaustive;
pub mod faithfulness;
pub mod haq;
pub mod hessian;
pub mod ilp;
mod mlp;
pub mod random;
pub mod reward;
pub mod rl;
pub mod space;
pub mod uniform;
pub mod validation;

use crate::error::Result;
use crate::quant::Policy;
use serde::{Deserialize, Serialize};

pub use space::{Budget, SearchSpace};

/// What one policy is worth to a search (larger is better). Implementations are
/// deterministic for a given policy (their randomness is seeded when they are built).
pub trait Reward {
    /// Short name shown in traces and progress, e.g. `val-accuracy` or `irs-acr`.
    fn name(&self) -> &str;
    /// The reward of running the model at `policy`.
    fn evaluate(&mut self, policy: &Policy) -> Result<f64>;
}

/// One policy a search evaluated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluated {
    /// Width per quantizable layer (weights and activations), forward order.
    pub widths: Vec<u8>,
    /// Bit operations per image at this policy ([`crate::quant::bops`]).
    pub bops: u64,
    /// Weight bytes at this policy ([`crate::quant::size_bytes`]).
    pub size_bytes: f64,
    pub reward: f64,
    /// The episode (DDPG), sample (random search) or candidate index that produced it.
    pub episode: usize,
}

/// Reported after every evaluated policy; returning false from the progress callback
/// cancels the search, which then returns what it has so far with `cancelled` set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchProgress {
    pub episode: usize,
    pub episodes: usize,
    pub reward: f64,
    pub best_reward: f64,
}

/// The outcome of a search: the best policy found within the budget and every policy
/// evaluated on the way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResult {
    pub method: String,
    pub best: Evaluated,
    pub trace: Vec<Evaluated>,
    pub cancelled: bool,
}

/// Callback type of searches: `progress(&report)`; false cancels.
pub type ProgressFn<'a> = dyn FnMut(&SearchProgress) -> bool + 'a;

/// Evaluates `widths` (checked against `space`) with `reward`: the policy's BOPs, size and
/// reward, tagged with `episode`.
pub fn evaluate(
    space: &SearchSpace,
    widths: &[u8],
    reward: &mut dyn Reward,
    episode: usize,
) -> Result<Evaluated> {
    let policy = space.policy(widths)?;
    Ok(Evaluated {
        widths: widths.to_vec(),
        bops: space.bops(widths)?,
        size_bytes: space.size_bytes(widths)?,
        reward: reward.evaluate(&policy)?,
        episode,
    })
}
