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
//! — then backward and an optimiser step. Weights, BN and the fc bias use AdamW; each layer
//! has one BN set per bit-width. The scales (s_8 per output channel, shared by all widths;
//! a_b per layer and width) are learned with LSQ's gradient (`round(v) − v` inside the clip
//! range, the bound outside, times the gradient scale 1/√(N·Q_p)) by Adam on log s, so that
//! a step changes a scale by a fraction of itself whatever its magnitude. ALRS: during the
//! step of width b the scales' learning rate is multiplied by η_b (Δ = 8 − b: 10^(−Δ/2) for
//! even Δ, 5·10^(−(Δ+1)/2) for odd), so the low widths cannot drag the shared 8-bit grid.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{Model, TrainingQuantizer};
use crate::noise;
use crate::quant::{check_bits, ActScales, QuantizedWeights, Switchable, MAX_BITS};
use crate::train::{StepReport, TrainConfig};
use candle_core::{Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::rc::Rc;

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
        if self.bits.is_empty() {
            return Err(Error::Invalid("give at least one bit-width".into()));
        }
        for &b in &self.bits {
            check_bits(b)?;
        }
        let mut sorted = self.bits.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != self.bits.len() {
            return Err(Error::Invalid(format!(
                "bit-widths {:?} repeat a width",
                self.bits
            )));
        }
        if !(self.scale_lr > 0.0 && self.scale_lr.is_finite()) {
            return Err(Error::Invalid("the scale learning rate must be > 0".into()));
        }
        Ok(())
    }
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

/// Forward value `x`, gradient `g`·(gradient w.r.t. x): LSQ's gradient scaling.
fn grad_scaled(x: &Tensor, g: f64) -> Result<Tensor> {
    let scaled = (x * g)?;
    Ok((&scaled + (x - &scaled)?.detach())?)
}

/// `round_fn(x)` forward, identity backward (straight-through estimator).
fn straight_through(x: &Tensor, round_fn: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    let d = x.detach();
    Ok((x + (round_fn(&d)? - &d)?.detach())?)
}

/// The learned quantizers and which bit-width the current forward pass runs at.
pub struct Lsq {
    /// Index into `bits` of the width being trained now.
    current: Cell<usize>,
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
            current: Cell::new(0),
            bits: bits.to_vec(),
            log_weight_scales,
            log_act_scales,
        })
    }

    fn bits_now(&self) -> u8 {
        self.bits[self.current.get()]
    }

    fn scale_vars(&self) -> Vec<Var> {
        let mut v = self.log_weight_scales.clone();
        for layer in self.log_act_scales.iter().skip(1) {
            v.extend(layer.iter().cloned());
        }
        v
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
        let b = self.bits_now();
        let out = w.dim(0)?;
        let per_channel = w.elem_count() / out;
        let mut shape = vec![out];
        shape.resize(w.rank(), 1);
        let s = self.log_weight_scales[i].as_tensor().exp()?;
        let s = grad_scaled(&s, 1.0 / ((per_channel * 127) as f64).sqrt())?.reshape(shape)?;
        let v = w.broadcast_div(&s)?.clamp(-128f32, 127f32)?;
        let q8 = straight_through(&v, |t| Ok(t.round()?))?;
        let step = (1u32 << (MAX_BITS - b)) as f64;
        let q = if b == MAX_BITS {
            q8
        } else {
            let half = (1i32 << (b - 1)) as f32;
            let u = (q8 / step)?;
            straight_through(&u, |t| Ok((t + 0.5)?.floor()?))?.clamp(-half, half - 1.0)?
        };
        Ok((q * step)?.broadcast_mul(&s)?)
    }

    fn input(&self, i: usize, x: &Tensor) -> Result<Tensor> {
        let k = self.current.get();
        let b = self.bits[k];
        let levels = ((1u32 << b) - 1) as f32;
        let features = x.elem_count() / x.dim(0)?;
        let s = self.log_act_scales[i][k].as_tensor().exp()?;
        let s = grad_scaled(&s, 1.0 / ((features as f64) * levels as f64).sqrt())?;
        let v = x.broadcast_div(&s)?.clamp(0f32, levels)?;
        Ok(straight_through(&v, |t| Ok(t.round()?))?.broadcast_mul(&s)?)
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

/// Mean training loss per epoch and bit-width (`mean_loss[k]` ↔ `bits[k]`).
#[derive(Clone, Debug, Serialize)]
pub struct QatEpochReport {
    pub epoch: usize,
    pub mean_loss: Vec<f32>,
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
    let n = base.limit.unwrap_or(data.len()).min(data.len());
    if n == 0 {
        return Err(Error::Invalid("no training images".into()));
    }
    let lsq = Rc::new(Lsq::init(model, &cfg.bits, calibration)?);
    model.split_bn_per_bits(&cfg.bits)?;
    let mut vars = Vec::new();
    for t in model.trainable_mut() {
        let v = Var::from_tensor(t)?;
        *t = v.as_tensor().clone();
        vars.push(v);
    }
    let mut opt = AdamW::new(
        vars,
        ParamsAdamW {
            lr: base.lr,
            weight_decay: base.weight_decay,
            ..Default::default()
        },
    )?;
    let mut scale_opt = AdamW::new(
        lsq.scale_vars(),
        ParamsAdamW {
            lr: cfg.scale_lr,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    model.training_quant = Some(Box::new(lsq.clone()));
    let result = run_epochs(model, data, n, &lsq, &mut opt, &mut scale_opt, cfg, on_step);
    model.training_quant = None;
    let reports = result?;
    for t in model.trainable_mut() {
        *t = t.detach();
    }
    let switchable = lsq.to_switchable(&model.weights)?;
    switchable.apply(
        model,
        &crate::quant::Policy::uniform(model.layers.len(), MAX_BITS, MAX_BITS)?,
    )?;
    Ok((switchable, reports))
}

#[allow(clippy::too_many_arguments)]
fn run_epochs(
    model: &mut Model,
    data: &Dataset,
    n: usize,
    lsq: &Lsq,
    opt: &mut AdamW,
    scale_opt: &mut AdamW,
    cfg: &QatConfig,
    on_step: &mut dyn FnMut(&QatStepReport),
) -> Result<Vec<QatEpochReport>> {
    let base = &cfg.base;
    let device = model.weights[0].device().clone();
    let mut rng = rand::rngs::StdRng::seed_from_u64(base.seed);
    let steps_per_epoch = n.div_ceil(base.batch_size);
    let total_steps = (steps_per_epoch * base.epochs) as f64;
    let mut order: Vec<usize> = (0..n).collect();
    let mut reports = Vec::new();
    for epoch in 0..base.epochs {
        order.shuffle(&mut rng);
        let mut sums = vec![0f32; cfg.bits.len()];
        for (step, idx) in order.chunks(base.batch_size).enumerate() {
            let t = (epoch * steps_per_epoch + step) as f64;
            let cosine = 0.5 * (1.0 + (std::f64::consts::PI * t / total_steps).cos());
            let clean = data.batch(idx, &device)?;
            let x = if base.sigma > 0.0 {
                noise::add_gaussian(&clean, base.sigma, &mut rng)?
            } else {
                clean
            };
            let labels: Vec<u32> = idx.iter().map(|&i| data.labels[i] as u32).collect();
            let labels = Tensor::new(labels.as_slice(), &device)?;
            for (k, &b) in cfg.bits.iter().enumerate() {
                lsq.current.set(k);
                model.bn_active = vec![k; model.layers.len()];
                let eta = if cfg.alrs { alrs_factor(b) } else { 1.0 };
                opt.set_learning_rate(base.lr * cosine);
                scale_opt.set_learning_rate(cfg.scale_lr * eta * cosine);
                let logits = model.forward_t(&x, true)?;
                let loss = candle_nn::loss::cross_entropy(&logits, &labels)?;
                let grads = loss.backward()?;
                opt.step(&grads)?;
                scale_opt.step(&grads)?;
                let loss = loss.to_scalar::<f32>()?;
                if !loss.is_finite() {
                    return Err(Error::Invalid(format!(
                        "training diverged (loss {loss}) at {b} bits, epoch {epoch} step {step}"
                    )));
                }
                sums[k] += loss;
                on_step(&QatStepReport {
                    bits: b,
                    step: StepReport {
                        epoch,
                        step,
                        steps_per_epoch,
                        loss,
                        lr: base.lr * cosine,
                    },
                });
            }
        }
        reports.push(QatEpochReport {
            epoch,
            mean_loss: sums.iter().map(|s| s / steps_per_epoch as f32).collect(),
        });
    }
    Ok(reports)
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
    fn the_training_weight_quantizer_is_double_rounding_of_the_int8_grid() {
        let dev = Device::Cpu;
        let mut model = Model::init(ModelMeta::new("mnist", 0.25), 1, &dev).unwrap();
        let wt = model.weights[7].clone();
        let w = wt.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let x = Tensor::rand(0f32, 1f32, (2, 1, 28, 28), &dev).unwrap();
        let lsq = Rc::new(Lsq::init(&mut model, &[8, 6, 4, 2], &x).unwrap());
        // the int8 master on the scales LSQ holds (exp of its log-scales)
        let master = lsq.to_switchable(&model.weights).unwrap().masters[7].clone();
        assert_eq!(master, {
            let mut m = QuantizedWeights::from_float(&w, wt.dims()).unwrap();
            m.scales = master.scales.clone();
            m.q = w
                .iter()
                .enumerate()
                .map(|(k, &v)| crate::quant::quantize_symmetric(v, m.scales[k / 2352], 8) as i8)
                .collect();
            m
        });
        for (k, b) in [8u8, 6, 4, 2].into_iter().enumerate() {
            lsq.current.set(k);
            let got = lsq.weight(7, &wt).unwrap().flatten_all().unwrap();
            let got = got.to_vec1::<f32>().unwrap();
            let want = master.dequantize(b).unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                    "{b} bits: {g} vs {w}"
                );
            }
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
