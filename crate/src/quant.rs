//! Quantization (Double Rounding, Huang et al. 2025): symmetric integer weights stored once at
//! the highest bit-width h = 8, every lower bit-width l derived from them by a rounding
//! bit-shift, and unsigned activation quantization after ReLU.
//!
//! ```text
//! Wq_h = clip(round(W / s_h), -2^(h-1), 2^(h-1)-1)            stored: int8 + s_h
//! Wq_l = clip(round(Wq_h / 2^(h-l)), -2^(l-1), 2^(l-1)-1)      the second rounding
//! Ŵ_l  = Wq_l · s_h · 2^(h-l)                                   so s_l = s_h · 2^(h-l)
//! ```
//!
//! **Rounding convention (the whole project, CPU and WGSL alike):**
//! - float → integer (`round(W / s)`, `round(X / s)`): round half to even
//!   (`f32::round_ties_even`, identical to WGSL's `round()`);
//! - integer → fewer bits (the second rounding): `(q + 2^(Δ-1)) >> Δ` with an arithmetic
//!   shift, i.e. round half towards +∞, then clamp. Integer-only, so the GPU reproduces it
//!   bit for bit (WGSL's `>>` on `i32` is arithmetic too).

use crate::error::{Error, Result};
use crate::model::{ActQuant, IntegerWeights, LayerSpec, Model};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// Highest bit-width h: the stored integer model.
pub const MAX_BITS: u8 = 8;
/// Lowest supported bit-width.
pub const MIN_BITS: u8 = 2;

/// Checks that `bits` is in `MIN_BITS..=MAX_BITS`.
pub fn check_bits(bits: u8) -> Result<()> {
    if !(MIN_BITS..=MAX_BITS).contains(&bits) {
        return Err(Error::Invalid(format!(
            "bit-width {bits} is outside {MIN_BITS}..={MAX_BITS}"
        )));
    }
    Ok(())
}

/// The symmetric signed range `[-2^(b-1), 2^(b-1) - 1]`.
pub fn signed_range(bits: u8) -> (i32, i32) {
    let half = 1i32 << (bits - 1);
    (-half, half - 1)
}

/// The second rounding of Double Rounding: an `h`-bit integer to `l` bits by a rounding
/// arithmetic shift (ties towards +∞), clamped to the `l`-bit range. `l ≤ h ≤ 8`.
pub fn double_round(q: i32, h: u8, l: u8) -> i32 {
    debug_assert!(l <= h && h <= MAX_BITS && l >= 1);
    let delta = (h - l) as u32;
    let shifted = if delta == 0 {
        q
    } else {
        (q + (1 << (delta - 1))) >> delta
    };
    let (lo, hi) = signed_range(l);
    shifted.clamp(lo, hi)
}

/// First rounding: `clip(round_half_even(w / s), range of `bits`)`.
pub fn quantize_symmetric(w: f32, scale: f32, bits: u8) -> i32 {
    let (lo, hi) = signed_range(bits);
    ((w / scale).round_ties_even() as i32).clamp(lo, hi)
}

/// Unsigned activation quantization after ReLU: `clip(round_half_even(x / s), 0, 2^b - 1) · s`.
pub fn fake_quantize_unsigned(x: f32, scale: f32, bits: u8) -> f32 {
    let hi = ((1u32 << bits) - 1) as f32;
    (x / scale).round_ties_even().clamp(0.0, hi) * scale
}

/// One layer's weights as Double Rounding stores them: int8 values and one f32 scale per
/// output channel (the scale of the 8-bit grid, s_h).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantizedWeights {
    pub shape: Vec<usize>,
    pub q: Vec<i8>,
    pub scales: Vec<f32>,
}

impl QuantizedWeights {
    /// Post-training quantization of float weights `[out, ...]` to the int8 master with
    /// max-abs scales per output channel.
    pub fn from_float(weights: &[f32], shape: &[usize]) -> Result<Self> {
        let out = *shape
            .first()
            .ok_or_else(|| Error::Invalid("empty weight shape".into()))?;
        if out == 0 || weights.len() != shape.iter().product::<usize>() {
            return Err(Error::Invalid(format!(
                "{} weights do not fill shape {shape:?}",
                weights.len()
            )));
        }
        if let Some(w) = weights.iter().find(|w| !w.is_finite()) {
            return Err(Error::Invalid(format!("weight {w} is not finite")));
        }
        let per = weights.len() / out;
        let (_, hi) = signed_range(MAX_BITS);
        let mut q = Vec::with_capacity(weights.len());
        let mut scales = Vec::with_capacity(out);
        for row in weights.chunks(per) {
            let max = row.iter().fold(0.0f32, |m, w| m.max(w.abs()));
            let s = if max > 0.0 { max / hi as f32 } else { 1.0 };
            scales.push(s);
            q.extend(
                row.iter()
                    .map(|&w| quantize_symmetric(w, s, MAX_BITS) as i8),
            );
        }
        Ok(Self {
            shape: shape.to_vec(),
            q,
            scales,
        })
    }

    fn per_channel(&self) -> usize {
        self.q.len() / self.scales.len()
    }

    /// The integer weights at `bits`, derived from the int8 master by [`double_round`].
    pub fn integers_at(&self, bits: u8) -> Result<Vec<i8>> {
        check_bits(bits)?;
        Ok(self
            .q
            .iter()
            .map(|&v| double_round(v as i32, MAX_BITS, bits) as i8)
            .collect())
    }

    /// Scale of the `bits` grid per output channel: s_l = s_h · 2^(h-l).
    pub fn scales_at(&self, bits: u8) -> Result<Vec<f32>> {
        check_bits(bits)?;
        let factor = (1u32 << (MAX_BITS - bits)) as f32;
        Ok(self.scales.iter().map(|s| s * factor).collect())
    }

    /// How many weights take each integer value at `bits`: index `v + 2^(bits−1)` counts the
    /// value v ∈ [−2^(bits−1), 2^(bits−1) − 1].
    pub fn histogram(&self, bits: u8) -> Result<Vec<u32>> {
        let mut counts = vec![0u32; 1 << bits];
        let offset = 1i32 << (bits - 1);
        for v in self.integers_at(bits)? {
            counts[(v as i32 + offset) as usize] += 1;
        }
        Ok(counts)
    }

    /// Dequantized weights Ŵ_l = Wq_l · s_l, in the original layout.
    pub fn dequantize(&self, bits: u8) -> Result<Vec<f32>> {
        let ints = self.integers_at(bits)?;
        let scales = self.scales_at(bits)?;
        let per = self.per_channel();
        Ok(ints
            .iter()
            .enumerate()
            .map(|(i, &v)| v as f32 * scales[i / per])
            .collect())
    }
}

/// Bits per quantizable layer, in forward order (weights and activations).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub weight_bits: Vec<u8>,
    pub act_bits: Vec<u8>,
}

impl Policy {
    /// Every layer at `w` weight bits and `a` activation bits.
    pub fn uniform(layers: usize, w: u8, a: u8) -> Result<Self> {
        let p = Self {
            weight_bits: vec![w; layers],
            act_bits: vec![a; layers],
        };
        p.validate(layers)?;
        Ok(p)
    }

    /// Checks the length against the model's layer count and every width against 2..=8.
    pub fn validate(&self, layers: usize) -> Result<()> {
        for (what, bits) in [
            ("weight", &self.weight_bits),
            ("activation", &self.act_bits),
        ] {
            if bits.len() != layers {
                return Err(Error::Invalid(format!(
                    "the {what} policy lists {} bit-widths, the model has {layers} quantizable layers",
                    bits.len()
                )));
            }
            for (i, &b) in bits.iter().enumerate() {
                check_bits(b).map_err(|e| Error::Invalid(format!("layer {i} {what}: {e}")))?;
            }
        }
        Ok(())
    }
}

/// Bits a float weight or activation counts as in BOPs and size.
pub const FLOAT_BITS: u8 = 32;

/// What one layer costs at a policy. Serialised in camelCase: the browser shows it as is.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerCost {
    pub macs: u64,
    pub weights: usize,
    pub weight_bits: u8,
    /// Width of the input the layer really multiplies: the policy's activation bits, except
    /// for the first layer, whose input (image + noise) is never quantized: [`FLOAT_BITS`].
    pub act_bits: u8,
    /// MACs × b_w × b_a.
    pub bops: u64,
    /// weights × b_w / 8.
    pub size_bytes: f64,
}

/// Per-layer cost at `policy`, or of the float model (every width [`FLOAT_BITS`]) for `None`.
///
/// Counts what runs (DESIGN §3, cost accounting): BOPs = MACs × b_w × b_a with b_a the width
/// of the input the layer multiplies. The first layer's input, the image plus Gaussian noise,
/// stays float in training, in both executors and in the browser (`act_bits[0]` is validated
/// but never applied), so it counts [`FLOAT_BITS`] = 32 bits whatever `act_bits[0]` says.
pub fn layer_costs(layers: &[LayerSpec], policy: Option<&Policy>) -> Result<Vec<LayerCost>> {
    let float = Policy {
        weight_bits: vec![FLOAT_BITS; layers.len()],
        act_bits: vec![FLOAT_BITS; layers.len()],
    };
    let policy = match policy {
        Some(p) => {
            p.validate(layers.len())?;
            p
        }
        None => &float,
    };
    Ok(layers
        .iter()
        .zip(policy.weight_bits.iter().zip(&policy.act_bits))
        .enumerate()
        .map(|(i, (l, (&w, &a)))| {
            let a = if i == 0 { FLOAT_BITS } else { a };
            LayerCost {
                macs: l.macs(),
                weights: l.weights(),
                weight_bits: w,
                act_bits: a,
                bops: l.macs() * w as u64 * a as u64,
                size_bytes: l.weights() as f64 * w as f64 / 8.0,
            }
        })
        .collect())
}

/// Bit operations per image: Σ MACs × b_w × b_a, the first layer's input counted as float
/// (see [`layer_costs`]).
pub fn bops(layers: &[LayerSpec], policy: &Policy) -> Result<u64> {
    Ok(layer_costs(layers, Some(policy))?
        .iter()
        .map(|c| c.bops)
        .sum())
}

/// Model size in bytes of the quantized weights: Σ params × b_w / 8.
pub fn size_bytes(layers: &[LayerSpec], policy: &Policy) -> Result<f64> {
    Ok(layer_costs(layers, Some(policy))?
        .iter()
        .map(|c| c.size_bytes)
        .sum())
}

/// How a layer's input (activation) quantizer finds its scale at a bit-width.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ActScales {
    /// Post-training: the largest input seen on calibration images, s_b = max / (2^b − 1).
    Calibrated { max: f32 },
    /// Learned by multi-bit LSQ, one scale per trained bit-width (`bits[k]` ↔ `scales[k]`).
    Learned { bits: Vec<u8>, scales: Vec<f32> },
}

impl ActScales {
    /// The scale at `bits`. A width that was not trained borrows the clipping range of the
    /// nearest trained one (ties: the higher): s_b = s_t · (2^t − 1) / (2^b − 1).
    pub fn scale_at(&self, bits: u8) -> f32 {
        let levels = |b: u8| ((1u32 << b) - 1) as f32;
        match self {
            ActScales::Calibrated { max } => max.max(f32::MIN_POSITIVE) / levels(bits),
            ActScales::Learned {
                bits: trained,
                scales,
            } => {
                let k = (0..trained.len())
                    .min_by_key(|&k| {
                        let t = trained[k];
                        ((t as i32 - bits as i32).abs(), std::cmp::Reverse(t))
                    })
                    .expect("at least one trained bit-width");
                if trained[k] == bits {
                    // Exactly the learned scale: s·L/L need not round back to s in f32.
                    scales[k]
                } else {
                    scales[k] * levels(trained[k]) / levels(bits)
                }
            }
        }
    }
}

/// A model made switchable between bit policies at run time (Double Rounding's promise):
/// the int8 master of every layer's weights with its per-channel scales s_8, and every
/// layer's input quantizer. Applying a policy derives each layer's weights from its master by
/// the rounding shift and picks the BN set trained nearest to the layer's weight bits — no
/// float copy is consulted.
pub struct Switchable {
    pub masters: Vec<QuantizedWeights>,
    pub act_scales: Vec<ActScales>,
}

impl Switchable {
    /// Post-training quantization: `model`'s float weights to int8 masters (max-abs scales),
    /// activation ranges calibrated on `calibration` (inputs `[B, 1, 28, 28]`, e.g. noisy
    /// training images).
    pub fn from_float(model: &Model, calibration: &Tensor) -> Result<Self> {
        let act_scales = model
            .input_maxima(calibration)?
            .into_iter()
            .map(|max| ActScales::Calibrated { max })
            .collect();
        let masters = model
            .weights
            .iter()
            .map(|w| QuantizedWeights::from_float(&w.flatten_all()?.to_vec1::<f32>()?, w.dims()))
            .collect::<Result<_>>()?;
        Ok(Self {
            masters,
            act_scales,
        })
    }

    /// Sets `model`'s weights to the double-rounded masters at the policy's weight bits, its
    /// activation quantizers to the policy's activation bits and its BN sets to the ones
    /// trained nearest to each layer's weight bits. The stem's input (image + noise) stays
    /// float, so `act_bits[0]` is validated but not applied.
    pub fn apply(&self, model: &mut Model, policy: &Policy) -> Result<()> {
        policy.validate(model.layers.len())?;
        if model.meta.supernet {
            let trained = &model.meta.bits;
            let outside = policy
                .weight_bits
                .iter()
                .chain(&policy.act_bits[1..])
                .find(|b| !trained.contains(b));
            if let Some(b) = outside {
                return Err(Error::Invalid(format!(
                    "this supernet was trained at widths {trained:?} only; {b} bits is not one of them"
                )));
            }
        }
        for (i, (master, act)) in self.masters.iter().zip(&self.act_scales).enumerate() {
            let device = model.weights[i].device().clone();
            let bits = policy.weight_bits[i];
            let weights = master.dequantize(bits)?;
            model.weights[i] = Tensor::from_vec(weights, master.shape.clone(), &device)?;
            model.integer_weights[i] = Some(IntegerWeights {
                bits,
                q: master.integers_at(bits)?,
                scales: master.scales_at(bits)?,
            });
            let bits = policy.act_bits[i];
            model.input_quant[i] = (i > 0).then(|| ActQuant {
                scale: act.scale_at(bits),
                bits,
            });
            model.bn_active[i] = model.bn_set_for_bits(policy.weight_bits[i]);
        }
        Ok(())
    }
}

/// The calibration inputs: every image of `images` plus N(0, σ²) noise from seed 0 (the model
/// is calibrated on what it will see under smoothing). The CLI and the browser use the same
/// first training images, so they arrive at the same activation scales.
pub fn calibration_batch(images: &crate::data::Dataset, sigma: f32) -> Result<Tensor> {
    if images.is_empty() {
        return Err(Error::Invalid("no calibration images".into()));
    }
    let clean = images.batch(
        &(0..images.len()).collect::<Vec<_>>(),
        &candle_core::Device::Cpu,
    )?;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
    crate::noise::add_gaussian(&clean, sigma, &mut rng)
}

/// Post-training quantization of a float model to a mixed-precision `policy` (the baseline
/// Double Rounding is compared against): [`Switchable::from_float`] then
/// [`Switchable::apply`].
pub fn apply_ptq(model: &mut Model, policy: &Policy, calibration: &Tensor) -> Result<()> {
    policy.validate(model.layers.len())?;
    Switchable::from_float(model, calibration)?.apply(model, policy)
}

/// Parses a comma-separated list of bit-widths (`8,6,4,...`), each in 2..=8.
pub fn parse_bits_list(text: &str) -> Result<Vec<u8>> {
    text.split(',')
        .map(|t| {
            let b: u8 = t
                .trim()
                .parse()
                .map_err(|_| Error::Invalid(format!("`{t}` is not a bit-width")))?;
            check_bits(b)?;
            Ok(b)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The second rounding computed independently, in floating point: floor(q / 2^Δ + 1/2),
    /// then clamp.
    fn reference(q: i32, l: u8) -> i32 {
        let delta = (MAX_BITS - l) as i32;
        let v = (q as f64 / 2f64.powi(delta) + 0.5).floor() as i32;
        let (lo, hi) = signed_range(l);
        v.clamp(lo, hi)
    }

    #[test]
    fn double_round_equals_the_float_formula_for_every_int8_value_and_every_width() {
        for l in 1..=MAX_BITS {
            for q in -128..=127 {
                assert_eq!(double_round(q, MAX_BITS, l), reference(q, l), "q={q} l={l}");
            }
        }
    }

    #[test]
    fn double_round_clamps_at_both_ends_and_rounds_ties_up() {
        assert_eq!(double_round(127, 8, 2), 1); // 127/64 ≈ 1.98 → 2 → clamped to 1
        assert_eq!(double_round(-128, 8, 2), -2);
        assert_eq!(double_round(127, 8, 7), 63); // 63.5 → 64 → clamped to 63
        assert_eq!(double_round(-128, 8, 4), -8);
        assert_eq!(double_round(8, 8, 4), 1); // 8/16 = 0.5 → 1 (tie towards +∞)
        assert_eq!(double_round(-8, 8, 4), 0); // -0.5 → 0 (tie towards +∞)
        assert_eq!(double_round(-9, 8, 4), -1);
        assert_eq!(double_round(77, 8, 8), 77);
    }

    #[test]
    fn scales_double_per_dropped_bit_and_dequantization_matches_the_formula() {
        let w = [0.5f32, -0.25, 0.1, 0.0, -1.0, 0.3];
        let qw = QuantizedWeights::from_float(&w, &[2, 3]).unwrap();
        assert_eq!(qw.q, vec![127, -64, 25, 0, -127, 38]);
        for l in MIN_BITS..=MAX_BITS {
            let s = qw.scales_at(l).unwrap();
            for (c, &sl) in s.iter().enumerate() {
                assert_eq!(sl, qw.scales[c] * 2f32.powi((8 - l) as i32));
            }
            let deq = qw.dequantize(l).unwrap();
            let ints = qw.integers_at(l).unwrap();
            for i in 0..6 {
                assert_eq!(deq[i], ints[i] as f32 * s[i / 3]);
            }
        }
        // 8-bit dequantization is within half a step of the float weights
        let deq8 = qw.dequantize(8).unwrap();
        for i in 0..6 {
            assert!((deq8[i] - w[i]).abs() <= 0.5 * qw.scales[i / 3] + 1e-7);
        }
    }

    #[test]
    fn bits_outside_two_to_eight_and_bad_policies_are_rejected_with_messages() {
        let qw = QuantizedWeights::from_float(&[1.0, 2.0], &[1, 2]).unwrap();
        assert!(qw
            .integers_at(1)
            .unwrap_err()
            .to_string()
            .contains("outside 2..=8"));
        assert!(qw.dequantize(9).is_err());
        let layers = crate::model::architecture();
        let short = Policy {
            weight_bits: vec![8; 3],
            act_bits: vec![8; 3],
        };
        assert!(bops(&layers, &short)
            .unwrap_err()
            .to_string()
            .contains("3 bit-widths"));
        let mut p = Policy::uniform(layers.len(), 8, 8).unwrap();
        p.act_bits[2] = 0;
        assert!(size_bytes(&layers, &p)
            .unwrap_err()
            .to_string()
            .contains("layer 2 activation"));
        assert!(QuantizedWeights::from_float(&[f32::NAN], &[1, 1]).is_err());
        assert!(QuantizedWeights::from_float(&[1.0], &[1, 2]).is_err());
    }

    /// MACs per image of `bsnet8`, by hand from the architecture in `model.rs`
    /// (out · in · k² · output pixels):
    /// stem 8·1·9·28² = 56,448; block1.conv1 16·8·9·14² = 225,792; block1.conv2
    /// 16·16·9·14² = 451,584; block1.shortcut 16·8·1·14² = 25,088; block2.conv1 48·16·9·7² =
    /// 338,688; block2.conv2 48·48·9·7² = 1,016,064; block2.shortcut 48·16·1·7² = 37,632;
    /// fc 10·2352 = 23,520. Total 2,174,816; without the stem 2,118,368.
    const STEM_MACS: u64 = 56_448;
    const REST_MACS: u64 = 2_118_368;

    #[test]
    fn bops_count_the_stem_input_as_float_and_size_follows_params() {
        let layers = crate::model::architecture();
        assert_eq!(layers[0].macs(), STEM_MACS);
        assert_eq!(layers.iter().map(LayerSpec::macs).sum::<u64>(), 2_174_816);
        let weights: usize = layers.iter().map(LayerSpec::weights).sum();
        // wBaB: the stem multiplies B-bit weights by the 32-bit float image + noise, every
        // other layer B-bit weights by B-bit activations
        // w8a8: 56,448·8·32 + 2,118,368·64 = 14,450,688 + 135,575,552 = 150,026,240
        // w4a4: 56,448·4·32 + 2,118,368·16 =  7,225,344 +  33,893,888 =  41,119,232
        // w2a2: 56,448·2·32 + 2,118,368·4  =  3,612,672 +   8,473,472 =  12,086,144
        for (bits, total) in [(8, 150_026_240), (4, 41_119_232), (2, 12_086_144)] {
            let p = Policy::uniform(layers.len(), bits, bits).unwrap();
            assert_eq!(bops(&layers, &p).unwrap(), total, "w{bits}a{bits}");
            assert_eq!(
                total,
                STEM_MACS * bits as u64 * 32 + REST_MACS * (bits as u64).pow(2)
            );
        }
        let p8 = Policy::uniform(layers.len(), 8, 8).unwrap();
        let p4 = Policy::uniform(layers.len(), 4, 4).unwrap();
        assert_eq!(size_bytes(&layers, &p8).unwrap(), weights as f64);
        assert_eq!(size_bytes(&layers, &p4).unwrap(), weights as f64 / 2.0);
        // the float model: 32 × 32 everywhere, 2,174,816 · 1024 = 2,227,011,584
        let float = layer_costs(&layers, None).unwrap();
        assert_eq!(float.iter().map(|c| c.bops).sum::<u64>(), 2_227_011_584);
        assert_eq!(
            float.iter().map(|c| c.size_bytes).sum::<f64>(),
            4.0 * weights as f64
        );
    }

    #[test]
    fn the_stems_activation_bits_do_not_change_its_cost() {
        let layers = crate::model::architecture();
        let w2a2 = Policy::uniform(layers.len(), 2, 2).unwrap();
        let mut stem_a8 = w2a2.clone();
        stem_a8.act_bits[0] = 8;
        assert_eq!(bops(&layers, &stem_a8).unwrap(), 12_086_144);
        assert_eq!(bops(&layers, &w2a2).unwrap(), 12_086_144);
        let costs = layer_costs(&layers, Some(&stem_a8)).unwrap();
        assert_eq!(costs[0].act_bits, FLOAT_BITS);
        assert_eq!(costs[0].bops, STEM_MACS * 2 * 32);
        // its weight bits do: 56,448 · (8 − 2) · 32 = 10,838,016 more at w8 in the stem
        let mut stem_w8 = w2a2.clone();
        stem_w8.weight_bits[0] = 8;
        assert_eq!(bops(&layers, &stem_w8).unwrap(), 12_086_144 + 10_838_016);
        // a later layer's activation bits count: block1.conv1 at a8, 225,792 · 2 · (8 − 2)
        let mut conv1_a8 = w2a2;
        conv1_a8.act_bits[1] = 8;
        assert_eq!(bops(&layers, &conv1_a8).unwrap(), 12_086_144 + 2_709_504);
    }

    #[test]
    fn unsigned_activation_quantization_clips_to_the_grid() {
        assert_eq!(fake_quantize_unsigned(-1.0, 0.1, 4), 0.0);
        assert_eq!(fake_quantize_unsigned(100.0, 0.1, 4), 15.0 * 0.1);
        assert!((fake_quantize_unsigned(0.26, 0.1, 4) - 0.3).abs() < 1e-6);
        assert_eq!(fake_quantize_unsigned(0.25, 0.1, 4), 0.2); // 2.5 → 2 (half to even)
    }

    #[test]
    fn ptq_at_eight_bits_keeps_predictions_and_two_bits_changes_them() {
        use crate::model::{Model, ModelMeta};
        use candle_core::Device;
        let dev = Device::Cpu;
        let x = Tensor::rand(0f32, 1f32, (16, 1, 28, 28), &dev).unwrap();
        let float = Model::init(ModelMeta::new("mnist", 0.25), 3, &dev).unwrap();
        let reference = float.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        let quantized = |bits: u8| {
            let mut m = Model::init(ModelMeta::new("mnist", 0.25), 3, &dev).unwrap();
            apply_ptq(&mut m, &Policy::uniform(8, bits, bits).unwrap(), &x).unwrap();
            assert!(m.input_quant[0].is_none() && m.input_quant[1].is_some());
            m.forward(&x).unwrap().to_vec2::<f32>().unwrap()
        };
        let err = |y: &Vec<Vec<f32>>| {
            y.iter()
                .flatten()
                .zip(reference.iter().flatten())
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max)
        };
        let spread = reference.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
        assert!(
            err(&quantized(8)) < 0.05 * spread,
            "8-bit error {} vs logits up to {spread}",
            err(&quantized(8))
        );
        assert!(err(&quantized(2)) > err(&quantized(8)));
    }

    #[test]
    fn histograms_count_every_weight_once_at_every_width() {
        let w: Vec<f32> = (0..96)
            .map(|i| ((i * 37 % 96) as f32 - 48.0) / 50.0)
            .collect();
        let qw = QuantizedWeights::from_float(&w, &[4, 24]).unwrap();
        for bits in MIN_BITS..=MAX_BITS {
            let h = qw.histogram(bits).unwrap();
            assert_eq!(h.len(), 1 << bits);
            assert_eq!(h.iter().sum::<u32>(), 96);
        }
        // at 2 bits the values -2..=1 are the only ones left
        assert_eq!(qw.histogram(2).unwrap().len(), 4);
        assert!(qw.histogram(9).is_err());
    }

    #[test]
    fn switching_policies_is_reversible_and_matches_post_training_quantization() {
        use crate::model::{Model, ModelMeta};
        use candle_core::Device;
        let dev = Device::Cpu;
        let x = Tensor::rand(0f32, 1f32, (8, 1, 28, 28), &dev).unwrap();
        let mut m = Model::init(ModelMeta::new("mnist", 0.25), 5, &dev).unwrap();
        let switchable = Switchable::from_float(&m, &x).unwrap();
        let p4 = Policy::uniform(8, 4, 4).unwrap();
        let p8 = Policy::uniform(8, 8, 8).unwrap();
        switchable.apply(&mut m, &p8).unwrap();
        let at8 = m.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        switchable.apply(&mut m, &p4).unwrap();
        let at4 = m.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        switchable.apply(&mut m, &p8).unwrap();
        assert_eq!(m.forward(&x).unwrap().to_vec2::<f32>().unwrap(), at8);
        let mut ptq = Model::init(ModelMeta::new("mnist", 0.25), 5, &dev).unwrap();
        apply_ptq(&mut ptq, &p4, &x).unwrap();
        assert_eq!(ptq.forward(&x).unwrap().to_vec2::<f32>().unwrap(), at4);
        assert!(switchable
            .apply(&mut m, &Policy::uniform(3, 4, 4).unwrap())
            .is_err());
    }

    #[test]
    fn ptq_weights_and_activation_scales_follow_the_formulas_written_out() {
        // apply_ptq at a mixed policy against DESIGN §3 computed here in plain loops:
        // s_8 = max|W_c|/127, q_8 = clip(round_half_even(W/s_8), −128, 127),
        // q_l = clip(⌊q_8/2^(8−l) + ½⌋, −2^(l−1), 2^(l−1) − 1), Ŵ = q_l·s_8·2^(8−l); input
        // scale = (largest calibration input of the layer)/(2^b − 1).
        use crate::model::{Model, ModelMeta};
        use candle_core::Device;
        let dev = Device::Cpu;
        let x = Tensor::rand(0f32, 1f32, (4, 1, 28, 28), &dev).unwrap();
        let float = Model::init(ModelMeta::new("mnist", 0.25), 9, &dev).unwrap();
        let maxima = float.input_maxima(&x).unwrap();
        let policy = Policy {
            weight_bits: vec![8, 4, 2, 6, 4, 2, 4, 8],
            act_bits: vec![8, 3, 5, 8, 2, 6, 4, 7],
        };
        let mut ptq = Model::init(ModelMeta::new("mnist", 0.25), 9, &dev).unwrap();
        apply_ptq(&mut ptq, &policy, &x).unwrap();
        for (i, max_input) in maxima.iter().enumerate() {
            let w = float.weights[i]
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let out = float.layers[i].out_channels;
            let per = w.len() / out;
            let l = policy.weight_bits[i] as i32;
            let step = 2f32.powi(8 - l);
            let (lo, hi) = (-(2f32.powi(l - 1)), 2f32.powi(l - 1) - 1.0);
            let mut want = Vec::with_capacity(w.len());
            for c in 0..out {
                let row = &w[c * per..(c + 1) * per];
                let mut max = 0f32;
                for v in row {
                    max = max.max(v.abs());
                }
                let s8 = max / 127.0;
                for v in row {
                    let q8 = (v / s8).round_ties_even().clamp(-128.0, 127.0);
                    let ql = (q8 / step + 0.5).floor().clamp(lo, hi);
                    want.push(ql * (s8 * step));
                }
            }
            let got = ptq.weights[i]
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert_eq!(got, want, "layer {i} weights");
            if i == 0 {
                assert_eq!(ptq.input_quant[0], None, "the stem's input stays float");
            } else {
                let b = policy.act_bits[i] as i32;
                let scale = max_input / (2f32.powi(b) - 1.0);
                assert_eq!(
                    ptq.input_quant[i],
                    Some(crate::model::ActQuant {
                        scale,
                        bits: b as u8
                    }),
                    "layer {i} input"
                );
            }
        }
    }

    #[test]
    fn double_rounding_of_a_small_layer_by_hand() {
        // Row 0: max 0.5, s = 0.5/127: W/s = 127, −63.5, 25.4 → q_8 = 127, −64 (tie to even),
        // 25. Row 1: max 1, s = 1/127: 0, −127, 38.1 → 0, −127, 38.
        // 4 bits (÷16, ties up): 7.94→8→7 (clamp), −4→−4, 1.56→2, 0, −7.94→−8, 2.375→2.
        // 2 bits (÷64): 1.98→2→1 (clamp), −1→−1, 0.39→0, 0, −1.98→−2, 0.59→1.
        let w = [0.5f32, -0.25, 0.1, 0.0, -1.0, 0.3];
        let qw = QuantizedWeights::from_float(&w, &[2, 3]).unwrap();
        assert_eq!(qw.scales, vec![0.5 / 127.0, 1.0 / 127.0]);
        assert_eq!(qw.q, vec![127, -64, 25, 0, -127, 38]);
        assert_eq!(qw.integers_at(4).unwrap(), vec![7, -4, 2, 0, -8, 2]);
        assert_eq!(qw.integers_at(2).unwrap(), vec![1, -1, 0, 0, -2, 1]);
        let (s0, s1) = (0.5f32 / 127.0 * 16.0, 1.0f32 / 127.0 * 16.0);
        assert_eq!(
            qw.dequantize(4).unwrap(),
            vec![7.0 * s0, -4.0 * s0, 2.0 * s0, 0.0, -8.0 * s1, 2.0 * s1]
        );
    }

    #[test]
    fn bit_lists_parse_and_reject_out_of_range_values() {
        assert_eq!(parse_bits_list("8, 6,4,2").unwrap(), vec![8, 6, 4, 2]);
        assert!(parse_bits_list("8,9")
            .unwrap_err()
            .to_string()
            .contains("outside 2..=8"));
        assert!(parse_bits_list("8,x")
            .unwrap_err()
            .to_string()
            .contains("`x`"));
        assert!(parse_bits_list("").is_err());
    }
}
