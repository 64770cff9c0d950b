//! HAQ (Wang et al., "HAQ: Hardware-Aware Automated Quantization with Mixed Precision",
//! CVPR 2019) under a BOPs budget: the DDPG agent ARQ also uses, rewarded by the clean
//! accuracy of the quantized model on a validation subset of the training images — the
//! accuracy-only baseline ARQ is compared with.

use crate::error::Result;
use crate::search::rl::{self, RlSettings};
use crate::search::space::{Budget, SearchSpace};
use crate::search::{ProgressFn, Reward, SearchResult};

/// Method name in results and traces.
pub const METHOD: &str = "haq";

/// Searches `space` under `budget` for the policy of the largest `accuracy` (a validation
/// accuracy reward): `settings.episodes` episodes of the DDPG agent (see [`rl::run`]).
pub fn search(
    space: &SearchSpace,
    budget: Budget,
    accuracy: &mut dyn Reward,
    settings: &RlSettings,
    progress: &mut ProgressFn,
) -> Result<SearchResult> {
    rl::run(METHOD, space, budget, accuracy, settings, progress)
}
