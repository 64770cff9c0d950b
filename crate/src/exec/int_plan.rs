//! Lowering for the integer path: a model at a bit policy → integer weights and the float
//! factors that requantize between layers.
//!
//! **The integer path is the quantized model's definition** (one arithmetic natively, in
//! wasm, with or without SIMD):
//! - the stem's input (image plus noise) is float, so the stem is a float convolution
//!   (batch-norm folded), accumulated tap by tap without fused multiply-adds in every build;
//! - every later layer reads the **levels** `l = clip(round_ties_even(v / s_a), 0, 2^a − 1)`
//!   of its input (unsigned, ≤ 8 bits) and multiplies them with its integer weights `q`
//!   (the policy's widths, Double Rounding's grid): `acc = Σ l·q` exactly, in i32;
//! - requantization: `v = f32(acc) · m[o] + shift[o]`, with `m[o] = (s_a · s_w[o]) · γ/√(var + ε)`
//!   (two separate roundings, never fused), then the residual, the ReLU, and the next
//!   layer's levels; the head ends in `logits = f32(acc) · (s_a · s_w[o]) + bias[o]`.
//!
//! The fake-quantized float model (candle, and the float path of this executor) computes the
//! same sums of `(l·s_a)·(q·s_w)` in float: it agrees up to float rounding, and where a value
//! lies within that rounding of a half-level, by one level flip.

use super::plan::{fold_batch_norm, values, ConvPlan, Quantizer, FC_LANES};
use crate::error::Result;
use crate::model::{architecture, IntegerWeights, LayerKind, Model, NUM_CLASSES};

/// Output channels per block of an integer convolution (every layer after the stem has a
/// multiple of 16).
pub const INT_BLOCK: usize = 16;
/// Input channels multiplied per step on i16: a pair per i32 lane (`pmaddwd`,
/// `i32x4.dot_i16x8_s`).
pub const PAIR: usize = 2;
/// Input channels multiplied per step on i8 and u8 levels: four per i32 lane
/// (`i32x4.relaxed_dot_i8x16_i7x16_add_s`, `vpdpbusd`).
pub const QUAD: usize = 4;
/// The largest level that fits the 7-bit operand of the relaxed dot product.
pub const NARROW_HI: f32 = 127.0;

/// The integer type of a kernel's levels, and of the weights it multiplies them with: i16
/// levels and weights with pairs of input channels per step; i8 levels and weights with
/// quads, only for plans whose levels all fit 7 bits ([`IntPlan::narrow`]), where the
/// relaxed dot product is exact; or u8 levels (any plan: levels ≤ 255) with i8 weights in
/// quads, the operands of AVX-512 VNNI's `vpdpbusd`.
pub trait Operand: Copy + Default + Send + Sync + 'static {
    /// Input channels per step.
    const STEP: usize;
    /// The weights' type.
    type Weight: Copy + Into<i32> + Send + Sync + 'static;
    fn from_level(level: i16) -> Self;
    fn widen(self) -> i32;
    fn conv_weights(layer: &IntConvPlan) -> &[Self::Weight];
    fn linear_weights(layer: &IntLinearPlan) -> &[Self::Weight];
}

impl Operand for i16 {
    const STEP: usize = PAIR;
    type Weight = i16;
    #[inline(always)]
    fn from_level(level: i16) -> Self {
        level
    }
    #[inline(always)]
    fn widen(self) -> i32 {
        self as i32
    }
    fn conv_weights(layer: &IntConvPlan) -> &[Self] {
        &layer.weights
    }
    fn linear_weights(layer: &IntLinearPlan) -> &[Self] {
        &layer.weights
    }
}

impl Operand for i8 {
    const STEP: usize = QUAD;
    type Weight = i8;
    /// Exact for the levels of a narrow plan (0..=127).
    #[inline(always)]
    fn from_level(level: i16) -> Self {
        level as i8
    }
    #[inline(always)]
    fn widen(self) -> i32 {
        self as i32
    }
    fn conv_weights(layer: &IntConvPlan) -> &[Self] {
        &layer.quads
    }
    fn linear_weights(layer: &IntLinearPlan) -> &[Self] {
        &layer.quads
    }
}

impl Operand for u8 {
    const STEP: usize = QUAD;
    type Weight = i8;
    /// Exact for every level of at most 8 bits (0..=255).
    #[inline(always)]
    fn from_level(level: i16) -> Self {
        level as u8
    }
    #[inline(always)]
    fn widen(self) -> i32 {
        self as i32
    }
    fn conv_weights(layer: &IntConvPlan) -> &[i8] {
        &layer.quads
    }
    fn linear_weights(layer: &IntLinearPlan) -> &[i8] {
        &layer.quads
    }
}

/// One convolution after the stem, on levels.
#[derive(Clone, Debug)]
pub struct IntConvPlan {
    pub cin: usize,
    pub cout: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub in_side: usize,
    pub out_side: usize,
    /// Integer weights as `[cout / 16][ky][kx][cin / 2][16][2]` (i16: the kernels widen
    /// nothing in the inner loop).
    pub weights: Vec<i16>,
    /// The same as `[cout / 16][ky][kx][cin / 4][16][4]` i8 (weights are at most 8 bits).
    pub quads: Vec<i8>,
    /// `(s_a · s_w[o]) · γ/√(var + ε)` per output channel.
    pub multiplier: Vec<f32>,
    /// `β − mean · γ/√(var + ε)` per output channel.
    pub shift: Vec<f32>,
}

/// The head on the levels of the last feature map (NHWC order).
#[derive(Clone, Debug)]
pub struct IntLinearPlan {
    pub inputs: usize,
    /// `[inputs / 2][FC_LANES][2]`; outputs ≥ 10 zero.
    pub weights: Vec<i16>,
    /// The same as `[inputs / 4][FC_LANES][4]` i8.
    pub quads: Vec<i8>,
    pub multiplier: [f32; FC_LANES],
    pub bias: [f32; FC_LANES],
}

/// Everything the integer forward pass reads.
#[derive(Clone, Debug)]
pub struct IntPlan {
    /// The float stem, batch-norm folded (no input quantizer).
    pub stem: ConvPlan,
    /// Convolutions 1..=6 of the model (index `i − 1`).
    pub convs: Vec<IntConvPlan>,
    /// The input quantizer of every layer (index = layer; `levels[0]` is unused).
    pub levels: Vec<Quantizer>,
    pub fc: IntLinearPlan,
    /// Every level fits 7 bits (activations of at most 7 bits): i8 levels are exact.
    pub narrow: bool,
}

impl IntPlan {
    /// The integer plan of `model`, or `None` where the integer path does not apply: a
    /// float model, a layer after the stem without an activation quantizer or above 8 bits,
    /// or weights that no longer equal their integers times their scales (changed since the
    /// policy was applied). Errors only for a malformed model.
    /// `stem` is the float plan's stem (lowered once, for both paths).
    pub fn lower(model: &Model, stem: &ConvPlan) -> Result<Option<Self>> {
        if model.layers != architecture() || model.training_quant.is_some() {
            return Ok(None);
        }
        let n = model.layers.len();
        if model.integer_weights.len() != n || model.input_quant.len() != n {
            return Ok(None);
        }
        // The stem's entry stays unused: its input is the float image.
        let mut levels = vec![
            Quantizer {
                scale: 1.0,
                hi: 0.0
            };
            n
        ];
        for (level, quant) in levels.iter_mut().zip(&model.input_quant).skip(1) {
            match quant {
                Some(q) if q.bits <= 8 => *level = Quantizer::new(q)?,
                _ => return Ok(None),
            }
        }
        let mut ints = Vec::with_capacity(n);
        for i in 1..n {
            match &model.integer_weights[i] {
                Some(iw) if iw.bits <= 8 && matches(iw, &values(&model.weights[i])?) => {
                    ints.push(iw)
                }
                _ => return Ok(None),
            }
        }
        let narrow = levels[1..].iter().all(|q| q.hi <= NARROW_HI);
        let mut convs = Vec::new();
        for i in 1..n - 1 {
            debug_assert_eq!(model.layers[i].kind, LayerKind::Conv);
            convs.push(lower_int_conv(model, i, ints[i - 1], levels[i].scale)?);
        }
        let fc = lower_int_linear(model, n - 1, ints[n - 2], levels[n - 1].scale)?;
        Ok(Some(Self {
            stem: stem.clone(),
            convs,
            levels,
            fc,
            narrow,
        }))
    }
}

/// The requantization factor of one output channel, `(s_a · s_w) · bn_scale` (two separate
/// roundings, in this order; the head's `bn_scale` is 1): the one definition the CPU plan and
/// the GPU's own derivation (`gpu::executor`) both use.
#[inline]
pub fn multiplier(input_scale: f32, weight_scale: f32, bn_scale: f32) -> f32 {
    (input_scale * weight_scale) * bn_scale
}

/// Whether `weights` are exactly `q · scales[o]`, as the policy derived them.
fn matches(iw: &IntegerWeights, weights: &[f32]) -> bool {
    if iw.q.len() != weights.len()
        || iw.scales.is_empty()
        || !weights.len().is_multiple_of(iw.scales.len())
    {
        return false;
    }
    let per = weights.len() / iw.scales.len();
    let (lo, hi) = crate::quant::signed_range(iw.bits.max(1));
    iw.q.iter()
        .zip(weights)
        .enumerate()
        .all(|(j, (&q, &w))| (lo..=hi).contains(&(q as i32)) && q as f32 * iw.scales[j / per] == w)
}

/// Conv weights `[cout][cin][k][k]` interleaved as `[cout / 16][ky][kx][cin / step][16][step]`.
fn interleave_conv<T: From<i8> + Copy + Default>(
    q: &[i8],
    (cout, cin, k): (usize, usize, usize),
    step: usize,
) -> Vec<T> {
    let mut out = vec![T::default(); q.len()];
    for o in 0..cout {
        for ci in 0..cin {
            for ky in 0..k {
                for kx in 0..k {
                    let src = ((o * cin + ci) * k + ky) * k + kx;
                    let tap = (o / INT_BLOCK * k + ky) * k + kx;
                    let dst = ((tap * (cin / step) + ci / step) * INT_BLOCK + o % INT_BLOCK) * step
                        + ci % step;
                    out[dst] = T::from(q[src]);
                }
            }
        }
    }
    out
}

fn lower_int_conv(
    model: &Model,
    i: usize,
    iw: &IntegerWeights,
    input_scale: f32,
) -> Result<IntConvPlan> {
    let spec = &model.layers[i];
    let (cin, cout, k) = (spec.in_channels, spec.out_channels, spec.kernel);
    if !cout.is_multiple_of(INT_BLOCK) || !cin.is_multiple_of(QUAD) {
        return Err(crate::error::Error::Model(format!(
            "layer {}: {cin} → {cout} channels do not fit the integer kernels",
            spec.name
        )));
    }
    let (bn_scale, shift) = fold_batch_norm(model.bn_for(i), cout, &spec.name)?;
    let shape = (cout, cin, k);
    let weights = interleave_conv(&iw.q, shape, PAIR);
    let quads = interleave_conv(&iw.q, shape, QUAD);
    let multiplier = (0..cout)
        .map(|o| multiplier(input_scale, iw.scales[o], bn_scale[o]))
        .collect();
    Ok(IntConvPlan {
        cin,
        cout,
        kernel: k,
        stride: spec.stride,
        padding: spec.padding,
        in_side: spec.in_hw[0],
        out_side: spec.out_hw[0],
        weights,
        quads,
        multiplier,
        shift,
    })
}

fn lower_int_linear(
    model: &Model,
    i: usize,
    iw: &IntegerWeights,
    input_scale: f32,
) -> Result<IntLinearPlan> {
    let inputs = model.layers[i].in_channels;
    let last_conv = &model.layers[i - 2];
    let (channels, side) = (last_conv.out_channels, last_conv.out_hw[0]);
    let b = values(&model.fc_bias)?;
    if b.len() != NUM_CLASSES || channels * side * side != inputs || !inputs.is_multiple_of(QUAD) {
        return Err(crate::error::Error::Model(
            "fc layer of the wrong size".into(),
        ));
    }
    // fc weights `[10][c][h][w]` interleaved as `[inputs / step][FC_LANES][step]`, inputs in
    // NHWC order
    let interleave = |step: usize| {
        let mut out = vec![0i8; inputs * FC_LANES];
        for o in 0..NUM_CLASSES {
            for c in 0..channels {
                for pixel in 0..side * side {
                    let nhwc = pixel * channels + c;
                    out[((nhwc / step) * FC_LANES + o) * step + nhwc % step] =
                        iw.q[o * inputs + c * side * side + pixel];
                }
            }
        }
        out
    };
    let weights = interleave(PAIR).into_iter().map(i16::from).collect();
    let quads = interleave(QUAD);
    let mut multiplier = [0.0; FC_LANES];
    let mut bias = [0.0; FC_LANES];
    for o in 0..NUM_CLASSES {
        multiplier[o] = self::multiplier(input_scale, iw.scales[o], 1.0);
        bias[o] = b[o];
    }
    Ok(IntLinearPlan {
        inputs,
        weights,
        quads,
        multiplier,
        bias,
    })
}
