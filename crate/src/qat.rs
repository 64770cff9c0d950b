//! Multi-bit quantization-aware training (Double Rounding with LSQ, DESIGN §3).
//!
//! One set of float weights is trained so that every bit-width in the list works from the
//! same int8 model: per batch, for each bit-width b, the forward pass runs at w{b}a{b} —
//!
//! ```text
//! q_8 = round(clip(W / s_8, −128, 127))                     (LSQ, straight-through round)
//! q_b = clip(⌊q_8 / 2^(8−b) + ½⌋, −2^(b−1), 2^(b−1) − 1)    (the second rounding, STE)
//! Ŵ_b = q_b · s_8 · 2^(8−b)
//! X̂_b = round(clip(X / a_b, 0, 2^b − 1)) · a_b              (per-layer, per-bit a_b)
//! ```
//!
//! — and backward, the gradients summed over the widths; then **one** optimiser step
//! ([`joint`], the paper's Algorithm 1). `round` is round half to even and ⌊·+½⌋ the
//! integer shift's ties-up, exactly the rounding of deployment ([`crate::quant`]), so in
//! evaluation mode the training forward pass computes the same numbers as the exported
//! model does. Weights, BN and the fc bias use AdamW; each layer has one BN set per
//! bit-width. The scales (s_8 per output channel, shared by all widths; a_b per layer and
//! width) are learned with LSQ's gradient (`round(v) − v` inside the clip range, the bound
//! outside, times the gradient scale 1/√(N·Q_p)) by Adam on log s, so that a step changes a
//! scale by a fraction of itself whatever its magnitude. ALRS (Δ = 8 − b: η_b = 10^(−Δ/2)
//! for even Δ, 5·10^(−(Δ+1)/2) for odd) weighs width b's contribution to the shared s_8
//! before the sum and sets a_b's learning rate, so the low widths cannot drag the shared
//! 8-bit grid (why both, under Adam: [`joint`]).

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{Model, TrainingQuantizer};
use crate::noise;
use crate::quant::{check_bits, ActScales, QuantizedWeights, Switchable, MAX_BITS};
use crate::train::{StepReport, TrainConfig};
use candle_core::{Tensor, Var};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;

pub(crate) mod joint;
pub use joint::ScaleGradientAgreement;
use joint::{JointGradients, JointOptimisers};

/// Settings of multi-bit training on top of the float training settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct QatConfig {
    pub base: TrainConfig,
    /// The bit-widths trained jointly, e.g. `[8, 6, 4, 2]`.
    pub bits: Vec<u8>,
    /// Per-bit scale learning rates (ALRS); `false` gives every width the same rate.
    pub alrs: bool,
    /// Learning rate of the (log-)scales before the ALRS factor.
    pub scale_lr: f64,
}

impl QatConfig {
    pub fn validate(&self) -> Result<()> {
        self.base.validate()?;
        validate_widths(&self.bits, self.scale_lr)
    }
}

/// The width list and scale learning rate of any joint training (multi-bit or supernet): at
/// least one width, each in 2..=8, none repeated; a positive, finite scale learning rate.
pub(crate) fn validate_widths(bits: &[u8], scale_lr: f64) -> Result<()> {
    if bits.is_empty() {
        return Err(Error::Invalid("give at least one bit-width".into()));
    }
    for &b in bits {
        check_bits(b)?;
    }
    let mut sorted = bits.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != bits.len() {
        return Err(Error::Invalid(format!(
            "bit-widths {bits:?} repeat a width"
        )));
    }
    if !(scale_lr > 0.0 && scale_lr.is_finite()) {
        return Err(Error::Invalid("the scale learning rate must be > 0".into()));
    }
    Ok(())
}

/// ALRS factor η_b for the scales of bit-width `bits` (h = 8).
pub fn alrs_factor(bits: u8) -> f64 {
    let delta = (MAX_BITS - bits) as i32;
    if delta % 2 == 0 {
        10f64.powi(-delta / 2)
    } else {
        5.0 * 10f64.powi(-(delta + 1) / 2)
    }
}

/// Forward value `x`, gradient `g`·(gradient w.r.t. x): LSQ's gradient scaling. The forward
/// value is exactly `x` (x + (y − y) with y = g·x), so training computes with the very scale
/// deployment stores.
fn grad_scaled(x: &Tensor, g: f64) -> Result<Tensor> {
    let scaled = (x * g)?;
    Ok((x.detach() + (&scaled - scaled.detach())?)?)
}

/// `round_fn(x)` forward, identity backward (straight-through estimator). The forward value
/// is exactly `round_fn(x)` (r + (x − x)).
fn straight_through(x: &Tensor, round_fn: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    Ok((round_fn(&x.detach())? + (x - x.detach())?)?)
}

/// clip(x, lo, hi) whose gradient is 1 on [lo, hi], bounds included, and 0 outside: LSQ's
/// clip. candle's `clamp` halves the gradient of a value exactly on a bound, and after the
/// second rounding that is every weight on the top or bottom level (at 2 bits, half of the
/// levels). The forward value is exactly the clamped one (x·1 + c·0 or x·0 + c·1).
fn clip(x: &Tensor, lo: f32, hi: f32) -> Result<Tensor> {
    let d = x.detach();
    let inside = (d.ge(lo)?.to_dtype(x.dtype())? * d.le(hi)?.to_dtype(x.dtype())?)?;
    let outside = inside.affine(-1.0, 1.0)?;
    Ok(((x * &inside)? + (d.clamp(lo, hi)? * outside)?)?)
}

/// Round half to even, elementwise: the project's float → integer rounding (DESIGN §3;
/// `f32::round_ties_even`, WGSL `round`), which candle lacks (its `round` takes halves away
/// from zero). Every step is exact in f32: r = round(x) is an integer within ½ of x, so
/// d = r − x is exact; at a tie (|d| = ½) with r odd, the even neighbour is r − 2d.
pub fn round_half_even(x: &Tensor) -> Result<Tensor> {
    let r = x.round()?;
    let d = (&r - x)?;
    let tie = d.abs()?.eq(0.5)?.to_dtype(x.dtype())?;
    // r − 2·⌊r/2⌋ is 1 for odd r, 0 for even r (also for negative r).
    let odd = (&r - ((&r * 0.5)?.floor()? * 2.0)?)?;
    let correction = ((tie * odd)? * (d * 2.0)?)?;
    Ok((r - correction)?)
}

/// The learned quantizers and which bit-width each layer's forward pass runs at.
pub(crate) struct Lsq {
    /// Per layer, the index into `bits` of the width it runs at now (weights and input alike).
    current: RefCell<Vec<usize>>,
    bits: Vec<u8>,
    /// log s_8 per layer, shape `[out]`.
    log_weight_scales: Vec<Var>,
    /// log a_b per layer (layer 0 unused) and width, each shape `[1]`.
    log_act_scales: Vec<Vec<Var>>,
}

impl Lsq {
    /// Starting scales from the float model: s_8 = max|W_c| / 127 per output channel (the
    /// post-training grid), a_b = 2·mean(X)/√(2^b − 1) per layer input (LSQ's initialisation),
    /// measured on `calibration`.
    fn init(model: &mut Model, bits: &[u8], calibration: &Tensor) -> Result<Self> {
        let mut log_weight_scales = Vec::new();
        for w in &model.weights {
            let master =
                QuantizedWeights::from_float(&w.flatten_all()?.to_vec1::<f32>()?, w.dims())?;
            let logs: Vec<f32> = master.scales.iter().map(|s| s.ln()).collect();
            log_weight_scales.push(Var::from_vec(logs, master.scales.len(), w.device())?);
        }
        let means = input_means(model, calibration)?;
        let mut log_act_scales = Vec::new();
        for mean in means {
            let per_bit = bits
                .iter()
                .map(|&b| {
                    let s = (2.0 * mean.max(1e-6) / (((1u32 << b) - 1) as f32).sqrt()).ln();
                    Ok(Var::from_vec(vec![s], 1, calibration.device())?)
                })
                .collect::<Result<Vec<_>>>()?;
            log_act_scales.push(per_bit);
        }
        Ok(Self {
            current: RefCell::new(vec![0; model.layers.len()]),
            bits: bits.to_vec(),
            log_weight_scales,
            log_act_scales,
        })
    }

    /// The quantizers of a trained int8 model, extended to `bits`: s_8 from its masters, a_b
    /// its learned scale at b (a width it was not trained at starts from the nearest trained
    /// width's clipping range). `model` must be at w8a8 (weights = dequantized masters, so
    /// they quantize back to the same int8 values); it gets one BN set per width of `bits`,
    /// each a copy of the set trained nearest (how supernet training starts).
    pub(crate) fn from_switchable(
        model: &mut Model,
        switchable: &Switchable,
        bits: &[u8],
    ) -> Result<Self> {
        let device = model.weights[0].device().clone();
        let log_weight_scales = switchable
            .masters
            .iter()
            .map(|m| {
                let logs: Vec<f32> = m.scales.iter().map(|s| s.ln()).collect();
                Ok(Var::from_vec(logs, m.scales.len(), &device)?)
            })
            .collect::<Result<Vec<_>>>()?;
        let log_act_scales = switchable
            .act_scales
            .iter()
            .map(|act| {
                bits.iter()
                    .map(|&b| Ok(Var::from_vec(vec![act.scale_at(b).ln()], 1, &device)?))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        model.rebase_bn_bits(bits)?;
        Ok(Self {
            current: RefCell::new(vec![0; model.layers.len()]),
            bits: bits.to_vec(),
            log_weight_scales,
            log_act_scales,
        })
    }

    /// Every layer at width `bits[k]`.
    pub(crate) fn set_uniform(&self, k: usize) {
        self.current.borrow_mut().fill(k);
    }

    /// Layer i at width `bits[widths[i]]` (a mixed policy, weights and input alike).
    pub(crate) fn set_widths(&self, widths: &[usize]) {
        self.current.borrow_mut().copy_from_slice(widths);
    }

    /// The width index every layer runs at now.
    pub(crate) fn widths(&self) -> Vec<usize> {
        self.current.borrow().clone()
    }

    pub(crate) fn bits(&self) -> &[u8] {
        &self.bits
    }

    /// log s_8 per layer (shared by every width).
    pub(crate) fn weight_scale_vars(&self) -> &[Var] {
        &self.log_weight_scales
    }

    /// log a_b of every layer's input at width `bits[k]`.
    pub(crate) fn act_scale_vars(&self, k: usize) -> Vec<Var> {
        self.log_act_scales
            .iter()
            .skip(1)
            .map(|layer| layer[k].clone())
            .collect()
    }

    /// The learned scales as Double Rounding stores them, with `weights` quantized on them.
    fn to_switchable(&self, weights: &[Tensor]) -> Result<Switchable> {
        let mut masters = Vec::new();
        for (w, log_s) in weights.iter().zip(&self.log_weight_scales) {
            let scales: Vec<f32> = log_s.as_tensor().exp()?.to_vec1::<f32>()?;
            let values = w.flatten_all()?.to_vec1::<f32>()?;
            let per = values.len() / scales.len();
            let q = values
                .iter()
                .enumerate()
                .map(|(k, &v)| crate::quant::quantize_symmetric(v, scales[k / per], MAX_BITS) as i8)
                .collect();
            masters.push(QuantizedWeights {
                shape: w.dims().to_vec(),
                q,
                scales,
            });
        }
        let mut act_scales = vec![ActScales::Calibrated { max: 1.0 }];
        for layer in self.log_act_scales.iter().skip(1) {
            let scales = layer
                .iter()
                .map(|v| Ok(v.as_tensor().exp()?.to_vec1::<f32>()?[0]))
                .collect::<Result<Vec<f32>>>()?;
            act_scales.push(ActScales::Learned {
                bits: self.bits.clone(),
                scales,
            });
        }
        Ok(Switchable {
            masters,
            act_scales,
        })
    }
}

impl TrainingQuantizer for Rc<Lsq> {
    fn weight(&self, i: usize, w: &Tensor) -> Result<Tensor> {
        let b = self.bits[self.current.borrow()[i]];
        let out = w.dim(0)?;
        let per_channel = w.elem_count() / out;
        let mut shape = vec![out];
        shape.resize(w.rank(), 1);
        let s = self.log_weight_scales[i].as_tensor().exp()?;
        let s = grad_scaled(&s, 1.0 / ((per_channel * 127) as f64).sqrt())?.reshape(shape)?;
        let v = clip(&w.broadcast_div(&s)?, -128.0, 127.0)?;
        let q8 = straight_through(&v, round_half_even)?;
        let step = (1u32 << (MAX_BITS - b)) as f64;
        let q = if b == MAX_BITS {
            q8
        } else {
            let half = (1i32 << (b - 1)) as f32;
            let u = (q8 / step)?;
            let rounded = straight_through(&u, |t| Ok((t + 0.5)?.floor()?))?;
            clip(&rounded, -half, half - 1.0)?
        };
        Ok((q * step)?.broadcast_mul(&s)?)
    }

    fn input(&self, i: usize, x: &Tensor) -> Result<Tensor> {
        let k = self.current.borrow()[i];
        let b = self.bits[k];
        let levels = ((1u32 << b) - 1) as f32;
        let features = x.elem_count() / x.dim(0)?;
        let s = self.log_act_scales[i][k].as_tensor().exp()?;
        let s = grad_scaled(&s, 1.0 / ((features as f64) * levels as f64).sqrt())?;
        let v = clip(&x.broadcast_div(&s)?, 0.0, levels)?;
        Ok(straight_through(&v, round_half_even)?.broadcast_mul(&s)?)
    }
}

/// Records the mean input of every layer (evaluation mode) — LSQ's initial scales.
struct MeanRecorder(std::cell::RefCell<Vec<f32>>);

impl TrainingQuantizer for Rc<MeanRecorder> {
    fn weight(&self, _: usize, w: &Tensor) -> Result<Tensor> {
        Ok(w.clone())
    }
    fn input(&self, i: usize, x: &Tensor) -> Result<Tensor> {
        self.0.borrow_mut()[i] = x.mean_all()?.to_scalar::<f32>()?;
        Ok(x.clone())
    }
}

fn input_means(model: &mut Model, x: &Tensor) -> Result<Vec<f32>> {
    let recorder = Rc::new(MeanRecorder(vec![0.0; model.layers.len()].into()));
    let previous = model.training_quant.replace(Box::new(recorder.clone()));
    let result = model.forward(x);
    model.training_quant = previous;
    result?;
    let means = recorder.0.borrow().clone();
    Ok(means)
}

/// What the caller hears after every optimisation step: the float report plus the width.
#[derive(Clone, Debug, Serialize)]
pub struct QatStepReport {
    pub bits: u8,
    #[serde(flatten)]
    pub step: StepReport,
}

/// Mean training loss per epoch and bit-width (`mean_loss[k]` ↔ `bits[k]`), and how each
/// width's weight-scale gradient related to the highest width's (Figure 2's disagreement).
#[derive(Clone, Debug, Serialize)]
pub struct QatEpochReport {
    pub epoch: usize,
    pub mean_loss: Vec<f32>,
    pub scale_gradients: Vec<ScaleGradientAgreement>,
}

/// Trains `model` (float weights, e.g. a trained float model) jointly at every width of
/// `cfg.bits` and returns the switchable int8 model: `model` gets one BN set per width and
/// ends at w8a8 with the weights dequantized from its int8 masters (no float copy kept).
pub fn train_multibit(
    model: &mut Model,
    data: &Dataset,
    calibration: &Tensor,
    cfg: &QatConfig,
    on_step: &mut dyn FnMut(&QatStepReport),
) -> Result<(Switchable, Vec<QatEpochReport>)> {
    cfg.validate()?;
    let base = &cfg.base;
    let n = image_count(base, data)?;
    let lsq = Rc::new(Lsq::init(model, &cfg.bits, calibration)?);
    model.split_bn_per_bits(&cfg.bits)?;
    let reports =
        with_joint_training(model, &lsq, base, cfg.scale_lr, cfg.alrs, |m, vars, opt| {
            run_epochs(m, data, n, &lsq, vars, opt, cfg, on_step)
        })?;
    finish(model, &lsq).map(|switchable| (switchable, reports))
}

/// How many of `data`'s images a training pass uses (`limit`, at most all); none is an error.
pub(crate) fn image_count(base: &TrainConfig, data: &Dataset) -> Result<usize> {
    let n = base.limit.unwrap_or(data.len()).min(data.len());
    if n == 0 {
        return Err(Error::Invalid("no training images".into()));
    }
    Ok(n)
}

/// Runs `epochs` with `lsq` as the model's training quantizer and one set of joint optimisers
/// over the model's trainable tensors; the quantizer is taken out again whatever the outcome.
pub(crate) fn with_joint_training<R>(
    model: &mut Model,
    lsq: &Rc<Lsq>,
    base: &TrainConfig,
    scale_lr: f64,
    alrs: bool,
    epochs: impl FnOnce(&mut Model, &[Var], &mut JointOptimisers) -> Result<R>,
) -> Result<R> {
    let vars = into_vars(model)?;
    let mut opt = JointOptimisers::new(
        vars.clone(),
        lsq,
        base.lr,
        base.weight_decay,
        scale_lr,
        alrs,
    )?;
    model.training_quant = Some(Box::new(lsq.clone()));
    let result = epochs(model, &vars, &mut opt);
    model.training_quant = None;
    result
}

/// Makes `model`'s trainable tensors variables (they stay the model's tensors).
pub(crate) fn into_vars(model: &mut Model) -> Result<Vec<Var>> {
    let mut vars = Vec::new();
    for t in model.trainable_mut() {
        let v = Var::from_tensor(t)?;
        *t = v.as_tensor().clone();
        vars.push(v);
    }
    Ok(vars)
}

/// Ends training: plain tensors again, the int8 masters on the learned scales, `model` at w8a8.
pub(crate) fn finish(model: &mut Model, lsq: &Lsq) -> Result<Switchable> {
    for t in model.trainable_mut() {
        *t = t.detach();
    }
    let switchable = lsq.to_switchable(&model.weights)?;
    switchable.apply(
        model,
        &crate::quant::Policy::uniform(model.layers.len(), MAX_BITS, MAX_BITS)?,
    )?;
    Ok(switchable)
}

/// One noisy training batch: images `idx` of `data` plus N(0, σ²) noise, and their labels.
pub(crate) fn noisy_batch(
    data: &Dataset,
    idx: &[usize],
    sigma: f32,
    rng: &mut rand::rngs::StdRng,
    device: &candle_core::Device,
) -> Result<(Tensor, Tensor)> {
    let clean = data.batch(idx, device)?;
    let x = if sigma > 0.0 {
        noise::add_gaussian(&clean, sigma, rng)?
    } else {
        clean
    };
    let labels: Vec<u32> = idx.iter().map(|&i| data.labels[i] as u32).collect();
    Ok((x, Tensor::new(labels.as_slice(), device)?))
}

/// The cosine learning-rate schedule's factor at step `t` of `total`.
pub(crate) fn cosine(t: usize, total: usize) -> f64 {
    0.5 * (1.0 + (std::f64::consts::PI * t as f64 / total as f64).cos())
}

/// The training loss at the layers' current widths (BN sets follow the widths).
pub(crate) fn width_loss(
    model: &mut Model,
    lsq: &Lsq,
    x: &Tensor,
    labels: &Tensor,
) -> Result<Tensor> {
    model.bn_active = lsq.widths();
    let logits = model.forward_t(x, true)?;
    Ok(candle_nn::loss::cross_entropy(&logits, labels)?)
}

#[allow(clippy::too_many_arguments)]
fn run_epochs(
    model: &mut Model,
    data: &Dataset,
    n: usize,
    lsq: &Lsq,
    vars: &[Var],
    opt: &mut JointOptimisers,
    cfg: &QatConfig,
    on_step: &mut dyn FnMut(&QatStepReport),
) -> Result<Vec<QatEpochReport>> {
    let base = &cfg.base;
    let device = model.weights[0].device().clone();
    let mut rng = rand::rngs::StdRng::seed_from_u64(base.seed);
    let steps_per_epoch = n.div_ceil(base.batch_size);
    let total_steps = steps_per_epoch * base.epochs;
    let top = top_width(&cfg.bits);
    let mut order: Vec<usize> = (0..n).collect();
    let mut reports = Vec::new();
    for epoch in 0..base.epochs {
        order.shuffle(&mut rng);
        let mut sums = vec![0f32; cfg.bits.len()];
        let mut agreement = vec![ScaleGradientAgreement::default(); cfg.bits.len()];
        for (step, idx) in order.chunks(base.batch_size).enumerate() {
            let schedule = cosine(epoch * steps_per_epoch + step, total_steps);
            let (x, labels) = noisy_batch(data, idx, base.sigma, &mut rng, &device)?;
            let mut grads = JointGradients::new(vars, lsq);
            let mut raw = Vec::with_capacity(cfg.bits.len());
            let mut losses = Vec::with_capacity(cfg.bits.len());
            for (k, &b) in cfg.bits.iter().enumerate() {
                lsq.set_uniform(k);
                let loss = width_loss(model, lsq, &x, &labels)?;
                raw.push(grads.add(&loss, lsq, cfg.alrs)?);
                let loss = loss.to_scalar::<f32>()?;
                if !loss.is_finite() {
                    return Err(Error::Invalid(format!(
                        "training diverged (loss {loss}) at {b} bits, epoch {epoch} step {step}"
                    )));
                }
                sums[k] += loss;
                losses.push(loss);
            }
            opt.step(&grads, schedule)?;
            for (k, g) in raw.iter().enumerate() {
                agreement[k].accumulate(&ScaleGradientAgreement::of(g, &raw[top]), step);
            }
            for (k, &b) in cfg.bits.iter().enumerate() {
                on_step(&QatStepReport {
                    bits: b,
                    step: StepReport {
                        epoch,
                        step,
                        steps_per_epoch,
                        loss: losses[k],
                        lr: base.lr * schedule,
                    },
                });
            }
        }
        reports.push(QatEpochReport {
            epoch,
            mean_loss: sums.iter().map(|s| s / steps_per_epoch as f32).collect(),
            scale_gradients: agreement,
        });
    }
    Ok(reports)
}

/// Index of the highest width in `bits`.
pub(crate) fn top_width(bits: &[u8]) -> usize {
    (0..bits.len()).max_by_key(|&k| bits[k]).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelMeta;
    use crate::quant::Policy;
    use candle_core::Device;

    #[test]
    fn alrs_factors_follow_the_paper() {
        assert_eq!(alrs_factor(8), 1.0);
        assert!((alrs_factor(6) - 0.1).abs() < 1e-12);
        assert!((alrs_factor(4) - 0.01).abs() < 1e-12);
        assert!((alrs_factor(2) - 0.001).abs() < 1e-12);
        assert!((alrs_factor(7) - 0.5).abs() < 1e-12);
        assert!((alrs_factor(5) - 0.05).abs() < 1e-12);
    }

    #[test]
    fn round_half_even_takes_ties_to_the_even_neighbour() {
        let dev = Device::Cpu;
        // (input, expected): hand-worked ties, then values on either side of them.
        let cases: [(f32, f32); 22] = [
            (-2.5, -2.0),
            (-1.5, -2.0),
            (-0.5, 0.0),
            (0.5, 0.0),
            (1.5, 2.0),
            (2.5, 2.0),
            (3.5, 4.0),
            (-3.5, -4.0),
            (126.5, 126.0),
            (127.5, 128.0),
            (0.0, 0.0),
            (0.49999997, 0.0),
            (0.50000006, 1.0),
            (2.4999998, 2.0),
            (2.5000002, 3.0),
            (-1.4999999, -1.0),
            (-1.5000001, -2.0),
            (0.3, 0.0),
            (1.7, 2.0),
            (-2.2, -2.0),
            (7.0, 7.0),
            (16777215.0, 16777215.0),
        ];
        let x = Tensor::new(&cases.map(|c| c.0), &dev).unwrap();
        let got = round_half_even(&x).unwrap().to_vec1::<f32>().unwrap();
        for ((input, want), got) in cases.iter().zip(&got) {
            assert_eq!(got, want, "round_half_even({input})");
        }
        // Larger than 2²³ every f32 is an integer already; −0.5 gives a zero (of either sign).
        let big = Tensor::new(&[8388609.0f32, -16777218.0, 3.0e9], &dev).unwrap();
        assert_eq!(
            round_half_even(&big).unwrap().to_vec1::<f32>().unwrap(),
            vec![8388609.0, -16777218.0, 3.0e9]
        );
    }

    #[test]
    fn the_straight_through_round_passes_the_gradient_unchanged() {
        let dev = Device::Cpu;
        let x = Var::new(&[0.5f32, 1.5, 2.3, -2.5], &dev).unwrap();
        let y = straight_through(x.as_tensor(), round_half_even).unwrap();
        assert_eq!(y.to_vec1::<f32>().unwrap(), vec![0.0, 2.0, 2.0, -2.0]);
        let w = Tensor::new(&[1.0f32, 2.0, 3.0, 4.0], &dev).unwrap();
        let grads = (y * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let g = grads.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(g, vec![1.0, 2.0, 3.0, 4.0]);
    }

    /// LSQ with every scale set from `log_scale` (weights: per output channel of layer 7, the
    /// fc; activations: layer 1 at the first width).
    fn lsq_with(bits: &[u8], log_scale: f32) -> Rc<Lsq> {
        let dev = Device::Cpu;
        let mut model = Model::init(ModelMeta::new("mnist", 0.25), 1, &dev).unwrap();
        let calib = Tensor::rand(0f32, 1f32, (2, 1, 28, 28), &dev).unwrap();
        let lsq = Rc::new(Lsq::init(&mut model, bits, &calib).unwrap());
        lsq.log_weight_scales[7]
            .set(&Tensor::new(&[log_scale; 10], &dev).unwrap())
            .unwrap();
        for v in &lsq.log_act_scales[1] {
            v.set(&Tensor::new(&[log_scale], &dev).unwrap()).unwrap();
        }
        lsq
    }

    #[test]
    fn the_training_weight_quantizer_by_hand() {
        // s_8 = exp(0) = 1, one weight per output channel. q_8 = round_half_even(clip(W)):
        // 3.7→4, −2.5→−2, 130→127, −200→−128, 0.5→0, 1.5→2, 24, −24, 8, −8. Then
        // q_b = clip(⌊q_8/2^(8−b) + ½⌋) and Ŵ_b = q_b·2^(8−b), worked out per width below.
        let lsq = lsq_with(&[8, 6, 4, 2], 0.0);
        let w = Tensor::new(
            &[
                [3.7f32],
                [-2.5],
                [130.0],
                [-200.0],
                [0.5],
                [1.5],
                [24.0],
                [-24.0],
                [8.0],
                [-8.0],
            ],
            &Device::Cpu,
        )
        .unwrap();
        let want: [[f32; 10]; 4] = [
            [4.0, -2.0, 127.0, -128.0, 0.0, 2.0, 24.0, -24.0, 8.0, -8.0],
            // ÷4, range −32..=31: 1, 0 (−0.5 + ½), 31 (32 clamped), −32, 0, 1, 6, −6, 2, −2
            [4.0, 0.0, 124.0, -128.0, 0.0, 4.0, 24.0, -24.0, 8.0, -8.0],
            // ÷16, range −8..=7: 0, 0, 7 (8 clamped), −8, 0, 0, 2 (1.5 + ½), −1, 1, 0
            [0.0, 0.0, 112.0, -128.0, 0.0, 0.0, 32.0, -16.0, 16.0, 0.0],
            // ÷64, range −2..=1: 0, 0, 1 (2 clamped), −2, then 0 for every small value
            [0.0, 0.0, 64.0, -128.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        ];
        for (k, want) in want.iter().enumerate() {
            lsq.set_uniform(k);
            let got = lsq.weight(7, &w).unwrap().flatten_all().unwrap();
            assert_eq!(got.to_vec1::<f32>().unwrap(), want.to_vec(), "width {k}");
        }
    }

    #[test]
    fn the_training_weight_quantizer_is_double_rounding_of_the_int8_grid() {
        // On a real layer: the training quantizer and the int8 master it is stored as, both
        // against DESIGN §3 written out here in plain f32 loops.
        let dev = Device::Cpu;
        let mut model = Model::init(ModelMeta::new("mnist", 0.25), 1, &dev).unwrap();
        let wt = model.weights[7].clone();
        let w = wt.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let x = Tensor::rand(0f32, 1f32, (2, 1, 28, 28), &dev).unwrap();
        let lsq = Rc::new(Lsq::init(&mut model, &[8, 6, 4, 2], &x).unwrap());
        // The scales LSQ computes with: exp of its log-scales.
        let s: Vec<f32> = lsq.log_weight_scales[7]
            .as_tensor()
            .exp()
            .unwrap()
            .to_vec1()
            .unwrap();
        let per = w.len() / s.len();
        let q8: Vec<f32> = (0..w.len())
            .map(|j| (w[j] / s[j / per]).round_ties_even().clamp(-128.0, 127.0))
            .collect();
        let master = lsq.to_switchable(&model.weights).unwrap().masters[7].clone();
        assert_eq!(master.scales, s);
        let stored: Vec<f32> = master.q.iter().map(|&q| q as f32).collect();
        assert_eq!(stored, q8);
        for (k, b) in [8i32, 6, 4, 2].into_iter().enumerate() {
            lsq.set_uniform(k);
            let got = lsq.weight(7, &wt).unwrap().flatten_all().unwrap();
            let got = got.to_vec1::<f32>().unwrap();
            let step = 2f32.powi(8 - b);
            let (lo, hi) = (-(2f32.powi(b - 1)), 2f32.powi(b - 1) - 1.0);
            let want: Vec<f32> = (0..w.len())
                .map(|j| {
                    let qb = if b == 8 {
                        q8[j]
                    } else {
                        (q8[j] / step + 0.5).floor().clamp(lo, hi)
                    };
                    qb * step * s[j / per]
                })
                .collect();
            assert_eq!(got, want, "{b} bits");
        }
    }

    #[test]
    fn lsq_scale_gradient_is_round_minus_v_inside_and_the_bound_outside() {
        // one activation quantizer, 4 bits, scale 0.5: X̂ = round(clip(x/s, 0, 15))·s
        let dev = Device::Cpu;
        let mut model = Model::init(ModelMeta::new("mnist", 0.25), 1, &dev).unwrap();
        let calib = Tensor::rand(0f32, 1f32, (2, 1, 28, 28), &dev).unwrap();
        let lsq = Rc::new(Lsq::init(&mut model, &[4], &calib).unwrap());
        lsq.log_act_scales[1][0]
            .set(&Tensor::new(&[0.5f32.ln()], &dev).unwrap())
            .unwrap();
        let x = Tensor::new(&[[0.3f32, 1.1, 9.0, -1.0]], &dev).unwrap();
        let y = lsq.input(1, &x).unwrap();
        assert_eq!(y.to_vec2::<f32>().unwrap(), vec![vec![0.5, 1.0, 7.5, 0.0]]);
        let grads = y.sum_all().unwrap().backward().unwrap();
        let g_log = grads
            .get(lsq.log_act_scales[1][0].as_tensor())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()[0];
        // d/ds = Σ (round(v) − v) inside + 15 at the upper clip + 0 below, times g; d/dlog s = s·d/ds
        let v = [0.6f32, 2.2];
        let inside: f32 = v.iter().map(|v| v.round() - v).sum();
        let g = 1.0 / ((4.0f32) * 15.0).sqrt();
        let want = 0.5 * g * (inside + 15.0);
        assert!((g_log - want).abs() < 1e-5, "{g_log} vs {want}");
    }

    /// Σ c_j·y_j in f64 for the quantizer outputs y.
    fn weighted_sum(y: &Tensor, c: &[f32]) -> f64 {
        let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        y.iter().zip(c).map(|(&y, &c)| y as f64 * c as f64).sum()
    }

    fn relative_gap(a: f64, b: f64) -> f64 {
        (a - b).abs() / a.abs().max(b.abs()).max(1e-12)
    }

    #[test]
    fn lsq_activation_scale_gradient_against_its_formula_and_a_finite_difference() {
        // 4 bits at s = 0.37; the quantizer's inputs x = v·s with v away from every rounding
        // boundary (fractions 0.1–0.4 and 0.6–0.9), below 0, inside and above 15.
        let dev = Device::Cpu;
        let log_s = 0.37f32.ln();
        let lsq = lsq_with(&[4], log_s);
        let s = exp_f32(log_s);
        let v: [f32; 11] = [-0.7, 0.2, 0.8, 1.3, 2.7, 5.15, 9.6, 14.3, 15.2, 16.8, 40.0];
        let c: [f32; 11] = [0.9, -1.3, 0.4, 2.0, -0.6, 1.1, 0.7, -1.9, 1.5, 0.3, -0.8];
        let xs: Vec<f32> = v.iter().map(|v| v * s).collect();
        let x = Tensor::from_vec(xs.clone(), (1, 11), &dev).unwrap();
        let c_t = Tensor::from_vec(c.to_vec(), (1, 11), &dev).unwrap();
        let scale_var = &lsq.log_act_scales[1][0];
        let loss = (lsq.input(1, &x).unwrap() * &c_t)
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        let g_log = grads
            .get(scale_var.as_tensor())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()[0] as f64;
        // LSQ's gradient scale g = 1/√(features·Q_p), and d/d log s = s·d/ds.
        let g = 1.0 / (11.0f64 * 15.0).sqrt();
        let d_ds = g_log / (s as f64 * g);

        // The formula (DESIGN §3): round(v) − v inside the clip range, the bound outside.
        let mut formula = 0f64;
        let mut inside_v = 0f64;
        for (&x, &c) in xs.iter().zip(&c) {
            let v = (x / s) as f64;
            formula += c as f64
                * if v < 0.0 {
                    0.0
                } else if v > 15.0 {
                    15.0
                } else {
                    inside_v += c as f64 * v;
                    v.round() - v
                };
        }
        assert!(relative_gap(d_ds, formula) < 1e-5, "{d_ds} vs {formula}");

        // A central difference of the real quantizer output s·clip(round(x/s)): away from
        // rounding boundaries it is Σ c·round(v) inside and c·bound outside, i.e. LSQ's
        // gradient plus Σ_inside c·v.
        let h = 1e-3f32;
        let at = |log: f32| {
            scale_var.set(&Tensor::new(&[log], &dev).unwrap()).unwrap();
            weighted_sum(&lsq.input(1, &x).unwrap(), &c)
        };
        let fd_log = (at(log_s + h) - at(log_s - h)) / (2.0 * h as f64);
        let fd = fd_log / s as f64;
        assert!(
            relative_gap(d_ds + inside_v, fd) < 1e-3,
            "{} vs {fd}",
            d_ds + inside_v
        );
    }

    #[test]
    fn lsq_weight_scale_gradient_against_its_formula_and_a_finite_difference() {
        // The fc layer's per-channel scales s = 0.05, one row of 6 weights per channel with
        // v = W/s away from first-rounding boundaries, some outside −128..=127 and some
        // clamped by the second rounding; at 8 bits and (through the shift) 4 and 2 bits.
        let dev = Device::Cpu;
        let log_s = 0.05f32.ln();
        let lsq = lsq_with(&[8, 4, 2], log_s);
        let s = exp_f32(log_s);
        let base: [f32; 6] = [0.3, -7.2, 24.6, 126.8, -140.0, 60.1];
        let mut w = Vec::new();
        let mut c = Vec::new();
        for ch in 0..10 {
            for (j, v) in base.iter().enumerate() {
                let v = if ch % 2 == 0 { *v } else { -v + 0.0 };
                w.push((v - ch as f32 * 3.0) * s);
                c.push(((ch * 6 + j) % 7) as f32 * 0.3 - 0.8);
            }
        }
        let wt = Tensor::from_vec(w.clone(), (10, 6), &dev).unwrap();
        let c_t = Tensor::from_vec(c.clone(), (10, 6), &dev).unwrap();
        let var = &lsq.log_weight_scales[7];
        for (k, b) in [8i32, 4, 2].into_iter().enumerate() {
            lsq.set_uniform(k);
            let set_all = |log: f32| var.set(&Tensor::new(&[log; 10], &dev).unwrap()).unwrap();
            set_all(log_s);
            let loss = (lsq.weight(7, &wt).unwrap() * &c_t)
                .unwrap()
                .sum_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            let g_log = grads
                .get(var.as_tensor())
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let g = 1.0 / (6.0f64 * 127.0).sqrt();
            let step = 2f64.powi(8 - b);
            let (lo, hi) = (-(2f64.powi(b - 1)), 2f64.powi(b - 1) - 1.0);
            for ch in 0..10 {
                let d_ds = g_log[ch] as f64 / (s as f64 * g);
                // d/ds of s·step·q_b with round as identity: step·q_b − v inside both clips,
                // step·q_b (the clipped value) where either clip holds.
                let mut formula = 0f64;
                let mut inside_v = 0f64;
                // The size of the terms, to compare sums that may cancel to ~0.
                let mut size = 0f64;
                for j in ch * 6..ch * 6 + 6 {
                    let v = (w[j] / s) as f64;
                    let q8 = v.round().clamp(-128.0, 127.0);
                    let raw = (q8 / step + 0.5).floor();
                    let qb = raw.clamp(lo, hi);
                    let clipped = !(-128.0..=127.0).contains(&v) || raw != qb;
                    formula += c[j] as f64 * (step * qb - if clipped { 0.0 } else { v });
                    if !clipped {
                        inside_v += c[j] as f64 * v;
                    }
                    size += (c[j] as f64).abs() * (step * qb.abs() + v.abs());
                }
                assert!(
                    (d_ds - formula).abs() < 1e-5 * size,
                    "{b} bits, channel {ch}: {d_ds} vs {formula}"
                );
                // Central difference of the real quantizer output in this channel's scale.
                let rows = |log: f32| {
                    let mut logs = [log_s; 10];
                    logs[ch] = log;
                    var.set(&Tensor::new(&logs, &dev).unwrap()).unwrap();
                    let y = lsq.weight(7, &wt).unwrap().flatten_all().unwrap();
                    let y = y.to_vec1::<f32>().unwrap();
                    (ch * 6..ch * 6 + 6)
                        .map(|j| y[j] as f64 * c[j] as f64)
                        .sum::<f64>()
                };
                let h = 1e-3f32;
                let fd = (rows(log_s + h) - rows(log_s - h)) / (2.0 * h as f64) / s as f64;
                assert!(
                    (d_ds + inside_v - fd).abs() < 1e-3 * size,
                    "{b} bits, channel {ch}: {} vs {fd}",
                    d_ds + inside_v
                );
            }
        }
    }

    /// Every layer's input as the training forward pass sees it (before its quantizer).
    struct Probe {
        lsq: Rc<Lsq>,
        seen: std::cell::RefCell<Vec<Vec<f32>>>,
    }

    impl TrainingQuantizer for Rc<Probe> {
        fn weight(&self, i: usize, w: &Tensor) -> Result<Tensor> {
            self.lsq.weight(i, w)
        }
        fn input(&self, i: usize, x: &Tensor) -> Result<Tensor> {
            self.seen.borrow_mut()[i] = x.flatten_all()?.to_vec1::<f32>()?;
            self.lsq.input(i, x)
        }
    }

    fn exp_f32(log: f32) -> f32 {
        // The very operation LSQ applies to its log-scales.
        Tensor::new(&[log], &Device::Cpu)
            .unwrap()
            .exp()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()[0]
    }

    /// A log-scale L near ln(y/(m + ½)) whose scale a = exp(L) puts `y` exactly on the tie
    /// y/a = m + ½ for some level m near `target` (in 0..levels), if there is one.
    fn tie_log_scale(y: f32, target: f32, levels: f32) -> Option<f32> {
        let base = target.floor().clamp(0.0, levels - 1.0);
        for dm in [0.0, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0] {
            let m = base + dm;
            if !(0.0..levels).contains(&m) {
                continue;
            }
            let centre = (y / (m + 0.5)).ln();
            for step in -48i32..=48 {
                let log = f32::from_bits((centre.to_bits() as i32 + step) as u32);
                if y / exp_f32(log) == m + 0.5 {
                    return Some(log);
                }
            }
        }
        None
    }

    /// Input values of a layer that sit exactly on a tie of its quantizer at scale `a`.
    fn ties(values: &[f32], a: f32, levels: f32) -> usize {
        values
            .iter()
            .filter(|&&x| {
                let v = x / a;
                v > 0.0 && v < levels && v - v.floor() == 0.5
            })
            .count()
    }

    #[test]
    fn training_forward_equals_the_deployed_forward_bit_for_bit_on_ties() {
        use crate::checkpoint;
        use crate::exec::CpuExecutor;
        const SHIPPED: &[u8] = include_bytes!("../../public/models/mnist-sigma0.25.safetensors");
        const IMAGES: &[u8] = include_bytes!("../tests/fixtures/mnist-test.bsds");
        let dev = Device::Cpu;
        let data = Dataset::from_bytes(IMAGES).unwrap();
        // Clean test images (constant background: many equal activations) and noisy copies.
        let clean = data.batch(&(0..8).collect::<Vec<_>>(), &dev).unwrap();
        let noisy = crate::noise::noisy_copies(data.image(0), 8, 0.25, 3, &dev).unwrap();
        let x = Tensor::cat(&[&clean, &noisy], 0).unwrap();

        // A training state of the shipped model: its learned scales in LSQ, float weights
        // that put every third weight exactly on a tie of the 8-bit grid.
        let loaded = checkpoint::load(SHIPPED).unwrap();
        let learned = loaded.switchable.unwrap();
        let mut model = loaded.model;
        // Training quantizes inputs through LSQ only (the loaded model comes at w8a8).
        model.input_quant = vec![None; 8];
        // every width the shipped model was trained at (the supernet: 8 down to 2)
        let bits = model.bn_bits.clone();
        assert_eq!(bits, model.meta.bits);
        assert!(bits.contains(&8) && bits.contains(&2), "{bits:?}");
        let lsq = Rc::new(Lsq::init(&mut model, &bits, &x).unwrap());
        let mut weight_ties = 0;
        for (i, master) in learned.masters.iter().enumerate() {
            let logs: Vec<f32> = master.scales.iter().map(|s| s.ln()).collect();
            let logs = Tensor::new(logs.as_slice(), &dev).unwrap();
            lsq.log_weight_scales[i].set(&logs).unwrap();
            let scales: Vec<f32> = logs.exp().unwrap().to_vec1().unwrap();
            let per = master.q.len() / scales.len();
            let w: Vec<f32> = master
                .q
                .iter()
                .enumerate()
                .map(|(j, &q)| {
                    let tie = if j % 3 == 0 { 0.5 } else { 0.0 };
                    (q as f32 + tie) * scales[j / per]
                })
                .collect();
            weight_ties += w
                .iter()
                .enumerate()
                .filter(|&(j, &v)| {
                    let t = v / scales[j / per];
                    t.abs() < 127.0 && t - t.floor() == 0.5
                })
                .count();
            model.weights[i] = Tensor::from_vec(w, master.shape.clone(), &dev).unwrap();
        }
        eprintln!("weights on a tie: {weight_ties}");
        assert!(weight_ties > 10_000, "{weight_ties}");

        // Per width, each layer's activation scale moved (by < 1/(2m + 1)) so that its most
        // frequent positive input value lands exactly on a tie.
        let probe = Rc::new(Probe {
            lsq: lsq.clone(),
            seen: vec![vec![]; 8].into(),
        });
        for (k, &b) in bits.iter().enumerate() {
            let levels = ((1u32 << b) - 1) as f32;
            lsq.set_uniform(k);
            model.bn_active = vec![k; 8];
            for i in 1..8 {
                let ActScales::Learned { scales, .. } = &learned.act_scales[i] else {
                    panic!("layer {i}: learned scales expected");
                };
                model.training_quant = Some(Box::new(probe.clone()));
                model.forward(&x).unwrap();
                let seen = probe.seen.borrow()[i].clone();
                let mut frequent: Vec<(u32, usize)> = {
                    let mut counts = std::collections::HashMap::new();
                    for v in seen.iter().filter(|v| **v > 0.0) {
                        *counts.entry(v.to_bits()).or_insert(0usize) += 1;
                    }
                    counts.into_iter().collect()
                };
                frequent.sort_by_key(|&(v, n)| (std::cmp::Reverse(n), v));
                let log = frequent
                    .iter()
                    .take(20)
                    .find_map(|&(v, _)| {
                        let y = f32::from_bits(v);
                        tie_log_scale(y, y / scales[k], levels)
                    })
                    .unwrap_or_else(|| panic!("no tie found at layer {i}, {b} bits"));
                let log_t = Tensor::new(&[log], &dev).unwrap();
                lsq.log_act_scales[i][k].set(&log_t).unwrap();
                let n = ties(&seen, exp_f32(log), levels);
                eprintln!("{b} bits, layer {i}: {n} of {} inputs on a tie", seen.len());
                assert!(n > 0);
            }
        }

        // The training forward pass (evaluation mode) at each width against the deployed
        // model: the int8 masters of these weights, switched to w{b}a{b}.
        let deployed = lsq.to_switchable(&model.weights).unwrap();
        let mut target = checkpoint::load(SHIPPED).unwrap().model;
        let bits_of = |t: &Tensor| -> Vec<u32> {
            let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            v.iter().map(|f| f.to_bits()).collect()
        };
        for (k, &b) in bits.iter().enumerate() {
            lsq.set_uniform(k);
            model.bn_active = vec![k; 8];
            model.training_quant = Some(Box::new(lsq.clone()));
            let training = model.forward(&x).unwrap();
            model.training_quant = None;
            let policy = Policy::uniform(8, b, b).unwrap();
            deployed.apply(&mut target, &policy).unwrap();
            assert_eq!(
                bits_of(&training),
                bits_of(&target.forward(&x).unwrap()),
                "{b} bits: the switchable model"
            );
            // The exported file at this policy, read back.
            let export = checkpoint::save_export(&target, &deployed, &policy).unwrap();
            let exported = checkpoint::load(&export).unwrap().model;
            assert_eq!(
                bits_of(&training),
                bits_of(&exported.forward(&x).unwrap()),
                "{b} bits: the exported model"
            );
        }

        // The fast executor sums in another order, so a value exactly on a tie in candle can
        // sit an ulp off it there: it is compared on the learned activation scales (the
        // weight ties stay), within the executor's tolerance (see exec/tests.rs).
        let mut on_learned = lsq.to_switchable(&model.weights).unwrap();
        on_learned.act_scales = learned.act_scales.clone();
        let inputs = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for &b in &bits {
            on_learned
                .apply(&mut target, &Policy::uniform(8, b, b).unwrap())
                .unwrap();
            let want = target.forward(&x).unwrap().to_vec2::<f32>().unwrap();
            let mut exec = CpuExecutor::new(&target).unwrap();
            let got = exec.logits(&inputs, 16).unwrap().to_vec();
            for (w, g) in want.iter().zip(got.chunks(10)) {
                let scale = w.iter().fold(1f32, |m, v| m.max(v.abs()));
                let diff = w.iter().zip(g).fold(0f32, |m, (a, c)| m.max((a - c).abs()));
                assert!(diff <= 1e-4 * scale, "{b} bits: {w:?} vs {g:?}");
            }
        }
    }

    /// 128 synthetic images of two classes: a bright left half or a bright right half.
    fn halves() -> Dataset {
        let mut labels = vec![];
        let mut pixels = vec![];
        for i in 0..128usize {
            let class = (i % 2) as u8;
            labels.push(class);
            for _r in 0..28 {
                for c in 0..28 {
                    let bright = (c < 14) == (class == 0);
                    pixels.push(if bright { 200 } else { 30 } + (i % 7) as u8);
                }
            }
        }
        Dataset::new(28, 28, 10, labels, pixels).unwrap()
    }

    #[test]
    fn multibit_training_on_a_tiny_subset_lowers_the_loss_at_every_bit_width() {
        let data = halves();
        let dev = Device::Cpu;
        let mut model = Model::init(ModelMeta::new("synthetic", 0.25), 1, &dev).unwrap();
        let calib = data.batch(&(0..32).collect::<Vec<_>>(), &dev).unwrap();
        let cfg = QatConfig {
            base: TrainConfig {
                epochs: 3,
                batch_size: 32,
                lr: 3e-3,
                ..Default::default()
            },
            bits: vec![8, 4, 2],
            alrs: true,
            scale_lr: 1e-2,
        };
        let (switchable, reports) =
            train_multibit(&mut model, &data, &calib, &cfg, &mut |_| {}).unwrap();
        assert_eq!(reports.len(), 3);
        for k in 0..3 {
            assert!(
                reports[2].mean_loss[k] < 0.7 * reports[0].mean_loss[k],
                "width {}: {reports:?}",
                cfg.bits[k]
            );
        }
        // the result is an int8 model that switches: each trained width classifies the task
        assert_eq!(model.bn_bits, vec![8, 4, 2]);
        for b in [8u8, 4, 2] {
            switchable
                .apply(&mut model, &Policy::uniform(8, b, b).unwrap())
                .unwrap();
            let eval = crate::eval::evaluate(&model, &data, 0, 128, &mut |_, _| {}).unwrap();
            assert!(eval.accuracy() > 0.9, "{b} bits: {}", eval.accuracy());
        }
    }

    /// The MNIST training set as `bitsmooth prepare-data` writes it (scripts/test.sh builds it
    /// before the tests run). Missing data is a failure, never a skip.
    fn mnist_train() -> Dataset {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/mnist-train.bsds");
        let bytes = std::fs::read(path).unwrap_or_else(|e| {
            panic!("cannot read {path} ({e}): run `bitsmooth prepare-data` (scripts/test.sh does)")
        });
        Dataset::from_bytes(&bytes).unwrap()
    }

    /// Images `start..start + count` of `data`.
    #[test]
    fn multibit_training_on_real_digits_lifts_the_low_width_and_needs_the_alrs_factors() {
        // The trained float MNIST model (σ = 0.25), trained jointly at 8 and 2 bits on 512 real
        // training digits (4 epochs, batch 64, one update per batch), judged on 1,000 held-out
        // training digits. Measured (seed 0): on LSQ's initial scales w2a2 gets 0.855; after
        // training w8a8 0.985 and w2a2 0.917. Broken once by hand to set the bars: with the
        // ALRS factors inverted (η_2 = 1000 instead of 0.001) w2a2 collapses to 0.107. With
        // the scale step switched off (scale lr 1e-12) w2a2 reaches 0.927 (w8a8 0.980): on
        // this small run the learned scales do not beat the initial ones within the noise of
        // 1,000 images (±0.009), so the bars do not ask them to (LSQ's scale gradient itself
        // is checked by finite differences above).
        const TRAIN_IMAGES: usize = 512;
        const MIN_W8: f64 = 0.95;
        const MIN_W2: f64 = 0.90;
        const FLOAT: &[u8] = include_bytes!("../../models/float/mnist-sigma0.25.safetensors");
        let dev = Device::Cpu;
        let data = mnist_train();
        let train = data.head(TRAIN_IMAGES);
        let held_out = data.tail_from(50_000).head(1000);
        let mut model = crate::checkpoint::load_float(FLOAT).unwrap();
        let calib = train.batch(&(0..256).collect::<Vec<_>>(), &dev).unwrap();
        let calib =
            noise::add_gaussian(&calib, 0.25, &mut rand::rngs::StdRng::seed_from_u64(0)).unwrap();
        let cfg = QatConfig {
            base: TrainConfig {
                sigma: 0.25,
                epochs: 4,
                batch_size: 64,
                lr: 1e-3,
                weight_decay: 0.0,
                seed: 0,
                limit: None,
            },
            bits: vec![8, 2],
            alrs: true,
            scale_lr: 1e-2,
        };
        let before = {
            // The same model on LSQ's initial scales, before any step.
            let mut m = crate::checkpoint::load_float(FLOAT).unwrap();
            let lsq = Lsq::init(&mut m, &cfg.bits, &calib).unwrap();
            m.split_bn_per_bits(&cfg.bits).unwrap();
            let initial = lsq.to_switchable(&m.weights).unwrap();
            initial
                .apply(&mut m, &Policy::uniform(8, 2, 2).unwrap())
                .unwrap();
            crate::eval::evaluate(&m, &held_out, 0, held_out.len(), &mut |_, _| {})
                .unwrap()
                .accuracy()
        };
        eprintln!("w2a2 on the initial scales: {before:.3}");
        let started = std::time::Instant::now();
        let (switchable, _) =
            train_multibit(&mut model, &train, &calib, &cfg, &mut |_| {}).unwrap();
        let accuracy = |model: &mut Model, b: u8| {
            switchable
                .apply(model, &Policy::uniform(8, b, b).unwrap())
                .unwrap();
            crate::eval::evaluate(model, &held_out, 0, held_out.len(), &mut |_, _| {})
                .unwrap()
                .accuracy()
        };
        let (a8, a2) = (accuracy(&mut model, 8), accuracy(&mut model, 2));
        eprintln!(
            "after {:.1} s: held-out accuracy w8a8 {a8:.3}, w2a2 {a2:.3}",
            started.elapsed().as_secs_f64()
        );
        assert!(a8 >= MIN_W8, "w8a8 {a8} < {MIN_W8}");
        assert!(
            a2 >= MIN_W2 && a2 > before + 0.04,
            "w2a2 {a2}: below {MIN_W2} or not 4 points above the initial {before}"
        );
    }

    #[test]
    fn rejects_bad_settings() {
        let ok = QatConfig {
            base: TrainConfig::default(),
            bits: vec![8, 4],
            alrs: true,
            scale_lr: 1e-3,
        };
        assert!(ok.validate().is_ok());
        for bad in [
            QatConfig {
                bits: vec![],
                ..ok.clone()
            },
            QatConfig {
                bits: vec![8, 9],
                ..ok.clone()
            },
            QatConfig {
                bits: vec![4, 4],
                ..ok.clone()
            },
            QatConfig {
                scale_lr: 0.0,
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
