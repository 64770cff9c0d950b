//! `--bits`, `--policy`, `--act-bits`, `--calibration`: the bit policy a subcommand runs at.

use super::{load_dataset, CALIBRATION_IMAGES};
use crate::checkpoint::{self, Loaded};
use crate::error::{Error, Result};
use crate::quant::{self, Policy};
use std::path::Path;

/// Which bit policy to run the model at: an int8 model switches by Double Rounding (default
/// w8a8), a float model is post-training quantized, an export runs at its own policy.
#[derive(clap::Args, Clone, Debug)]
pub struct PolicyArgs {
    /// Uniform bit-width B for weights and activations (w{B}a{B}), 2..=8. Default: w8a8 for
    /// an int8 model, float for a float model.
    #[arg(long, conflicts_with = "policy")]
    bits: Option<u8>,
    /// Weight bits per quantizable layer in forward order, e.g. 8,6,4,4,4,4,6,8.
    #[arg(long)]
    policy: Option<String>,
    /// Activation bits: one width for every layer or one per layer (default: --bits, or 8).
    #[arg(long)]
    act_bits: Option<String>,
    /// Noisy training images used to calibrate the activation quantizers (the browser uses
    /// the same first 256 with the same noise seed, so both get the same scales).
    #[arg(long, default_value_t = CALIBRATION_IMAGES)]
    calibration: usize,
}

impl PolicyArgs {
    /// The policy asked for, if any, checked against the model's layer count.
    pub fn resolve(&self, layers: usize) -> Result<Option<Policy>> {
        let weight_bits = match (&self.bits, &self.policy) {
            (Some(b), _) => vec![*b; layers],
            (None, Some(list)) => quant::parse_bits_list(list)?,
            (None, None) if self.act_bits.is_none() => return Ok(None),
            (None, None) => vec![quant::MAX_BITS; layers],
        };
        let act_bits = match &self.act_bits {
            Some(list) => match quant::parse_bits_list(list)?.as_slice() {
                [one] => vec![*one; layers],
                many => many.to_vec(),
            },
            None => vec![self.bits.unwrap_or(quant::MAX_BITS); layers],
        };
        let policy = Policy {
            weight_bits,
            act_bits,
        };
        policy.validate(layers)?;
        Ok(Some(policy))
    }

    /// Sets the loaded model to the policy asked for and returns the policy it runs at
    /// (`None`: float). A float model is calibrated on noisy training images at its σ, seed 0.
    pub fn apply(&self, loaded: &mut Loaded, data_dir: &Path) -> Result<Option<Policy>> {
        let model = &mut loaded.model;
        let requested = self.resolve(model.layers.len())?;
        if let Some(switchable) = &loaded.switchable {
            let policy = match requested {
                Some(p) => p,
                None => Policy::uniform(model.layers.len(), quant::MAX_BITS, quant::MAX_BITS)?,
            };
            switchable.apply(model, &policy)?;
            return Ok(Some(policy));
        }
        if model.meta.kind == checkpoint::KIND_EXPORT {
            if requested.is_some() {
                return Err(Error::Invalid(
                    "an exported model is fixed at the policy it was exported at".into(),
                ));
            }
            let policy = model.meta.policy.clone().map(serde_json::from_value);
            return policy
                .transpose()
                .map_err(|e| Error::Model(format!("policy: {e}")));
        }
        let Some(policy) = requested else {
            return Ok(None);
        };
        let train = load_dataset(&data_dir.join(format!("{}-train.bsds", model.meta.dataset)))?;
        let calibration =
            quant::calibration_batch(&train.head(self.calibration), model.meta.sigma)?;
        quant::apply_ptq(model, &policy, &calibration)?;
        Ok(Some(policy))
    }
}
