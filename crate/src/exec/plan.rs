//! Lowering: a candle [`Model`] → plain f32 buffers the kernels read directly.
//!
//! Per convolution: the effective weights (whatever bit policy the model holds) with the
//! following batch-norm's scale folded in, laid out in output-channel blocks
//! `[cout / CB][ky][kx][cin][CB]`, and the batch-norm's shift per output channel. Per layer:
//! the activation quantizer of its input. The linear head's weights are permuted from the
//! model's NCHW flattening to the executor's NHWC one. Lowering reads ~56 k weights, so
//! rebuilding the plan after a policy change is cheap.

use crate::error::{Error, Result};
use crate::model::{architecture, ActQuant, BatchNorm, LayerKind, Model, NUM_CLASSES};
use candle_core::Tensor;

/// Batch-norm ε of the model (evaluation mode: y = (x − mean)/√(var + ε)·γ + β).
const BN_EPS: f32 = 1e-5;
/// Output-channel padding of the linear head: its 10 outputs are computed as 16 lanes.
pub const FC_LANES: usize = 16;

/// 1.5 · 2²³: adding it rounds a float in [0, 2²²] to an integer (ties to even).
const ROUNDER: f32 = 12_582_912.0;

/// The activation fake-quantizer `clip(round_ties_even(x / scale), 0, 2^bits − 1) · scale`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantizer {
    pub scale: f32,
    /// 2^bits − 1, the largest integer level.
    pub hi: f32,
}

impl Quantizer {
    /// The quantizer of `q` (bits 1..=16, scale finite and > 0).
    pub fn new(q: &ActQuant) -> Result<Self> {
        if !((1..=16).contains(&q.bits) && q.scale.is_finite() && q.scale > 0.0) {
            return Err(Error::Model(format!(
                "activation quantizer {q:?} is not usable (bits 1..=16, scale > 0)"
            )));
        }
        Ok(Self {
            scale: q.scale,
            hi: ((1u32 << q.bits) - 1) as f32,
        })
    }

    /// Same arithmetic as the model's quantizer (a division, not a reciprocal multiply), so
    /// equal inputs give equal levels. Clamping before rounding changes nothing (the bounds
    /// are integers); the rounding itself is `(t + 1.5·2²³) − 1.5·2²³`, which IEEE
    /// round-to-nearest-even makes exactly `round_ties_even(t)` for 0 ≤ t ≤ 2²² — and unlike
    /// `round_ties_even`, which baseline x86-64 (no SSE4.1) turns into a libm call per value,
    /// it vectorises everywhere. Measured: 2.5× the certification throughput at w8a8.
    #[inline(always)]
    pub fn apply(&self, v: f32) -> f32 {
        self.level(v) * self.scale
    }

    /// The level of `v`, `clip(round_ties_even(v / scale), 0, hi)`, as a float.
    #[inline(always)]
    pub fn level(&self, v: f32) -> f32 {
        let t = (v / self.scale).clamp(0.0, self.hi);
        (t + ROUNDER) - ROUNDER
    }

    /// The same level as an integer (what the integer kernels multiply): `t + 1.5·2²³` holds
    /// it in its low mantissa bits (the constant's low 16 bits are zero), so reading them
    /// out is exact and vectorises, unlike a saturating float-to-integer cast.
    #[inline(always)]
    pub fn level_i16(&self, v: f32) -> i16 {
        let t = (v / self.scale).clamp(0.0, self.hi);
        (t + ROUNDER).to_bits() as u16 as i16
    }
}

/// `max(x, 0)` as a compare and select: one `f32x4.pmax` in wasm SIMD128 and one `maxps` on
/// x86, where `f32::max` (IEEE maxNum: NaN-aware) costs a sequence of instructions in
/// SIMD128 — measured 1.4× the browser's throughput on every path. It differs from
/// `f32::max` only in the sign of a zero (−0 gives +0), which no level or count sees.
#[inline(always)]
pub fn relu(x: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rounding trick equals the reference formula, ties and clamping included.
    #[test]
    fn quantizer_rounds_half_to_even_like_the_reference() {
        for bits in [2u8, 4, 8, 16] {
            let q = Quantizer::new(&ActQuant { scale: 0.5, bits }).unwrap();
            let hi = ((1u32 << bits) - 1) as f32;
            // every half-level from below the range to above it, and values near them
            for k in -8..(2 * hi as i32 + 8) {
                let t = k as f32 * 0.5;
                for v in [t, t.next_up(), t.next_down()].map(|t| t * 0.5) {
                    let want = (v / 0.5f32).round_ties_even().clamp(0.0, hi) * 0.5;
                    // (equal as values: the reference may give −0.0 where this gives +0.0)
                    assert_eq!(q.apply(v), want, "{bits} bits, {v}");
                }
            }
        }
        let q = Quantizer::new(&ActQuant {
            scale: 0.1,
            bits: 8,
        })
        .unwrap();
        assert_eq!(q.apply(f32::NEG_INFINITY), 0.0);
        assert_eq!(q.apply(f32::INFINITY), 255.0 * 0.1);
        assert_eq!(q.apply(-0.0), 0.0);
    }

    /// The integer level read out of the rounder's bits equals the rounded quotient.
    #[test]
    fn integer_levels_equal_the_rounded_quotient() {
        for bits in [2u8, 5, 8] {
            let q = Quantizer::new(&ActQuant { scale: 0.37, bits }).unwrap();
            let hi = ((1u32 << bits) - 1) as f32;
            for k in -40..(4 * hi as i32 + 40) {
                for v in [
                    k as f32 * 0.37 / 4.0,
                    f32::INFINITY,
                    f32::NEG_INFINITY,
                    -0.0,
                ] {
                    let want = (v / 0.37f32).round_ties_even().clamp(0.0, hi);
                    assert_eq!(q.level_i16(v) as f32, want, "{bits} bits, {v}");
                    assert_eq!(q.level(v), want, "{bits} bits, {v}");
                }
            }
        }
    }
}

/// One convolution with its batch-norm folded in.
#[derive(Clone, Debug)]
pub struct ConvPlan {
    pub cin: usize,
    pub cout: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub in_side: usize,
    pub out_side: usize,
    /// Output channels per block of `weights` (8 or 16).
    pub block: usize,
    /// `w · γ/√(var + ε)` as `[cout / block][ky][kx][cin][block]`.
    pub weights: Vec<f32>,
    /// `β − mean · γ/√(var + ε)` per output channel.
    pub shift: Vec<f32>,
    /// Quantizer of this layer's input (`None`: float).
    pub input_quant: Option<Quantizer>,
}

/// The linear head over the NHWC-flattened last feature map.
#[derive(Clone, Debug)]
pub struct LinearPlan {
    pub inputs: usize,
    /// `[inputs][FC_LANES]`, input index in NHWC order, outputs ≥ 10 zero.
    pub weights: Vec<f32>,
    pub bias: [f32; FC_LANES],
    pub input_quant: Option<Quantizer>,
}

/// Everything the executor needs from a `bsnet8` model, in forward order.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The seven convolutions (stem, block1 conv1/conv2/shortcut, block2 conv1/conv2/shortcut).
    pub convs: Vec<ConvPlan>,
    pub fc: LinearPlan,
}

pub(super) fn values(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

impl Plan {
    /// Lowers `model` (its current weights, batch-norms and activation quantizers).
    /// Errors if the model is not `bsnet8` or quantizes the stem's input.
    pub fn lower(model: &Model) -> Result<Self> {
        if model.layers != architecture() || model.weights.len() != model.layers.len() {
            return Err(Error::Model(
                "the fast executor runs the bsnet8 architecture only; this model's layers differ"
                    .into(),
            ));
        }
        if model.training_quant.is_some() {
            return Err(Error::Model(
                "the fast executor runs trained models: this one is in quantization-aware training"
                    .into(),
            ));
        }
        if model.input_quant.len() != model.layers.len() {
            return Err(Error::Model(format!(
                "{} activation quantizers for {} layers",
                model.input_quant.len(),
                model.layers.len()
            )));
        }
        if model.input_quant[0].is_some() {
            return Err(Error::Model(
                "the stem's input (image plus noise) is never quantized, but this model sets a quantizer on it"
                    .into(),
            ));
        }
        let quant = |i: usize| {
            model.input_quant[i]
                .as_ref()
                .map(Quantizer::new)
                .transpose()
        };
        let mut convs = Vec::new();
        for (i, spec) in model.layers.iter().enumerate() {
            if spec.kind == LayerKind::Conv {
                convs.push(lower_conv(model, i, quant(i)?)?);
            }
        }
        let last = model.layers.len() - 1;
        let fc = lower_linear(model, last, quant(last)?)?;
        Ok(Self { convs, fc })
    }
}

/// The evaluation-mode batch-norm as a per-channel affine map y = scale·x + shift:
/// scale = γ/√(var + ε), shift = β − mean·scale (`channels` values each). Folding `scale`
/// into the preceding convolution's weights is what every executor does (the GPU one too).
pub fn fold_batch_norm(
    bn: &BatchNorm,
    channels: usize,
    layer: &str,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let (gamma, beta) = (values(&bn.gamma)?, values(&bn.beta)?);
    let mean = values(&bn.running_mean.borrow())?;
    let var = values(&bn.running_var.borrow())?;
    if [gamma.len(), beta.len(), mean.len(), var.len()] != [channels; 4] {
        return Err(Error::Model(format!(
            "layer {layer}: batch-norm of the wrong size"
        )));
    }
    let scale: Vec<f32> = (0..channels)
        .map(|o| gamma[o] / (var[o] + BN_EPS).sqrt())
        .collect();
    let shift = (0..channels)
        .map(|o| beta[o] - mean[o] * scale[o])
        .collect();
    Ok((scale, shift))
}

fn lower_conv(model: &Model, i: usize, input_quant: Option<Quantizer>) -> Result<ConvPlan> {
    let spec = &model.layers[i];
    let (cin, cout, k) = (spec.in_channels, spec.out_channels, spec.kernel);
    let w = values(&model.weights[i])?; // [cout][cin][k][k]
    if w.len() != spec.weights() {
        return Err(Error::Model(format!(
            "layer {}: weights of the wrong size",
            spec.name
        )));
    }
    let (scale, shift) = fold_batch_norm(model.bn_for(i), cout, &spec.name)?;
    let block = if cout % 16 == 0 { 16 } else { 8 };
    let mut weights = vec![0.0; w.len()];
    for (o, scale) in scale.iter().enumerate() {
        for ci in 0..cin {
            for ky in 0..k {
                for kx in 0..k {
                    let src = ((o * cin + ci) * k + ky) * k + kx;
                    let dst = (((o / block * k + ky) * k + kx) * cin + ci) * block + o % block;
                    weights[dst] = w[src] * scale;
                }
            }
        }
    }
    Ok(ConvPlan {
        cin,
        cout,
        kernel: k,
        stride: spec.stride,
        padding: spec.padding,
        in_side: spec.in_hw[0],
        out_side: spec.out_hw[0],
        block,
        weights,
        shift,
        input_quant,
    })
}

fn lower_linear(model: &Model, i: usize, input_quant: Option<Quantizer>) -> Result<LinearPlan> {
    let inputs = model.layers[i].in_channels;
    let w = values(&model.weights[i])?; // [10][inputs], inputs in NCHW order c·49 + y·7 + x
    let b = values(&model.fc_bias)?;
    // The last feature map: channels and side of the convolution before the head.
    let last_conv = &model.layers[i - 2];
    let (channels, side) = (last_conv.out_channels, last_conv.out_hw[0]);
    if b.len() != NUM_CLASSES || channels * side * side != inputs {
        return Err(Error::Model("fc layer of the wrong size".into()));
    }
    let mut weights = vec![0.0; inputs * FC_LANES];
    for o in 0..NUM_CLASSES {
        for c in 0..channels {
            for pixel in 0..side * side {
                let nhwc = pixel * channels + c;
                weights[nhwc * FC_LANES + o] = w[o * inputs + c * side * side + pixel];
            }
        }
    }
    let mut bias = [0.0; FC_LANES];
    bias[..NUM_CLASSES].copy_from_slice(&b);
    Ok(LinearPlan {
        inputs,
        weights,
        bias,
        input_quant,
    })
}
