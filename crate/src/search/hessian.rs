//! Hessian-trace sensitivity per layer (HAWQ-V2/V3; Double Rounding's mixed precision):
//! Hutchinson's estimator tr(H) = E[vᵀHv] over Rademacher vectors v (entries ±1 with equal
//! probability), H the Hessian of the training loss with respect to one layer's weights.
//!
//! candle has no double backprop, so the Hessian-vector product is a central difference of
//! gradients, `Hv ≈ (∇L(w + h·v) − ∇L(w − h·v)) / 2h`: exact for a quadratic loss, with an
//! O(h²) error otherwise. The step is relative to the layer: h = [`HessianConfig::relative_step`]
//! × RMS(W_l), so every layer's weights move by the same fraction of their size.
//!
//! The step must be *tiny*, not merely small: with fixed ReLU states the logits are linear in
//! one layer's weights, so the curvature is the cross-entropy's (a positive semi-definite
//! Gauss–Newton term, what double backprop gives), but a step large enough to flip ReLUs
//! adds the gradient's jumps at those kinks, which do not shrink with h. On a fresh model
//! the traces at relative steps 10⁻³ were negative for 7 of 8 layers; from 10⁻⁶ to 10⁻⁹ they
//! agreed to every printed digit (the plateau the tests check). Hence f64 and 10⁻⁷.
//!
//! The model is the stored one at 8-bit weights (the int8 master dequantized) with its
//! activations left in float: the activation quantizer's rounding has zero derivative almost
//! everywhere, so the loss surface of a model with quantized activations is flat in between
//! jumps and carries no curvature a trace could measure. The loss is the mean cross-entropy
//! on `images` training images with Gaussian noise at the model's σ (what the smoothed
//! classifier sees), evaluated in f64 so that the difference of two gradients 10⁻⁷ apart is
//! not lost to rounding.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{BatchNorm, Model};
use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

/// One Hutchinson estimate: the mean of vᵀHv over the samples and its standard error
/// (sample standard deviation / √samples).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceEstimate {
    pub trace: f64,
    pub std_error: f64,
    pub samples: usize,
}

/// Hutchinson's estimate of tr(H) for a loss whose gradient at `w + δ` is `grad_at(δ)`
/// (`dim` values): the mean over `samples` ≥ 2 Rademacher vectors v, drawn from `seed`, of
/// vᵀ(∇L(w + h·v) − ∇L(w − h·v)) / 2h, with step `h` > 0.
pub fn hutchinson_trace(
    dim: usize,
    samples: usize,
    step: f64,
    seed: u64,
    grad_at: &mut dyn FnMut(&[f64]) -> Result<Vec<f64>>,
) -> Result<TraceEstimate> {
    if dim == 0 {
        return Err(Error::Invalid(
            "a Hessian trace needs at least one weight".into(),
        ));
    }
    if samples < 2 {
        return Err(Error::Invalid(format!(
            "Hutchinson's estimator needs at least 2 samples (for its standard error), got {samples}"
        )));
    }
    if !(step.is_finite() && step > 0.0) {
        return Err(Error::Invalid(format!(
            "the finite-difference step must be a number > 0, got {step}"
        )));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(samples);
    for _ in 0..samples {
        let v: Vec<f64> = (0..dim)
            .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
            .collect();
        let plus: Vec<f64> = v.iter().map(|x| x * step).collect();
        let minus: Vec<f64> = v.iter().map(|x| -x * step).collect();
        let (gp, gm) = (grad_at(&plus)?, grad_at(&minus)?);
        if gp.len() != dim || gm.len() != dim {
            return Err(Error::Invalid(format!(
                "the gradient has {} values, expected {dim}",
                gp.len().min(gm.len())
            )));
        }
        let vhv: f64 = v
            .iter()
            .zip(gp.iter().zip(&gm))
            .map(|(vi, (p, m))| vi * (p - m))
            .sum::<f64>()
            / (2.0 * step);
        if !vhv.is_finite() {
            return Err(Error::Invalid(
                "the Hessian-vector product is not finite".into(),
            ));
        }
        values.push(vhv);
    }
    let n = samples as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Ok(TraceEstimate {
        trace: mean,
        std_error: (var / n).sqrt(),
        samples,
    })
}

/// Settings of [`layer_traces`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HessianConfig {
    /// Training images in the loss (drawn without replacement from `seed`), ≥ 1.
    pub images: usize,
    /// Images per forward/backward pass (memory, not the result), ≥ 1.
    pub batch: usize,
    /// Rademacher vectors per layer, ≥ 2.
    pub samples: usize,
    /// h_l = relative_step × RMS(W_l), in (0, 1).
    pub relative_step: f64,
    pub seed: u64,
}

impl Default for HessianConfig {
    fn default() -> Self {
        Self {
            images: 1000,
            batch: 250,
            samples: 16,
            relative_step: 1e-7,
            seed: 0,
        }
    }
}

/// The f64 copy of `model` the traces are measured on: its current weights (an int8 model
/// loads at 8 bits), its active BN sets, activations in float.
fn f64_copy(model: &Model) -> Result<Model> {
    let to64 = |t: &Tensor| -> Result<Tensor> { Ok(t.detach().to_dtype(DType::F64)?) };
    let mut copy = Model::init(model.meta.clone(), 0, &Device::Cpu)?;
    for i in 0..model.layers.len() {
        copy.weights[i] = to64(&model.weights[i])?;
        copy.bns[i] = match model.bns[i].get(model.bn_active[i]) {
            Some(bn) => vec![BatchNorm {
                gamma: to64(&bn.gamma)?,
                beta: to64(&bn.beta)?,
                running_mean: RefCell::new(to64(&bn.running_mean.borrow())?),
                running_var: RefCell::new(to64(&bn.running_var.borrow())?),
            }],
            None => vec![],
        };
    }
    copy.bn_active = vec![0; model.layers.len()];
    copy.fc_bias = to64(&model.fc_bias)?;
    Ok(copy)
}

/// The loss's data: `images` training images (seeded choice) plus N(0, σ²) noise from `seed`.
fn noisy_batches(data: &Dataset, sigma: f32, cfg: &HessianConfig) -> Result<Vec<(Tensor, Tensor)>> {
    if cfg.images == 0 || cfg.images > data.len() {
        return Err(Error::Invalid(format!(
            "a Hessian trace over {} images was asked for, the training set has {}",
            cfg.images,
            data.len()
        )));
    }
    if cfg.batch == 0 {
        return Err(Error::Invalid("the batch size must be ≥ 1".into()));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let indices = rand::seq::index::sample(&mut rng, data.len(), cfg.images).into_vec();
    indices
        .chunks(cfg.batch)
        .map(|idx| {
            let clean = data.batch(idx, &Device::Cpu)?;
            let x = if sigma > 0.0 {
                crate::noise::add_gaussian(&clean, sigma, &mut rng)?
            } else {
                clean
            };
            let labels: Vec<u32> = idx.iter().map(|&i| data.labels[i] as u32).collect();
            Ok((
                x.to_dtype(DType::F64)?,
                Tensor::new(labels.as_slice(), &Device::Cpu)?,
            ))
        })
        .collect()
}

/// ∇ of the mean cross-entropy over `batches` with respect to layer `layer`'s weights, at
/// `base + delta`.
fn layer_gradient(
    model: &mut Model,
    layer: usize,
    base: &Tensor,
    delta: &[f64],
    batches: &[(Tensor, Tensor)],
) -> Result<Vec<f64>> {
    let mut total = 0;
    for (x, _) in batches {
        total += x.dim(0)?;
    }
    let shift = Tensor::from_slice(delta, base.dims(), &Device::Cpu)?;
    let var = Var::from_tensor(&(base + shift)?)?;
    model.weights[layer] = var.as_tensor().clone();
    let mut sum = vec![0.0f64; delta.len()];
    for (x, labels) in batches {
        let share = x.dim(0)? as f64 / total as f64;
        let loss = (candle_nn::loss::cross_entropy(&model.forward(x)?, labels)? * share)?;
        let grads = loss.backward()?;
        let g = grads
            .get(var.as_tensor())
            .ok_or_else(|| Error::Invalid(format!("layer {layer} has no gradient")))?
            .flatten_all()?
            .to_vec1::<f64>()?;
        sum.iter_mut().zip(g).for_each(|(s, v)| *s += v);
    }
    Ok(sum)
}

/// Hutchinson trace of the loss Hessian per quantizable layer of `model` (forward order),
/// on `data` (training images, never the test set) with noise at the model's σ. Each layer
/// uses its own Rademacher stream (`cfg.seed` + layer + 1). `progress(layer)` is called as
/// each layer starts. Cost: 2 · samples · layers gradients over `images` images.
pub fn layer_traces(
    model: &Model,
    data: &Dataset,
    cfg: &HessianConfig,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<TraceEstimate>> {
    if !(cfg.relative_step > 0.0 && cfg.relative_step < 1.0) {
        return Err(Error::Invalid(format!(
            "the relative step must be in (0, 1), got {}",
            cfg.relative_step
        )));
    }
    let batches = noisy_batches(data, model.meta.sigma, cfg)?;
    let mut m = f64_copy(model)?;
    let mut out = Vec::with_capacity(m.layers.len());
    for layer in 0..m.layers.len() {
        progress(layer);
        let base = m.weights[layer].clone();
        let dim = base.elem_count();
        let rms = (base.sqr()?.sum_all()?.to_scalar::<f64>()? / dim as f64).sqrt();
        if rms == 0.0 {
            return Err(Error::Invalid(format!(
                "layer {layer} has all-zero weights: no scale for the finite-difference step"
            )));
        }
        let step = cfg.relative_step * rms;
        let seed = cfg.seed.wrapping_add(layer as u64 + 1);
        let mut grad = |delta: &[f64]| layer_gradient(&mut m, layer, &base, delta, &batches);
        let estimate = hutchinson_trace(dim, cfg.samples, step, seed, &mut grad);
        m.weights[layer] = base;
        out.push(estimate?);
    }
    Ok(out)
}

/// `bytes` (a model file) with `traces` recorded in its metadata; the tensors are untouched
/// (see [`crate::checkpoint::rewrite_meta`]).
pub fn store_traces(bytes: &[u8], traces: &[f64]) -> Result<Vec<u8>> {
    let mut meta = crate::checkpoint::load(bytes)?.model.meta;
    let layers = crate::model::architecture().len();
    if traces.len() != layers || traces.iter().any(|t| !t.is_finite()) {
        return Err(Error::Invalid(format!(
            "expected {layers} finite Hessian traces, got {traces:?}"
        )));
    }
    meta.hessian_traces = Some(traces.to_vec());
    crate::checkpoint::rewrite_meta(bytes, &meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed symmetric positive-definite matrix: A = BᵀB + I with B's entries from a
    /// small integer pattern.
    fn spd(n: usize) -> Vec<Vec<f64>> {
        let b: Vec<Vec<f64>> = (0..n)
            .map(|i| (0..n).map(|j| ((i * 7 + j * 3) % 5) as f64 - 2.0).collect())
            .collect();
        (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| {
                        let dot: f64 = (0..n).map(|k| b[k][i] * b[k][j]).sum();
                        dot + if i == j { 1.0 } else { 0.0 }
                    })
                    .collect()
            })
            .collect()
    }

    /// The gradient A(w + δ) of L = ½ wᵀAw at a fixed point w.
    fn quadratic(a: Vec<Vec<f64>>, w: Vec<f64>) -> impl FnMut(&[f64]) -> Result<Vec<f64>> {
        move |delta: &[f64]| {
            Ok(a.iter()
                .map(|row| {
                    row.iter()
                        .zip(&w)
                        .zip(delta)
                        .map(|((a, w), d)| a * (w + d))
                        .sum::<f64>()
                })
                .collect())
        }
    }

    #[test]
    fn hutchinson_is_exact_for_a_diagonal_quadratic() {
        // vᵀAv = Σ a_ii v_i² = tr A for every Rademacher v
        let diag = [3.0, 0.5, 2.0, 7.25, 1.0];
        let a: Vec<Vec<f64>> = (0..5)
            .map(|i| (0..5).map(|j| if i == j { diag[i] } else { 0.0 }).collect())
            .collect();
        let mut g = quadratic(a, vec![0.3, -1.0, 2.0, 0.0, 5.0]);
        let est = hutchinson_trace(5, 3, 0.01, 9, &mut g).unwrap();
        assert!((est.trace - 13.75).abs() < 1e-9, "{est:?}");
        assert!(est.std_error < 1e-9);
    }

    #[test]
    fn hutchinson_matches_the_trace_of_a_dense_spd_quadratic() {
        let n = 12;
        let a = spd(n);
        let trace: f64 = (0..n).map(|i| a[i][i]).sum();
        // Var(vᵀAv) = 2 Σ_{i≠j} a_ij² for Rademacher v: the tolerance is 4 standard errors
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        let samples = 400;
        let tolerance = 4.0 * (2.0 * off / samples as f64).sqrt();
        let mut g = quadratic(a, vec![1.0; n]);
        let est = hutchinson_trace(n, samples, 0.5, 1, &mut g).unwrap();
        assert!(
            (est.trace - trace).abs() < tolerance,
            "estimate {est:?}, trace {trace}, tolerance {tolerance}"
        );
        // the estimator's own standard error agrees with the formula's to within 25 %
        let formula = (2.0 * off / samples as f64).sqrt();
        assert!(
            (est.std_error / formula - 1.0).abs() < 0.25,
            "{est:?} vs {formula}"
        );
        // seeded: the same seed gives the same estimate, another seed another one
        let mut g = quadratic(spd(n), vec![1.0; n]);
        assert_eq!(hutchinson_trace(n, samples, 0.5, 1, &mut g).unwrap(), est);
        let mut g = quadratic(spd(n), vec![1.0; n]);
        assert_ne!(hutchinson_trace(n, samples, 0.5, 2, &mut g).unwrap(), est);
    }

    #[test]
    fn hutchinson_rejects_bad_settings_and_gradients() {
        let mut g = |_: &[f64]| Ok(vec![0.0; 2]);
        assert!(hutchinson_trace(0, 4, 0.1, 0, &mut g).is_err());
        assert!(hutchinson_trace(2, 1, 0.1, 0, &mut g).is_err());
        assert!(hutchinson_trace(2, 4, 0.0, 0, &mut g).is_err());
        assert!(hutchinson_trace(2, 4, f64::NAN, 0, &mut g).is_err());
        let err = hutchinson_trace(3, 4, 0.1, 0, &mut g).unwrap_err();
        assert!(err.to_string().contains("expected 3"), "{err}");
    }

    /// A fresh model, a handful of random "training" images.
    fn fixture() -> (Model, Dataset) {
        let model =
            Model::init(crate::model::ModelMeta::new("mnist", 0.25), 3, &Device::Cpu).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let n = 6;
        let pixels: Vec<u8> = (0..n * 784).map(|_| rng.random()).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        (model, Dataset::new(28, 28, 10, labels, pixels).unwrap())
    }

    #[test]
    fn the_fc_trace_matches_its_closed_form() {
        // For logits z = W x + b, the cross-entropy Hessian in W is (diag p − ppᵀ) ⊗ xxᵀ per
        // image, so tr H = mean_i Σ_c p_ic (1 − p_ic) · ‖x_i‖², with x_i the fc input.
        let (model, data) = fixture();
        let cfg = HessianConfig {
            images: 6,
            batch: 4,
            samples: 40,
            relative_step: 1e-7,
            seed: 11,
        };
        let est = layer_traces(&model, &data, &cfg, &mut |_| {}).unwrap();
        assert_eq!(est.len(), 8);
        // the same images and noise, the fc inputs by autograd of one logit per image
        let batches = noisy_batches(&data, 0.25, &cfg).unwrap();
        let mut m = f64_copy(&model).unwrap();
        let var = Var::from_tensor(&m.weights[7]).unwrap();
        m.weights[7] = var.as_tensor().clone();
        let mut expected = 0.0;
        for (x, _) in &batches {
            let logits = m.forward(x).unwrap();
            let p = candle_nn::ops::softmax(&logits, 1)
                .unwrap()
                .to_vec2::<f64>()
                .unwrap();
            for (i, p) in p.iter().enumerate() {
                let z0 = logits.get(i).unwrap().get(0).unwrap();
                let g = z0.backward().unwrap();
                let row0 = g.get(var.as_tensor()).unwrap().get(0).unwrap();
                let x2 = row0
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap();
                expected += p.iter().map(|p| p * (1.0 - p)).sum::<f64>() * x2;
            }
        }
        expected /= 6.0;
        let fc = est[7];
        assert!(
            (fc.trace - expected).abs() < 4.0 * fc.std_error,
            "estimate {fc:?}, closed form {expected}"
        );
        assert!(fc.std_error < 0.5 * expected, "{fc:?}");
        // with the ReLU states fixed every layer's Hessian is a Gauss–Newton term: PSD
        assert!(est.iter().all(|e| e.trace > 0.0), "{est:?}");
        // seeded: the same settings give the same traces
        let few = HessianConfig { samples: 2, ..cfg };
        let once = layer_traces(&model, &data, &few, &mut |_| {}).unwrap();
        assert_eq!(
            layer_traces(&model, &data, &few, &mut |_| {}).unwrap(),
            once
        );
        // on the plateau: a step 100× smaller gives the same traces (no ReLU flips)
        let smaller = HessianConfig {
            relative_step: 1e-9,
            ..few
        };
        for (a, b) in once
            .iter()
            .zip(layer_traces(&model, &data, &smaller, &mut |_| {}).unwrap())
        {
            assert!((a.trace - b.trace).abs() < 1e-5 * a.trace, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn layer_traces_reject_more_images_than_the_set_holds() {
        let (model, data) = fixture();
        let cfg = HessianConfig {
            images: 7,
            ..HessianConfig::default()
        };
        let err = layer_traces(&model, &data, &cfg, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("training set has 6"), "{err}");
    }
}
