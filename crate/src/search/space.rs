//! The policy space searched over and its budget.
//!
//! A candidate is one width per quantizable layer, applied to the layer's weights and its
//! input activations together (w{b}a{b} per layer), taken from the widths the model was
//! trained at (e.g. {8, 6, 4, 2}); the first and last layers may be pinned (HAQ and ARQ pin
//! them to 8 bits). Costs come from [`crate::quant::layer_costs`], so every method, the CLI
//! and the browser count BOPs the same way.

use crate::error::{Error, Result};
use crate::model::LayerSpec;
use crate::quant::{self, Policy};
use serde::{Deserialize, Serialize};

/// The layers, the candidate widths and the pinned layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchSpace {
    pub layers: Vec<LayerSpec>,
    /// Candidate widths, strictly descending, each in 2..=8 (the model's trained list).
    pub bits: Vec<u8>,
    /// Per layer: `Some(b)` fixes the layer at b bits, `None` lets the search choose.
    pub pinned: Vec<Option<u8>>,
}

impl SearchSpace {
    /// A space over `layers` with candidate widths `bits` (any order; sorted descending
    /// here), optionally pinning the first and last layer to the highest width.
    pub fn new(layers: Vec<LayerSpec>, bits: &[u8], pin_first_last: bool) -> Result<Self> {
        if layers.is_empty() {
            return Err(Error::Invalid("a search needs at least one layer".into()));
        }
        let mut bits = bits.to_vec();
        bits.sort_unstable_by(|a, b| b.cmp(a));
        bits.dedup();
        if bits.is_empty() {
            return Err(Error::Invalid(
                "a search needs at least one candidate bit-width".into(),
            ));
        }
        for &b in &bits {
            quant::check_bits(b)?;
        }
        let mut pinned = vec![None; layers.len()];
        if pin_first_last {
            let last = layers.len() - 1;
            pinned[0] = Some(bits[0]);
            pinned[last] = Some(bits[0]);
        }
        Ok(Self {
            layers,
            bits,
            pinned,
        })
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Highest candidate width.
    pub fn max_bits(&self) -> u8 {
        self.bits[0]
    }

    /// Lowest candidate width.
    pub fn min_bits(&self) -> u8 {
        *self.bits.last().expect("bits is never empty")
    }

    /// The widths a layer may take (its pin, or every candidate).
    pub fn choices(&self, layer: usize) -> Vec<u8> {
        match self.pinned[layer] {
            Some(b) => vec![b],
            None => self.bits.clone(),
        }
    }

    /// Checks that `widths` has one candidate width per layer and respects the pins.
    pub fn check(&self, widths: &[u8]) -> Result<()> {
        if widths.len() != self.layers.len() {
            return Err(Error::Invalid(format!(
                "a policy of this search lists {} widths, the model has {} quantizable layers",
                widths.len(),
                self.layers.len()
            )));
        }
        for (i, &b) in widths.iter().enumerate() {
            if !self.choices(i).contains(&b) {
                return Err(Error::Invalid(format!(
                    "layer {i} ({}) at {b} bits: allowed here are {:?}",
                    self.layers[i].name,
                    self.choices(i)
                )));
            }
        }
        Ok(())
    }

    /// The quantization policy of `widths` (weights and activations at the same width).
    pub fn policy(&self, widths: &[u8]) -> Result<Policy> {
        self.check(widths)?;
        let policy = Policy {
            weight_bits: widths.to_vec(),
            act_bits: widths.to_vec(),
        };
        policy.validate(self.layers.len())?;
        Ok(policy)
    }

    /// Bit operations per image of `widths`.
    pub fn bops(&self, widths: &[u8]) -> Result<u64> {
        quant::bops(&self.layers, &self.policy(widths)?)
    }

    /// Weight bytes of `widths`.
    pub fn size_bytes(&self, widths: &[u8]) -> Result<f64> {
        quant::size_bytes(&self.layers, &self.policy(widths)?)
    }

    /// Every unpinned layer at `bits` (pinned layers keep their pin).
    pub fn uniform(&self, bits: u8) -> Vec<u8> {
        (0..self.layers.len())
            .map(|i| self.pinned[i].unwrap_or(bits))
            .collect()
    }

    /// BOPs with every unpinned layer at the lowest width: the cheapest policy.
    pub fn min_bops(&self) -> Result<u64> {
        self.bops(&self.uniform(self.min_bits()))
    }

    /// BOPs with every layer at the highest width.
    pub fn max_bops(&self) -> Result<u64> {
        self.bops(&self.uniform(self.max_bits()))
    }

    /// Number of distinct policies (product of the layers' choice counts).
    pub fn count(&self) -> u128 {
        (0..self.layers.len())
            .map(|i| self.choices(i).len() as u128)
            .product()
    }

    /// HAQ's budget wall: while `widths` costs more than `budget`, lower the layers one
    /// candidate step each, from the last layer backwards (pinned layers and layers already
    /// at the lowest width are skipped). Returns an error only if even the cheapest policy
    /// exceeds the budget (which [`Budget::new`] rules out).
    pub fn enforce_budget(&self, widths: &mut [u8], budget: &Budget) -> Result<()> {
        self.check(widths)?;
        while self.bops(widths)? > budget.bops {
            let mut lowered = false;
            for i in (0..widths.len()).rev() {
                if self.pinned[i].is_some() {
                    continue;
                }
                let pos = self.bits.iter().position(|&b| b == widths[i]);
                if let Some(p) = pos.filter(|&p| p + 1 < self.bits.len()) {
                    widths[i] = self.bits[p + 1];
                    lowered = true;
                    if self.bops(widths)? <= budget.bops {
                        return Ok(());
                    }
                }
            }
            if !lowered {
                return Err(Error::Invalid(format!(
                    "no policy of this space fits a budget of {} BOPs",
                    budget.bops
                )));
            }
        }
        Ok(())
    }
}

/// A budget of bit operations per image.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub bops: u64,
}

impl Budget {
    /// An absolute budget, checked against the space: it must afford the cheapest policy
    /// and must not exceed the all-highest-width cost (a larger budget constrains nothing).
    pub fn new(space: &SearchSpace, bops: u64) -> Result<Self> {
        let (lo, hi) = (space.min_bops()?, space.max_bops()?);
        if bops < lo || bops > hi {
            return Err(Error::Invalid(format!(
                "a budget of {bops} BOPs is outside what this model can use: between {lo} \
                 (every searchable layer at {} bits) and {hi} (every layer at {} bits)",
                space.min_bits(),
                space.max_bits()
            )));
        }
        Ok(Self { bops })
    }

    /// A budget as a fraction of the all-highest-width BOPs (e.g. 0.25), checked as in
    /// [`Budget::new`].
    pub fn fraction(space: &SearchSpace, fraction: f64) -> Result<Self> {
        if !fraction.is_finite() || fraction <= 0.0 || fraction > 1.0 {
            return Err(Error::Invalid(format!(
                "a budget fraction must be in (0, 1] of the {}-bit BOPs, got {fraction}",
                space.max_bits()
            )));
        }
        let bops = (space.max_bops()? as f64 * fraction).floor() as u64;
        Self::new(space, bops)
    }
}
