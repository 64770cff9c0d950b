//! The joint step of multi-bit training (DESIGN §3, the paper's Algorithm 1 as its authors
//! describe it): forward and backward once per width (or per sampled policy), the gradients
//! summed, then **one** optimiser step.
//!
//! ALRS acts on the per-width contributions *before* they are summed: the gradient that width
//! b sends to a layer's shared weight scale s_8 is multiplied by η_b, so under Adam (which
//! normalises a parameter's whole gradient) the factors still weigh the widths against each
//! other. The activation scales a_b belong to one width each, so for them a factor on the
//! gradient would be normalised away: their learning rate is η_b · `scale_lr` instead, one Adam
//! per width. Weights, BN and the fc bias take the plain sum (AdamW, weight decay).

use super::{alrs_factor, Lsq};
use crate::error::Result;
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

/// The gradients of one step, summed over its forward passes.
pub(crate) struct JointGradients {
    store: GradStore,
    /// Every tensor that is updated: the model's trainable ones and all the scales.
    tracked: Vec<Tensor>,
    /// `tracked[i]` is layer `weight_scale_of[i]`'s log s_8.
    weight_scale_of: Vec<Option<usize>>,
}

impl JointGradients {
    pub(crate) fn new(model_vars: &[Var], lsq: &Lsq) -> Self {
        let mut tracked: Vec<Tensor> = model_vars.iter().map(|v| v.as_tensor().clone()).collect();
        let mut weight_scale_of = vec![None; tracked.len()];
        for (layer, v) in lsq.weight_scale_vars().iter().enumerate() {
            tracked.push(v.as_tensor().clone());
            weight_scale_of.push(Some(layer));
        }
        for k in 0..lsq.bits().len() {
            for v in lsq.act_scale_vars(k) {
                tracked.push(v.as_tensor().clone());
                weight_scale_of.push(None);
            }
        }
        Self {
            store: GradStore::default(),
            tracked,
            weight_scale_of,
        }
    }

    /// Backpropagates `loss`, computed with the layers at `lsq.widths()`, and adds its
    /// gradients; with `alrs`, layer i's weight-scale gradient counts η of layer i's width.
    /// Returns that pass's weight-scale gradients before the factor (all layers, forward
    /// order, concatenated), for the disagreement statistics.
    pub(crate) fn add(&mut self, loss: &Tensor, lsq: &Lsq, alrs: bool) -> Result<Vec<f32>> {
        let grads = loss.backward()?;
        let widths = lsq.widths();
        let mut raw = Vec::new();
        for (t, of) in self.tracked.iter().zip(&self.weight_scale_of) {
            let Some(g) = grads.get(t) else { continue };
            let g = match of {
                Some(layer) => {
                    raw.extend(g.to_vec1::<f32>()?);
                    let eta = if alrs {
                        alrs_factor(lsq.bits()[widths[*layer]])
                    } else {
                        1.0
                    };
                    (g * eta)?
                }
                None => g.clone(),
            };
            let sum = match self.store.get(t) {
                Some(previous) => (previous + g)?,
                None => g,
            };
            self.store.insert(t, sum);
        }
        Ok(raw)
    }

    /// The summed gradient of `t`, if any pass reached it.
    #[cfg(test)]
    pub(crate) fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.store.get(t)
    }
}

/// The optimisers of the joint step (see the module note).
pub(crate) struct JointOptimisers {
    params: AdamW,
    weight_scales: AdamW,
    /// One per width, `act_scales[k]` ↔ `bits[k]`.
    act_scales: Vec<AdamW>,
    act_factors: Vec<f64>,
    lr: f64,
    scale_lr: f64,
}

impl JointOptimisers {
    pub(crate) fn new(
        model_vars: Vec<Var>,
        lsq: &Lsq,
        lr: f64,
        weight_decay: f64,
        scale_lr: f64,
        alrs: bool,
    ) -> Result<Self> {
        let scales = |lr| ParamsAdamW {
            lr,
            weight_decay: 0.0,
            ..Default::default()
        };
        let params = AdamW::new(
            model_vars,
            ParamsAdamW {
                lr,
                weight_decay,
                ..Default::default()
            },
        )?;
        let weight_scales = AdamW::new(lsq.weight_scale_vars().to_vec(), scales(scale_lr))?;
        let act_scales = (0..lsq.bits().len())
            .map(|k| Ok(AdamW::new(lsq.act_scale_vars(k), scales(scale_lr))?))
            .collect::<Result<Vec<_>>>()?;
        let act_factors = lsq
            .bits()
            .iter()
            .map(|&b| if alrs { alrs_factor(b) } else { 1.0 })
            .collect();
        Ok(Self {
            params,
            weight_scales,
            act_scales,
            act_factors,
            lr,
            scale_lr,
        })
    }

    /// One update from the summed gradients, every learning rate times `schedule` (cosine).
    pub(crate) fn step(&mut self, grads: &JointGradients, schedule: f64) -> Result<()> {
        self.params.set_learning_rate(self.lr * schedule);
        self.params.step(&grads.store)?;
        self.weight_scales
            .set_learning_rate(self.scale_lr * schedule);
        self.weight_scales.step(&grads.store)?;
        for (opt, eta) in self.act_scales.iter_mut().zip(&self.act_factors) {
            opt.set_learning_rate(self.scale_lr * eta * schedule);
            opt.step(&grads.store)?;
        }
        Ok(())
    }
}

/// How the weight-scale gradient of one width relates to the highest width's in the same step
/// (the disagreement the paper's Figure 2 describes), averaged over an epoch.
#[derive(Clone, Debug, Default, serde::Serialize, PartialEq)]
pub struct ScaleGradientAgreement {
    /// ‖g_b‖ / ‖g_top‖.
    pub norm_ratio: f32,
    /// cos(g_b, g_top).
    pub cosine: f32,
    /// Fraction of output channels whose gradient sign differs from the top width's.
    pub sign_disagreement: f32,
}

impl ScaleGradientAgreement {
    pub(crate) fn of(g: &[f32], top: &[f32]) -> Self {
        let dot: f64 = g
            .iter()
            .zip(top)
            .map(|(a, b)| (*a as f64) * (*b as f64))
            .sum();
        let norm = |v: &[f32]| v.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        let (ng, nt) = (norm(g), norm(top));
        let differ = g
            .iter()
            .zip(top)
            .filter(|(a, b)| a.signum() != b.signum() && **a != 0.0 && **b != 0.0)
            .count();
        Self {
            norm_ratio: if nt > 0.0 { (ng / nt) as f32 } else { 0.0 },
            cosine: if ng > 0.0 && nt > 0.0 {
                (dot / (ng * nt)) as f32
            } else {
                0.0
            },
            sign_disagreement: differ as f32 / g.len().max(1) as f32,
        }
    }

    /// Running mean: `self` holds the mean of `count` values.
    pub(crate) fn accumulate(&mut self, other: &Self, count: usize) {
        let w = 1.0 / (count + 1) as f32;
        self.norm_ratio += (other.norm_ratio - self.norm_ratio) * w;
        self.cosine += (other.cosine - self.cosine) * w;
        self.sign_disagreement += (other.sign_disagreement - self.sign_disagreement) * w;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Model, ModelMeta};
    use crate::qat::{into_vars, width_loss};
    use candle_core::Device;
    use std::rc::Rc;

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        let scale = want.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-5 * scale, "{what}[{i}]: {g} vs {w}");
        }
    }

    /// Two widths, 8 and 4, on eight synthetic images. The reference: each width's gradients
    /// from its own backward pass (nothing shared with the joint code but the model), combined
    /// by hand — weights g_8 + g_4, the shared weight scale g_8 + η_4·g_4 (η_4 = 0.01), each
    /// activation scale its own width's — and Adam's first step written out:
    /// θ' = θ·(1 − lr·λ) − lr·g/(|g| + ε) (m̂ = g and v̂ = g² after one step).
    #[test]
    fn one_step_over_two_widths_is_the_alrs_weighted_sum_of_their_gradients() {
        let dev = Device::Cpu;
        let mut model = Model::init(ModelMeta::new("synthetic", 0.25), 3, &dev).unwrap();
        let x = Tensor::rand(0f32, 1f32, (8, 1, 28, 28), &dev).unwrap();
        let labels = Tensor::new(&[0u32, 1, 2, 3, 4, 5, 6, 7], &dev).unwrap();
        let bits = [8u8, 4];
        let lsq = Rc::new(Lsq::init(&mut model, &bits, &x).unwrap());
        model.split_bn_per_bits(&bits).unwrap();
        let vars = into_vars(&mut model).unwrap();
        model.training_quant = Some(Box::new(lsq.clone()));

        let separate: Vec<_> = (0..2)
            .map(|k| {
                lsq.set_uniform(k);
                width_loss(&mut model, &lsq, &x, &labels)
                    .unwrap()
                    .backward()
                    .unwrap()
            })
            .collect();
        let mut joint = JointGradients::new(&vars, &lsq);
        for k in 0..2 {
            lsq.set_uniform(k);
            let loss = width_loss(&mut model, &lsq, &x, &labels).unwrap();
            joint.add(&loss, &lsq, true).unwrap();
        }
        let grad = |store: &GradStore, t: &Tensor| values(store.get(t).unwrap());
        let eta4 = 0.01f32;

        let weight = vars[1].as_tensor(); // conv 1's weights, shared by both widths
        let want: Vec<f32> = grad(&separate[0], weight)
            .iter()
            .zip(grad(&separate[1], weight))
            .map(|(a, b)| a + b)
            .collect();
        assert_close(
            &values(joint.get(weight).unwrap()),
            &want,
            "weight gradient",
        );

        let s8 = lsq.weight_scale_vars()[1].as_tensor().clone();
        let want_s8: Vec<f32> = grad(&separate[0], &s8)
            .iter()
            .zip(grad(&separate[1], &s8))
            .map(|(a, b)| a + eta4 * b)
            .collect();
        assert!(want_s8.iter().any(|g| *g != 0.0));
        assert_close(&values(joint.get(&s8).unwrap()), &want_s8, "s_8 gradient");

        for k in 0..2 {
            let a = lsq.act_scale_vars(k)[0].as_tensor().clone(); // layer 1's input at bits[k]
            let want = grad(&separate[k], &a);
            assert_close(&values(joint.get(&a).unwrap()), &want, "a_b gradient");
            assert!(separate[1 - k].get(&a).is_none_or(|g| values(g) == [0.0]));
        }

        // one step
        let (lr, wd, scale_lr) = (1e-3f32, 1e-2f32, 1e-2f32);
        let before_w = values(weight);
        let before_s8 = values(&s8);
        let a4 = lsq.act_scale_vars(1)[0].as_tensor().clone();
        let before_a4 = values(&a4);
        let mut opt = JointOptimisers::new(
            vars.clone(),
            &lsq,
            lr as f64,
            wd as f64,
            scale_lr as f64,
            true,
        )
        .unwrap();
        opt.step(&joint, 1.0).unwrap();
        let adam = |theta: &[f32], g: &[f32], lr: f32, wd: f32| -> Vec<f32> {
            theta
                .iter()
                .zip(g)
                .map(|(t, g)| t * (1.0 - lr * wd) - lr * g / (g.abs() + 1e-8))
                .collect()
        };
        assert_close(
            &values(weight),
            &adam(&before_w, &want, lr, wd),
            "weights after",
        );
        assert_close(
            &values(&s8),
            &adam(&before_s8, &want_s8, scale_lr, 0.0),
            "s_8 after",
        );
        let g_a4 = grad(&separate[1], &a4);
        assert_close(
            &values(&a4),
            &adam(&before_a4, &g_a4, scale_lr * eta4, 0.0),
            "a_4 after (learning rate η_4·scale_lr)",
        );
    }

    #[test]
    fn agreement_of_gradients_by_hand() {
        let a = ScaleGradientAgreement::of(&[1.0, -2.0, 2.0], &[1.0, 2.0, 2.0]);
        // ‖g‖ = 3 = ‖top‖; g·top = 1 − 4 + 4 = 1; one of three signs differs
        assert!((a.norm_ratio - 1.0).abs() < 1e-6);
        assert!((a.cosine - 1.0 / 9.0).abs() < 1e-6);
        assert!((a.sign_disagreement - 1.0 / 3.0).abs() < 1e-6);
    }
}
