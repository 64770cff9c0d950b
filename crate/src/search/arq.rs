//! ARQ (Yang et al., "ARQ: A Mixed-Precision Quantization Framework for Accurate and
//! Certifiably Robust DNNs"): HAQ's DDPG search with the reward replaced by the average
//! certified radius of the smoothed quantized classifier, measured incrementally by IRS on a
//! validation subset of the training images ([`IrsAcr`]).

use crate::error::Result;
use crate::search::reward::IrsAcr;
use crate::search::rl::{self, RlSettings};
use crate::search::space::{Budget, SearchSpace};
use crate::search::{ProgressFn, SearchResult};

/// Method name in results and traces.
pub const METHOD: &str = "arq";

/// Searches `space` under `budget` for the policy of the largest IRS-ACR: `settings.episodes`
/// episodes of the DDPG agent (see [`rl::run`] for progress, cancellation and the trace).
pub fn search(
    space: &SearchSpace,
    budget: Budget,
    reward: &mut IrsAcr,
    settings: &RlSettings,
    progress: &mut ProgressFn,
) -> Result<SearchResult> {
    rl::run(METHOD, space, budget, reward, settings, progress)
}
