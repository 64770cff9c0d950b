//! The base classifier: a small residual CNN for 28×28 grey images, defined once with candle
//! and used for training (native), evaluation (native and wasm) and as the reference for
//! faster executors.
//!
//! Architecture `bsnet8` (echoing ResNet-20 at MNIST scale), 8 quantizable layers in forward
//! order — the order in which bit policies list them:
//!
//! ```text
//! stem            conv 3×3  1→8   stride 1  28×28   + BN + ReLU
//! block1.conv1    conv 3×3  8→16  stride 2  → 14×14 + BN + ReLU
//! block1.conv2    conv 3×3 16→16  stride 1  14×14   + BN
//! block1.shortcut conv 1×1  8→16  stride 2  → 14×14 + BN      (added, then ReLU)
//! block2.conv1    conv 3×3 16→48  stride 2  → 7×7   + BN + ReLU
//! block2.conv2    conv 3×3 48→48  stride 1  7×7     + BN
//! block2.shortcut conv 1×1 16→48  stride 2  → 7×7   + BN      (added, then ReLU)
//! fc              flatten 48×7×7, linear 2352→10
//! ```
//!
//! About 2.17 M multiply-accumulates per image (see [`LayerSpec::macs`]). The head flattens
//! instead of pooling globally: on 28×28 digits the position of a stroke matters, and in a
//! one-epoch comparison the flattening head reached 98.4 % against 95.0 % for global pooling.

use crate::error::{Error, Result};
use candle_core::{DType, Device, Tensor, D};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal, Uniform};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;

pub const ARCH_NAME: &str = "bsnet8";
pub const IMAGE_SIDE: usize = 28;
pub const NUM_CLASSES: usize = 10;
/// Version of the checkpoint layout (see `checkpoint`).
pub const FORMAT_VERSION: u32 = 1;
const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    Conv,
    Linear,
}

/// Shape of one quantizable layer: what the bit policy, the cost model and the UI talk about.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LayerSpec {
    pub name: String,
    pub kind: LayerKind,
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    /// Spatial size of the input and output feature maps (1×1 for the linear layer).
    pub in_hw: [usize; 2],
    pub out_hw: [usize; 2],
}

impl LayerSpec {
    fn conv(
        name: &str,
        cin: usize,
        cout: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        in_side: usize,
    ) -> Self {
        let out = (in_side + 2 * padding - kernel) / stride + 1;
        Self {
            name: name.into(),
            kind: LayerKind::Conv,
            in_channels: cin,
            out_channels: cout,
            kernel,
            stride,
            padding,
            in_hw: [in_side, in_side],
            out_hw: [out, out],
        }
    }

    fn linear(name: &str, cin: usize, cout: usize) -> Self {
        Self {
            name: name.into(),
            kind: LayerKind::Linear,
            in_channels: cin,
            out_channels: cout,
            kernel: 1,
            stride: 1,
            padding: 0,
            in_hw: [1, 1],
            out_hw: [1, 1],
        }
    }

    /// `[out, in, k, k]` for convolutions, `[out, in]` for the linear layer.
    pub fn weight_shape(&self) -> Vec<usize> {
        match self.kind {
            LayerKind::Conv => vec![
                self.out_channels,
                self.in_channels,
                self.kernel,
                self.kernel,
            ],
            LayerKind::Linear => vec![self.out_channels, self.in_channels],
        }
    }

    /// Number of weights (the quantized parameters; biases and BN stay in float).
    pub fn weights(&self) -> usize {
        self.weight_shape().iter().product()
    }

    /// Multiply-accumulates per image.
    pub fn macs(&self) -> u64 {
        (self.weights() * self.out_hw[0] * self.out_hw[1]) as u64
    }
}

/// The layers of `bsnet8`, in forward order.
pub fn architecture() -> Vec<LayerSpec> {
    vec![
        LayerSpec::conv("stem", 1, 8, 3, 1, 1, 28),
        LayerSpec::conv("block1.conv1", 8, 16, 3, 2, 1, 28),
        LayerSpec::conv("block1.conv2", 16, 16, 3, 1, 1, 14),
        LayerSpec::conv("block1.shortcut", 8, 16, 1, 2, 0, 28),
        LayerSpec::conv("block2.conv1", 16, 48, 3, 2, 1, 14),
        LayerSpec::conv("block2.conv2", 48, 48, 3, 1, 1, 7),
        LayerSpec::conv("block2.shortcut", 16, 48, 1, 2, 0, 14),
        LayerSpec::linear("fc", 48 * 7 * 7, NUM_CLASSES),
    ]
}

/// Batch normalisation with running statistics (training mode uses batch statistics and
/// updates the running ones, evaluation mode uses the running ones).
pub struct BatchNorm {
    pub gamma: Tensor,
    pub beta: Tensor,
    pub running_mean: RefCell<Tensor>,
    pub running_var: RefCell<Tensor>,
}

impl BatchNorm {
    /// A copy that shares no storage (running statistics included).
    pub fn deep_copy(&self) -> Result<Self> {
        let copy = |t: &Tensor| -> Result<Tensor> { Ok(t.detach().copy()?) };
        Ok(Self {
            gamma: copy(&self.gamma)?,
            beta: copy(&self.beta)?,
            running_mean: RefCell::new(copy(&self.running_mean.borrow())?),
            running_var: RefCell::new(copy(&self.running_var.borrow())?),
        })
    }

    pub fn new(channels: usize, device: &Device) -> Result<Self> {
        Ok(Self {
            gamma: Tensor::ones(channels, DType::F32, device)?,
            beta: Tensor::zeros(channels, DType::F32, device)?,
            running_mean: RefCell::new(Tensor::zeros(channels, DType::F32, device)?),
            running_var: RefCell::new(Tensor::ones(channels, DType::F32, device)?),
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let c = x.dim(1)?;
        let as4 = |t: &Tensor| t.reshape((1, c, 1, 1));
        if !train {
            let rv = self.running_var.borrow();
            let rm = self.running_mean.borrow();
            let scale = (&self.gamma / (&*rv + BN_EPS)?.sqrt()?)?;
            let shift = (&self.beta - (&*rm * &scale)?)?;
            return Ok(x
                .broadcast_mul(&as4(&scale)?)?
                .broadcast_add(&as4(&shift)?)?);
        }
        let per_channel = x.transpose(0, 1)?.contiguous()?.flatten_from(1)?; // [C, N·H·W]
        let m = per_channel.dim(1)?;
        let mean = per_channel.mean_keepdim(1)?;
        let var = per_channel.broadcast_sub(&mean)?.sqr()?.mean_keepdim(1)?;
        {
            let (mean_d, var_d) = (mean.flatten_all()?.detach(), var.flatten_all()?.detach());
            let unbiased = (var_d * (m as f64 / (m.max(2) - 1) as f64))?;
            let mut rm = self.running_mean.borrow_mut();
            *rm = ((&*rm * (1.0 - BN_MOMENTUM))? + (mean_d * BN_MOMENTUM)?)?;
            let mut rv = self.running_var.borrow_mut();
            *rv = ((&*rv * (1.0 - BN_MOMENTUM))? + (unbiased * BN_MOMENTUM)?)?;
        }
        let inv_std = (as4(&var.flatten_all()?)? + BN_EPS)?.sqrt()?.recip()?;
        let normed = x
            .broadcast_sub(&as4(&mean.flatten_all()?)?)?
            .broadcast_mul(&inv_std)?;
        Ok(normed
            .broadcast_mul(&as4(&self.gamma)?)?
            .broadcast_add(&as4(&self.beta)?)?)
    }
}

/// What a checkpoint says about itself (stored as JSON in the safetensors metadata).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelMeta {
    pub format_version: u32,
    pub arch: String,
    /// `mnist` or `fashion`.
    pub dataset: String,
    /// The Gaussian noise level σ the model was trained with (and is meant to be smoothed with).
    pub sigma: f32,
    /// How it was trained (settings and the command that reproduces it).
    #[serde(default)]
    pub training: serde_json::Value,
    /// Measured clean test accuracy, keyed by configuration (e.g. `float`, `w4a4`).
    #[serde(default)]
    pub accuracy: BTreeMap<String, f64>,
    /// What the file holds: `float`, `int8` or `export` (see `checkpoint`).
    #[serde(default = "default_kind")]
    pub kind: String,
    /// The bit-widths a multi-bit model was trained at (one BN set and input scale each).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bits: Vec<u8>,
    /// The policy an export was written at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<serde_json::Value>,
    /// Hutchinson estimates of the Hessian trace of the loss per quantizable layer, forward
    /// order (`search::hessian`), once computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hessian_traces: Option<Vec<f64>>,
    /// A HASB supernet: mixed policies over `bits` were trained (per layer), and only those
    /// widths are accepted; otherwise a multi-bit model (uniform widths trained, the others
    /// borrow the nearest trained width's BN and clipping range).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub supernet: bool,
}

fn default_kind() -> String {
    "float".into()
}

impl ModelMeta {
    pub fn new(dataset: &str, sigma: f32) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            arch: ARCH_NAME.into(),
            dataset: dataset.into(),
            sigma,
            training: serde_json::Value::Null,
            accuracy: BTreeMap::new(),
            kind: default_kind(),
            bits: vec![],
            policy: None,
            hessian_traces: None,
            supernet: false,
        }
    }
}

/// Differentiable fake quantization used while training (LSQ, see `qat`): the model asks it
/// for the weights and the input it should really use in each layer. Defined here so that
/// the topology is written once and the training module depends on the model, not back.
pub trait TrainingQuantizer {
    /// The (fake-quantized) weights layer `i` uses in place of its float weights `w`.
    fn weight(&self, i: usize, w: &Tensor) -> Result<Tensor>;
    /// The (fake-quantized) input of layer `i` (never called for the stem).
    fn input(&self, i: usize, x: &Tensor) -> Result<Tensor>;
}

/// The classifier: weights per layer of [`architecture`], batch-norms per convolution (one
/// set per trained bit-width in multi-bit models), fc bias.
pub struct Model {
    pub layers: Vec<LayerSpec>,
    /// The float weights the forward pass uses: the trained float weights of a float model,
    /// or the dequantized weights of the current bit policy of a quantized one.
    pub weights: Vec<Tensor>,
    /// `bns[i][k]`: the batch-norm after convolution `i` for BN set `k` (empty for fc).
    pub bns: Vec<Vec<BatchNorm>>,
    /// The bit-width each BN set was trained at (empty: one float set).
    pub bn_bits: Vec<u8>,
    /// Which BN set each layer uses now.
    pub bn_active: Vec<usize>,
    /// Set only during quantization-aware training.
    pub training_quant: Option<Box<dyn TrainingQuantizer>>,
    pub fc_bias: Tensor,
    pub meta: ModelMeta,
    /// Fake quantization of each layer's input (`None`: float). The stem's input — the image
    /// plus Gaussian noise — is never quantized.
    pub input_quant: Vec<Option<ActQuant>>,
    /// The integers behind `weights` per layer, where a bit policy derived them (Double
    /// Rounding): what the fast executor's integer kernels multiply. `weights[i]` equals
    /// `q · scales[o]` exactly while this holds; anything that changes the weights otherwise
    /// leaves a stale entry, which the executor detects (it compares) and ignores.
    pub integer_weights: Vec<Option<IntegerWeights>>,
    /// When set, the forward pass records the largest input value each layer sees
    /// (activation calibration).
    input_max: RefCell<Option<Vec<f32>>>,
}

/// A layer's weights on an integer grid: weight `j` of output channel `o` is
/// `q[j] · scales[o]`, with `q` in the signed range of `bits`.
#[derive(Clone, Debug, PartialEq)]
pub struct IntegerWeights {
    pub bits: u8,
    /// In the layout of the weight tensor (`[out][in][k][k]` or `[out][in]`).
    pub q: Vec<i8>,
    /// One per output channel.
    pub scales: Vec<f32>,
}

/// Unsigned activation quantizer of a layer's input (after ReLU):
/// `clip(round_half_even(x / scale), 0, 2^bits − 1) · scale`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActQuant {
    pub scale: f32,
    pub bits: u8,
}

impl ActQuant {
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let hi = ((1u32 << self.bits) - 1) as f32;
        let values: Vec<f32> = x
            .flatten_all()?
            .to_vec1::<f32>()?
            .into_iter()
            .map(|v| (v / self.scale).round_ties_even().clamp(0.0, hi) * self.scale)
            .collect();
        Ok(Tensor::from_vec(values, x.dims(), x.device())?)
    }
}

impl Model {
    /// A freshly initialised model (Kaiming-normal convolutions), reproducible from `seed`.
    pub fn init(meta: ModelMeta, seed: u64, device: &Device) -> Result<Self> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let layers = architecture();
        let mut weights = Vec::new();
        let mut bns = Vec::new();
        for spec in &layers {
            let fan_in = spec.in_channels * spec.kernel * spec.kernel;
            let values: Vec<f32> = match spec.kind {
                LayerKind::Conv => {
                    let normal =
                        Normal::new(0.0, (2.0 / fan_in as f32).sqrt()).expect("positive std");
                    (0..spec.weights())
                        .map(|_| normal.sample(&mut rng))
                        .collect()
                }
                LayerKind::Linear => {
                    let bound = 1.0 / (fan_in as f32).sqrt();
                    let uniform = Uniform::new(-bound, bound).expect("non-empty range");
                    (0..spec.weights())
                        .map(|_| uniform.sample(&mut rng))
                        .collect()
                }
            };
            weights.push(Tensor::from_vec(values, spec.weight_shape(), device)?);
            bns.push(match spec.kind {
                LayerKind::Conv => vec![BatchNorm::new(spec.out_channels, device)?],
                LayerKind::Linear => vec![],
            });
        }
        let fc_bias = Tensor::zeros(NUM_CLASSES, DType::F32, device)?;
        let input_quant = vec![None; layers.len()];
        let layers_len = layers.len();
        let bn_active = vec![0; layers.len()];
        Ok(Self {
            layers,
            weights,
            bns,
            bn_bits: vec![],
            bn_active,
            training_quant: None,
            fc_bias,
            meta,
            input_quant,
            integer_weights: vec![None; layers_len],
            input_max: RefCell::new(None),
        })
    }

    /// The largest input value of every layer over `x` (evaluation mode), for calibrating
    /// activation quantizers.
    pub fn input_maxima(&self, x: &Tensor) -> Result<Vec<f32>> {
        *self.input_max.borrow_mut() = Some(vec![0.0; self.layers.len()]);
        let result = self.forward(x);
        let maxima = self.input_max.borrow_mut().take().expect("set above");
        result.map(|_| maxima)
    }

    /// A layer's input after its activation quantizer (and recorded during calibration).
    fn layer_input(&self, i: usize, x: &Tensor) -> Result<Tensor> {
        if let Some(maxima) = self.input_max.borrow_mut().as_mut() {
            maxima[i] = maxima[i].max(x.max_all()?.to_scalar::<f32>()?);
        }
        let x = match &self.input_quant[i] {
            Some(q) => q.apply(x)?,
            None => x.clone(),
        };
        match &self.training_quant {
            Some(q) if i > 0 => q.input(i, &x),
            _ => Ok(x),
        }
    }

    /// The weights layer `i` computes with (fake-quantized while training).
    fn layer_weight(&self, i: usize) -> Result<Tensor> {
        match &self.training_quant {
            Some(q) => q.weight(i, &self.weights[i]),
            None => Ok(self.weights[i].clone()),
        }
    }

    /// Gives every convolution one BN set per bit-width in `bits`, each a copy of its current
    /// BN (how multi-bit training starts from a float model).
    pub fn split_bn_per_bits(&mut self, bits: &[u8]) -> Result<()> {
        for sets in &mut self.bns {
            if let Some(bn) = sets.first() {
                let copies = bits.iter().map(|_| bn.deep_copy()).collect::<Result<_>>()?;
                *sets = copies;
            }
        }
        self.bn_bits = bits.to_vec();
        self.bn_active = vec![0; self.layers.len()];
        Ok(())
    }

    /// Gives every convolution one BN set per width of `bits`, each a copy of the set trained
    /// nearest to that width (how supernet training starts from a multi-bit model).
    pub fn rebase_bn_bits(&mut self, bits: &[u8]) -> Result<()> {
        let nearest: Vec<usize> = bits.iter().map(|&b| self.bn_set_for_bits(b)).collect();
        for sets in &mut self.bns {
            if sets.is_empty() {
                continue;
            }
            let copies = nearest
                .iter()
                .map(|&k| sets[k].deep_copy())
                .collect::<Result<_>>()?;
            *sets = copies;
        }
        self.bn_bits = bits.to_vec();
        self.bn_active = vec![0; self.layers.len()];
        Ok(())
    }

    /// The BN set trained at the bit-width nearest to `bits` (ties: the higher one).
    pub fn bn_set_for_bits(&self, bits: u8) -> usize {
        (0..self.bn_bits.len())
            .min_by_key(|&k| {
                let b = self.bn_bits[k];
                ((b as i32 - bits as i32).abs(), std::cmp::Reverse(b))
            })
            .unwrap_or(0)
    }

    /// Total multiply-accumulates per image.
    pub fn macs(&self) -> u64 {
        self.layers.iter().map(LayerSpec::macs).sum()
    }

    /// The batch-norm that follows convolution `i` under the current bit policy.
    pub fn bn_for(&self, i: usize) -> &BatchNorm {
        &self.bns[i][self.bn_active[i]]
    }

    fn conv_bn(&self, i: usize, x: &Tensor, train: bool) -> Result<Tensor> {
        let spec = &self.layers[i];
        let x = self.layer_input(i, x)?;
        let y = x.conv2d(&self.layer_weight(i)?, spec.padding, spec.stride, 1, 1)?;
        self.bn_for(i).forward_t(&y, train)
    }

    /// Logits `[B, 10]` for inputs `[B, 1, 28, 28]` in [0, 1] (plus noise, for smoothing).
    /// `train` selects batch statistics in BN (and updates the running ones).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let dims = x.dims();
        if dims.len() != 4 || dims[1] != 1 || dims[2] != IMAGE_SIDE || dims[3] != IMAGE_SIDE {
            return Err(Error::Invalid(format!(
                "the model takes images of shape [batch, 1, 28, 28], got {dims:?}"
            )));
        }
        let h0 = self.conv_bn(0, x, train)?.relu()?;
        let a = self.conv_bn(1, &h0, train)?.relu()?;
        let a = self.conv_bn(2, &a, train)?;
        let h1 = (a + self.conv_bn(3, &h0, train)?)?.relu()?;
        let b = self.conv_bn(4, &h1, train)?.relu()?;
        let b = self.conv_bn(5, &b, train)?;
        let h2 = (b + self.conv_bn(6, &h1, train)?)?.relu()?;
        let features = self.layer_input(7, &h2.flatten_from(1)?)?;
        Ok(features
            .matmul(&self.layer_weight(7)?.t()?)?
            .broadcast_add(&self.fc_bias)?)
    }

    /// Evaluation-mode logits.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_t(x, false)
    }

    /// Predicted class per image.
    pub fn predict(&self, x: &Tensor) -> Result<Vec<u32>> {
        Ok(self.forward(x)?.argmax(D::Minus1)?.to_vec1::<u32>()?)
    }

    /// The trainable tensors (weights, fc bias, BN γ and β), for the optimiser to replace by
    /// variables.
    pub fn trainable_mut(&mut self) -> Vec<&mut Tensor> {
        let mut out: Vec<&mut Tensor> = self.weights.iter_mut().collect();
        out.push(&mut self.fc_bias);
        for bn in self.bns.iter_mut().flatten() {
            out.push(&mut bn.gamma);
            out.push(&mut bn.beta);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Model {
        Model::init(ModelMeta::new("mnist", 0.25), 7, &Device::Cpu).unwrap()
    }

    #[test]
    fn architecture_has_eight_quantizable_layers_and_at_most_three_million_macs() {
        let layers = architecture();
        assert_eq!(layers.len(), 8);
        let macs: u64 = layers.iter().map(LayerSpec::macs).sum();
        assert_eq!(
            macs,
            56_448 + 225_792 + 451_584 + 25_088 + 338_688 + 1_016_064 + 37_632 + 23_520
        );
        assert!(macs <= 3_000_000);
        assert_eq!(layers[1].out_hw, [14, 14]);
        assert_eq!(layers[6].out_hw, [7, 7]);
    }

    #[test]
    fn forward_gives_ten_logits_per_image_and_rejects_wrong_shapes() {
        let m = fresh();
        let x = Tensor::zeros((3, 1, 28, 28), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(m.forward(&x).unwrap().dims(), &[3, 10]);
        assert_eq!(m.forward_t(&x, true).unwrap().dims(), &[3, 10]);
        let bad = Tensor::zeros((3, 1, 27, 28), DType::F32, &Device::Cpu).unwrap();
        assert!(m
            .forward(&bad)
            .unwrap_err()
            .to_string()
            .contains("[batch, 1, 28, 28]"));
    }

    #[test]
    fn init_is_reproducible_from_the_seed() {
        let a = fresh().weights[4]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let b = fresh().weights[4]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(a, b);
    }
}
