//! The GPU executor: `bsnet8`'s forward pass over a batch of noisy copies of one image, the
//! noise drawn on the GPU, only the class counts read back.
//!
//! Per chunk of copies (at most the executor's capacity, sized from the adapter's limits):
//! one dispatch draws x + σ·ε (`noise.wgsl`), seven run the convolutions with their fused
//! epilogues (`conv.wgsl`, one pipeline per layer shape), one runs the head, the argmax and the count (`classify.wgsl`).
//! The lowering mirrors `exec::cpu` map for map, so CPU and GPU compute the same function;
//! the weights either come from an `exec::Plan` (any model) or are derived on the GPU from
//! the int8 masters by Double Rounding ([`GpuExecutor::set_policy`]).
//!
//! Two arithmetics, as on the CPU ([`Arithmetic`]): float (dequantized weights, activation
//! fake-quantizers; the default here) and, after [`GpuExecutor::integer_path`], the integer
//! path of `exec::int_plan` — levels and integer weights summed in i32, requantized by the
//! same float factors, products never fused — which gives the CPU's logits bit for bit.

use super::device::Gpu;
use super::weights::{DerivedWeights, GpuWeights};
use crate::error::{Error, Result};
use crate::exec::int_plan::{multiplier, IntPlan};
use crate::exec::plan::{fold_batch_norm, Plan, Quantizer, FC_LANES};
use crate::exec::Arithmetic;
use crate::model::{architecture, ActQuant, LayerSpec, Model, NUM_CLASSES};
use crate::quant::{Policy, Switchable};
#[cfg(not(target_arch = "wasm32"))]
use crate::smoothing::classifier::BaseClassifier;
use crate::smoothing::noise::{NoisyCopies, IMAGE_PIXELS};
use std::ops::Range;

const NOISE: &str = include_str!("shaders/noise.wgsl");
const CONV: &str = include_str!("shaders/conv.wgsl");
const CLASSIFY: &str = include_str!("shaders/classify.wgsl");

/// Noisy copies per chunk unless the adapter allows fewer: ~135 MB of feature maps.
pub const DEFAULT_CAPACITY: usize = 1024;
/// Invocations of the noise kernel per copy: one per four pixels.
const QUADS: usize = IMAGE_PIXELS / 4;

/// `Batch` in `common.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct BatchParams {
    count: u32,
    sample_lo: u32,
    sample_hi: u32,
    image: u32,
    seed_lo: u32,
    seed_hi: u32,
    sigma: f32,
    unused: u32,
}

/// `Conv` in `conv.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ConvParams {
    cin: u32,
    cout4: u32,
    k: u32,
    stride: u32,
    pad: u32,
    in_side: u32,
    out_side: u32,
    flags: u32,
    weight_first: u32,
    shift_first: u32,
    q0_on: u32,
    q1_on: u32,
    q0_scale: f32,
    q0_hi: f32,
    q1_scale: f32,
    q1_hi: f32,
    /// Always 0: the shader XORs products with it so that no compiler fuses them.
    zero: u32,
    unused: [u32; 3],
}

/// `flags` of `conv.wgsl` beyond ReLU, residual and second destination.
const INTEGER_LAYER: u32 = 8;
const UNFUSED_SUMS: u32 = 16;
const LEVELS_OUT: u32 = 32;

/// `Head` in `classify.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct HeadParams {
    weight_first: u32,
    inputs: u32,
    integer: u32,
    zero: u32,
    bias: [f32; 12],
    multiplier: [f32; 12],
}

/// The feature maps of one copy (NHWC, no border), named as in `exec::cpu`: where two
/// layers read one map through different activation quantizers each gets its own copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Map {
    X,
    H0For1,
    H0For3,
    S1,
    A1,
    H1For4,
    H1For6,
    S2,
    B1,
    H2,
}

const MAPS: [Map; 10] = [
    Map::X,
    Map::H0For1,
    Map::H0For3,
    Map::S1,
    Map::A1,
    Map::H1For4,
    Map::H1For6,
    Map::S2,
    Map::B1,
    Map::H2,
];

impl Map {
    /// f32 values per copy.
    fn len(self) -> usize {
        match self {
            Map::X => IMAGE_PIXELS,
            Map::H0For1 | Map::H0For3 => 28 * 28 * 8,
            Map::S1 | Map::A1 | Map::H1For4 | Map::H1For6 => 14 * 14 * 16,
            Map::S2 | Map::B1 | Map::H2 => 7 * 7 * 48,
        }
    }
}

/// One convolution of the forward pass: layer, input, residual, ReLU, destinations with
/// the layer whose input quantizer each passes through (7: the head).
struct Step {
    layer: usize,
    input: Map,
    residual: Option<Map>,
    relu: bool,
    dests: &'static [(Map, Option<usize>)],
}

/// `exec::cpu::forward_image`, step for step.
const STEPS: [Step; 7] = [
    Step {
        layer: 0,
        input: Map::X,
        residual: None,
        relu: true,
        dests: &[(Map::H0For1, Some(1)), (Map::H0For3, Some(3))],
    },
    Step {
        layer: 3,
        input: Map::H0For3,
        residual: None,
        relu: false,
        dests: &[(Map::S1, None)],
    },
    Step {
        layer: 1,
        input: Map::H0For1,
        residual: None,
        relu: true,
        dests: &[(Map::A1, Some(2))],
    },
    Step {
        layer: 2,
        input: Map::A1,
        residual: Some(Map::S1),
        relu: true,
        dests: &[(Map::H1For4, Some(4)), (Map::H1For6, Some(6))],
    },
    Step {
        layer: 6,
        input: Map::H1For6,
        residual: None,
        relu: false,
        dests: &[(Map::S2, None)],
    },
    Step {
        layer: 4,
        input: Map::H1For4,
        residual: None,
        relu: true,
        dests: &[(Map::B1, Some(5))],
    },
    Step {
        layer: 5,
        input: Map::B1,
        residual: Some(Map::S2),
        relu: true,
        dests: &[(Map::H2, Some(7))],
    },
];

/// What the forward pass needs besides the weights: per convolution the batch-norm shift,
/// per layer its input quantizer, the head's bias; on the integer path also the
/// requantization multipliers of the layers after the stem and of the head.
struct Lowered {
    shifts: Vec<Vec<f32>>,
    quant: Vec<Option<Quantizer>>,
    bias: [f32; FC_LANES],
    integer: Option<IntegerFactors>,
}

/// `m = (s_a · s_w) · γ/√(var + ε)` per output channel of convolutions 1..=6, and the
/// head's `s_a · s_w`.
struct IntegerFactors {
    multipliers: Vec<Vec<f32>>,
    head: [f32; FC_LANES],
}

impl Lowered {
    fn of_plan(plan: &Plan) -> Self {
        let mut quant: Vec<_> = plan.convs.iter().map(|c| c.input_quant).collect();
        quant.push(plan.fc.input_quant);
        Self {
            shifts: plan.convs.iter().map(|c| c.shift.clone()).collect(),
            quant,
            bias: plan.fc.bias,
            integer: None,
        }
    }

    /// The integer path: the float stem's shift, then the integer layers' factors.
    fn of_int_plan(ip: &IntPlan) -> Self {
        let mut shifts = vec![ip.stem.shift.clone()];
        shifts.extend(ip.convs.iter().map(|c| c.shift.clone()));
        let mut quant = vec![None];
        quant.extend(ip.levels[1..].iter().copied().map(Some));
        let mut multipliers = vec![vec![0.0; ip.stem.cout]];
        multipliers.extend(ip.convs.iter().map(|c| c.multiplier.clone()));
        Self {
            shifts,
            quant,
            bias: ip.fc.bias,
            integer: Some(IntegerFactors {
                multipliers,
                head: ip.fc.multiplier,
            }),
        }
    }
}

/// The requantization factors of the integer path at `policy`, as `exec::int_plan` computes
/// them from the model `switchable.apply` makes: `(s_a · s_w[o]) · bn_scale[o]` per
/// convolution after the stem, `s_a · s_w[o]` for the head (`s_w` at the layer's width).
fn integer_factors(
    switchable: &Switchable,
    policy: &Policy,
    fold: &[Vec<f32>],
    quant: &[Option<Quantizer>],
) -> Result<IntegerFactors> {
    let n = switchable.masters.len();
    let mut multipliers = vec![vec![0.0; fold[0].len()]];
    let mut head = [0.0; FC_LANES];
    for i in 1..n {
        let s_w = switchable.masters[i].scales_at(policy.weight_bits[i])?;
        let s_a = quant[i]
            .ok_or_else(|| Error::Model(format!("layer {i} has no input quantizer")))?
            .scale;
        if i < n - 1 {
            multipliers.push(
                s_w.iter()
                    .zip(&fold[i])
                    .map(|(&s, &f)| multiplier(s_a, s, f))
                    .collect(),
            );
        } else {
            for (h, &s) in head.iter_mut().zip(&s_w) {
                *h = multiplier(s_a, s, 1.0);
            }
        }
    }
    Ok(IntegerFactors { multipliers, head })
}

/// The integer path's weights in the GPU layout of `weights::plan_weights`, as f32 holding
/// integers (exact): the float stem's folded weights, then each convolution's integers
/// from `[cout/16][ky][kx][cin/2][16][2]` to `[ky][kx][cin][cout]`, the head's from
/// `[inputs/2][16][2]` to `[inputs][16]`.
fn int_plan_weights(ip: &IntPlan, stem: Vec<f32>) -> Vec<Vec<f32>> {
    use crate::exec::int_plan::{INT_BLOCK, PAIR};
    let mut out = vec![stem];
    for c in &ip.convs {
        let (k, cin, cout) = (c.kernel, c.cin, c.cout);
        let mut w = vec![0.0; c.weights.len()];
        for o in 0..cout {
            for ky in 0..k {
                for kx in 0..k {
                    for ci in 0..cin {
                        let tap = (o / INT_BLOCK * k + ky) * k + kx;
                        let src = ((tap * (cin / PAIR) + ci / PAIR) * INT_BLOCK + o % INT_BLOCK)
                            * PAIR
                            + ci % PAIR;
                        w[((ky * k + kx) * cin + ci) * cout + o] = f32::from(c.weights[src]);
                    }
                }
            }
        }
        out.push(w);
    }
    let fc = &ip.fc;
    let mut w = vec![0.0; fc.inputs * FC_LANES];
    for i in 0..fc.inputs {
        for o in 0..FC_LANES {
            w[i * FC_LANES + o] =
                f32::from(fc.weights[((i / PAIR) * FC_LANES + o) * PAIR + i % PAIR]);
        }
    }
    out.push(w);
    out
}

/// `conv.wgsl` with the layer's shape filled in as constants.
fn conv_source(spec: &LayerSpec) -> String {
    [
        ("__CIN__", spec.in_channels),
        ("__COUT4__", spec.out_channels / 4),
        ("__K__", spec.kernel),
        ("__STRIDE__", spec.stride),
        ("__PAD__", spec.padding),
        ("__IN_SIDE__", spec.in_hw[0]),
        ("__OUT_SIDE__", spec.out_hw[0]),
    ]
    .iter()
    .fold(CONV.to_string(), |s, (name, value)| {
        s.replace(name, &value.to_string())
    })
}

/// The largest chunk of copies the adapter's limits allow (the biggest map must fit one
/// storage binding).
pub fn max_capacity(gpu: &Gpu) -> usize {
    let limits = gpu.limits();
    let binding = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size);
    let largest = MAPS.iter().map(|m| m.len()).max().expect("maps") as u64 * 4;
    (binding / largest) as usize
}

/// `bsnet8` on a GPU. Buffers are allocated once for `capacity` copies and reused by every
/// call; larger requests run in chunks. Implements [`BaseClassifier`], including
/// [`BaseClassifier::counts`]: certification draws its noise on the GPU and reads back only
/// the ten counts per batch.
pub struct GpuExecutor {
    gpu: Gpu,
    capacity: usize,
    weights: GpuWeights,
    maps: Vec<wgpu::Buffer>,
    pixels: wgpu::Buffer,
    shifts: wgpu::Buffer,
    multipliers: wgpu::Buffer,
    /// The integer path is asked for ([`integer_path`](Self::integer_path)) …
    integer_wanted: bool,
    /// … and runs (the model has one).
    integer: bool,
    shift_first: Vec<usize>,
    batch: wgpu::Buffer,
    conv_params: Vec<wgpu::Buffer>,
    head: wgpu::Buffer,
    logits: wgpu::Buffer,
    counts: wgpu::Buffer,
    counts_staging: wgpu::Buffer,
    logits_staging: wgpu::Buffer,
    noise: (wgpu::ComputePipeline, wgpu::BindGroup),
    convs: Vec<(wgpu::ComputePipeline, wgpu::BindGroup)>,
    classify: (wgpu::ComputePipeline, wgpu::BindGroup),
    dispatches: u64,
}

impl GpuExecutor {
    /// Lowers `model` (its current weights and quantizers, via [`Plan`]) onto `gpu`, with
    /// chunks of [`DEFAULT_CAPACITY`] copies or what the adapter allows.
    pub fn new(gpu: &Gpu, model: &Model) -> Result<Self> {
        Self::with_capacity(gpu, model, DEFAULT_CAPACITY.min(max_capacity(gpu)))
    }

    /// As [`new`](Self::new), with chunks of `capacity` copies (1..=[`max_capacity`]).
    pub fn with_capacity(gpu: &Gpu, model: &Model, capacity: usize) -> Result<Self> {
        let max = max_capacity(gpu);
        if !(1..=max).contains(&capacity) {
            return Err(Error::Invalid(format!(
                "the GPU executor's chunk must hold 1 to {max} copies on this adapter, got {capacity}"
            )));
        }
        let plan = Plan::lower(model)?;
        let layers = architecture();
        let weights = GpuWeights::new(gpu, &layers);
        let maps: Vec<_> = MAPS
            .iter()
            .map(|m| gpu.storage(&format!("{m:?}"), (capacity * m.len() * 4) as u64))
            .collect();
        let map = |m: Map| &maps[MAPS.iter().position(|&n| n == m).expect("map")];
        let mut shift_first = Vec::new();
        let mut channels = 0;
        for c in &plan.convs {
            shift_first.push(channels);
            channels += c.cout;
        }
        let shifts = gpu.storage("batch-norm shifts", (channels * 4) as u64);
        let multipliers = gpu.storage("requantization multipliers", (channels * 4) as u64);
        let pixels = gpu.storage("image", (IMAGE_PIXELS * 4) as u64);
        let batch = gpu.uniform("batch", size_of::<BatchParams>() as u64);
        let conv_params: Vec<_> = (0..plan.convs.len())
            .map(|_| gpu.uniform("convolution", size_of::<ConvParams>() as u64))
            .collect();
        let head = gpu.uniform("head", size_of::<HeadParams>() as u64);
        let logits_bytes = (capacity * NUM_CLASSES * 4) as u64;
        let logits = gpu.storage("logits", logits_bytes);
        let counts = gpu.storage("counts", (NUM_CLASSES * 4) as u64);
        let (dummy_read, dummy_write) = (gpu.storage("unused", 16), gpu.storage("unused", 16));

        let pipeline = gpu.pipeline("noise", NOISE, "add_noise");
        let bind = gpu.bind(&pipeline, &[&batch, &pixels, map(Map::X)]);
        let noise = (pipeline, bind);
        let convs = STEPS
            .iter()
            .map(|step| {
                let source = conv_source(&layers[step.layer]);
                let pipeline = gpu.pipeline("convolution", &source, "convolve");
                let residual = step.residual.map_or(&dummy_read, map);
                let dest1 = step.dests.get(1).map_or(&dummy_write, |d| map(d.0));
                let bind = gpu.bind(
                    &pipeline,
                    &[
                        &batch,
                        &conv_params[step.layer],
                        map(step.input),
                        &weights.folded,
                        &shifts,
                        residual,
                        map(step.dests[0].0),
                        dest1,
                        &multipliers,
                    ],
                );
                (pipeline, bind)
            })
            .collect();
        let pipeline = gpu.pipeline("classify", CLASSIFY, "classify");
        let bind = gpu.bind(
            &pipeline,
            &[
                &batch,
                &head,
                map(Map::H2),
                &weights.folded,
                &logits,
                &counts,
            ],
        );
        let classify = (pipeline, bind);
        let mut exec = Self {
            gpu: gpu.clone(),
            capacity,
            counts_staging: gpu.staging((NUM_CLASSES * 4) as u64),
            logits_staging: gpu.staging(logits_bytes),
            weights,
            maps,
            pixels,
            shifts,
            multipliers,
            integer_wanted: false,
            integer: false,
            shift_first,
            batch,
            conv_params,
            head,
            logits,
            counts,
            noise,
            convs,
            classify,
            dispatches: 0,
        };
        exec.load_plan(&plan);
        gpu.check()?;
        Ok(exec)
    }

    /// Re-lowers `model` (after its policy changed on the CPU), keeping every buffer.
    pub fn reload(&mut self, model: &Model) -> Result<()> {
        let plan = Plan::lower(model)?;
        match self.integer_wanted {
            true => self.load_model(model, &plan)?,
            false => self.load_plan(&plan),
        }
        Ok(())
    }

    /// Runs `model` on the integer path from now on where it has one (a quantized model at
    /// widths ≤ 8; see `IntPlan::lower`), else on the float path, as the CPU executor does.
    pub fn integer_path(mut self, model: &Model) -> Result<Self> {
        self.integer_wanted = true;
        self.reload(model)?;
        Ok(self)
    }

    /// The arithmetic the next call runs.
    pub fn arithmetic(&self) -> Arithmetic {
        match self.integer {
            true => Arithmetic::Integer,
            false => Arithmetic::Float,
        }
    }

    fn load_plan(&mut self, plan: &Plan) {
        self.weights.upload(&self.gpu, plan);
        self.integer = false;
        self.write_lowered(&Lowered::of_plan(plan));
    }

    /// The integer path where `model` has one, else the float path.
    fn load_model(&mut self, model: &Model, plan: &Plan) -> Result<()> {
        let Some(ip) = IntPlan::lower(model, &plan.convs[0])? else {
            self.load_plan(plan);
            return Ok(());
        };
        let stem = super::weights::plan_weights(plan).swap_remove(0);
        self.weights
            .upload_values(&self.gpu, &int_plan_weights(&ip, stem));
        self.integer = true;
        self.write_lowered(&Lowered::of_int_plan(&ip));
        Ok(())
    }

    /// Switches to `policy` by Double Rounding on the GPU: every layer's weights derived from
    /// the int8 masters of `switchable` by the rounding shift, dequantized and folded with
    /// the batch-norm set `model` trained nearest to each layer's width — one dispatch; the
    /// activation quantizers at the policy's widths. The same function as
    /// `switchable.apply(model, policy)` followed by [`reload`](Self::reload), bit for bit in
    /// the weights. An invalid policy is rejected before anything is written or dispatched.
    /// On the integer path ([`integer_path`](Self::integer_path)) the same dispatch leaves the
    /// integers themselves for the layers after the stem, and their requantization factors
    /// come from the same scales as `exec::int_plan`'s: bit for bit the CPU's integer path.
    pub fn set_policy(
        &mut self,
        model: &Model,
        switchable: &Switchable,
        policy: &Policy,
    ) -> Result<()> {
        let layers = architecture();
        policy.validate(layers.len())?;
        if model.layers != layers || model.bns.len() != layers.len() {
            return Err(Error::Model(
                "the GPU executor runs the bsnet8 architecture only; this model's layers differ"
                    .into(),
            ));
        }
        self.weights.check_masters(&switchable.masters)?;
        if switchable.act_scales.len() != layers.len() {
            return Err(Error::Model(format!(
                "{} activation scales for {} layers",
                switchable.act_scales.len(),
                layers.len()
            )));
        }
        let mut fold = Vec::new();
        let mut shifts = Vec::new();
        for (i, spec) in layers.iter().enumerate().take(STEPS.len()) {
            let set = model.bn_set_for_bits(policy.weight_bits[i]);
            let bn = model.bns[i].get(set).ok_or_else(|| {
                Error::Model(format!("layer {}: no batch-norm set {set}", spec.name))
            })?;
            let (scale, shift) = fold_batch_norm(bn, spec.out_channels, &spec.name)?;
            fold.push(scale);
            shifts.push(shift);
        }
        // The stem's input (image + noise) is never quantized.
        let mut quant = vec![None];
        for (i, act) in switchable.act_scales.iter().enumerate().skip(1) {
            let bits = policy.act_bits[i];
            let q = ActQuant {
                scale: act.scale_at(bits),
                bits,
            };
            quant.push(Some(Quantizer::new(&q)?));
        }
        let b = model.fc_bias.flatten_all()?.to_vec1::<f32>()?;
        if b.len() != NUM_CLASSES {
            return Err(Error::Model("fc bias of the wrong size".into()));
        }
        let mut bias = [0.0; FC_LANES];
        bias[..NUM_CLASSES].copy_from_slice(&b);
        let integer = match self.integer_wanted {
            true => Some(integer_factors(switchable, policy, &fold, &quant)?),
            false => None,
        };
        let encoder = self.weights.derive(
            &self.gpu,
            &switchable.masters,
            &policy.weight_bits,
            &fold,
            integer.is_some(),
        )?;
        self.integer = integer.is_some();
        self.write_lowered(&Lowered {
            shifts,
            quant,
            bias,
            integer,
        });
        self.gpu.submit(encoder);
        self.dispatches += 1;
        Ok(())
    }

    /// The weights the last [`set_policy`](Self::set_policy) derived, read back (checks).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn derived_weights(&self) -> Result<DerivedWeights> {
        pollster::block_on(self.derived_weights_async())
    }

    /// [`derived_weights`](Self::derived_weights) without blocking.
    pub async fn derived_weights_async(&self) -> Result<DerivedWeights> {
        self.weights.read(&self.gpu).await
    }

    fn write_lowered(&self, lowered: &Lowered) {
        let queue = &self.gpu.queue;
        for (first, shift) in self.shift_first.iter().zip(&lowered.shifts) {
            queue.write_buffer(
                &self.shifts,
                (first * 4) as u64,
                bytemuck::cast_slice(shift),
            );
        }
        if let Some(int) = &lowered.integer {
            for (first, m) in self.shift_first.iter().zip(&int.multipliers) {
                queue.write_buffer(
                    &self.multipliers,
                    (first * 4) as u64,
                    bytemuck::cast_slice(m),
                );
            }
        }
        let integer = lowered.integer.is_some();
        let layers = architecture();
        for step in &STEPS {
            let spec = &layers[step.layer];
            let q = |d: usize| {
                step.dests
                    .get(d)
                    .and_then(|(_, layer)| layer.and_then(|l| lowered.quant[l]))
            };
            let (q0, q1) = (q(0), q(1));
            let params = ConvParams {
                cin: spec.in_channels as u32,
                cout4: (spec.out_channels / 4) as u32,
                k: spec.kernel as u32,
                stride: spec.stride as u32,
                pad: spec.padding as u32,
                in_side: spec.in_hw[0] as u32,
                out_side: spec.out_hw[0] as u32,
                flags: u32::from(step.relu)
                    | (u32::from(step.residual.is_some()) << 1)
                    | (u32::from(step.dests.len() > 1) << 2)
                    | match (integer, step.layer) {
                        (false, _) => 0,
                        (true, 0) => UNFUSED_SUMS | LEVELS_OUT,
                        (true, _) => INTEGER_LAYER | LEVELS_OUT,
                    },
                weight_first: (self.weights.layout.folded[step.layer] / 4) as u32,
                shift_first: (self.shift_first[step.layer] / 4) as u32,
                q0_on: u32::from(q0.is_some()),
                q1_on: u32::from(q1.is_some()),
                q0_scale: q0.map_or(1.0, |q| q.scale),
                q0_hi: q0.map_or(0.0, |q| q.hi),
                q1_scale: q1.map_or(1.0, |q| q.scale),
                q1_hi: q1.map_or(0.0, |q| q.hi),
                zero: 0,
                unused: [0; 3],
            };
            queue.write_buffer(
                &self.conv_params[step.layer],
                0,
                bytemuck::bytes_of(&params),
            );
        }
        let fc = layers.len() - 1;
        let mut bias = [0.0; 12];
        bias.copy_from_slice(&lowered.bias[..12]);
        let mut multiplier = [0.0; 12];
        if let Some(int) = &lowered.integer {
            multiplier.copy_from_slice(&int.head[..12]);
        }
        let head = HeadParams {
            weight_first: (self.weights.layout.folded[fc] / 4) as u32,
            inputs: layers[fc].in_channels as u32,
            integer: u32::from(integer),
            zero: 0,
            bias,
            multiplier,
        };
        queue.write_buffer(&self.head, 0, bytemuck::bytes_of(&head));
    }

    /// Copies per chunk.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Dispatches recorded so far (Double Rounding, noise, convolutions, heads).
    pub fn dispatches(&self) -> u64 {
        self.dispatches
    }

    /// The adapter this executor runs on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Records one chunk of `count` copies: the noise (unless the inputs were written from
    /// the host), the seven convolutions, the head with the count.
    fn record_chunk(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        count: usize,
        noise: bool,
    ) -> Result<()> {
        let gpu = &self.gpu;
        let mut n = 0;
        if noise {
            gpu.dispatch(
                encoder,
                &self.noise.0,
                &self.noise.1,
                (count * QUADS) as u64,
            )?;
            n += 1;
        }
        let layers = architecture();
        for (step, (pipeline, bind)) in STEPS.iter().zip(&self.convs) {
            let spec = &layers[step.layer];
            let invocations = count * spec.out_hw[0] * spec.out_hw[1];
            gpu.dispatch(encoder, pipeline, bind, invocations as u64)?;
            n += 1;
        }
        gpu.dispatch(encoder, &self.classify.0, &self.classify.1, count as u64)?;
        self.dispatches += n + 1;
        Ok(())
    }

    fn write_batch(&self, copies: Option<&NoisyCopies>, first: u64, count: usize) {
        let (image, seed, sigma) = copies.map_or((0, 0, 0.0), |c| {
            (c.key().image_index, c.key().seed, c.sigma())
        });
        let params = BatchParams {
            count: count as u32,
            sample_lo: first as u32,
            sample_hi: (first >> 32) as u32,
            image,
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            sigma,
            unused: 0,
        };
        self.gpu
            .queue
            .write_buffer(&self.batch, 0, bytemuck::bytes_of(&params));
    }

    /// Uploads the image of `copies` and starts an encoder that zeroes the class counts.
    fn begin_noisy(&mut self, copies: &NoisyCopies) -> wgpu::CommandEncoder {
        self.gpu
            .queue
            .write_buffer(&self.pixels, 0, bytemuck::cast_slice(copies.image()));
        let mut encoder = self.gpu.encoder();
        encoder.clear_buffer(&self.counts, 0, None);
        encoder
    }

    /// The chunks (first sample, copies) that cover `samples`, each at most the capacity.
    fn chunks(&self, samples: Range<u64>) -> impl Iterator<Item = (u64, usize)> {
        let capacity = self.capacity as u64;
        (samples.start..samples.end)
            .step_by(self.capacity)
            .map(move |first| (first, (samples.end - first).min(capacity) as usize))
    }

    /// Records the chunk of `count` copies from sample `first` into `encoder`: its batch
    /// parameters are written now, so the encoder must be submitted before the next chunk's.
    fn noisy_chunk(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        copies: &NoisyCopies,
        first: u64,
        count: usize,
    ) -> Result<()> {
        self.write_batch(Some(copies), first, count);
        self.record_chunk(encoder, count, true)
    }

    /// Class counts of the noisy copies `samples` of `copies`, noise drawn on the GPU (the
    /// counter-based generator of `smoothing::noise`); only the counts are read back.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn noisy_counts(&mut self, copies: &NoisyCopies, samples: Range<u64>) -> Result<Vec<u64>> {
        pollster::block_on(self.noisy_counts_async(copies, samples))
    }

    /// [`noisy_counts`](Self::noisy_counts) without blocking (the browser's way).
    pub async fn noisy_counts_async(
        &mut self,
        copies: &NoisyCopies,
        samples: Range<u64>,
    ) -> Result<Vec<u64>> {
        let total = samples.end.saturating_sub(samples.start);
        if total == 0 {
            return Ok(vec![0u64; NUM_CLASSES]);
        }
        if total > u64::from(u32::MAX) {
            return Err(Error::Invalid(format!(
                "{total} samples in one call exceed the GPU's 32-bit counters"
            )));
        }
        let mut encoder = self.begin_noisy(copies);
        let chunks: Vec<_> = self.chunks(samples).collect();
        for (i, &(first, count)) in chunks.iter().enumerate() {
            self.noisy_chunk(&mut encoder, copies, first, count)?;
            if i + 1 < chunks.len() {
                self.gpu.submit(encoder);
                encoder = self.gpu.encoder();
            }
        }
        let bytes = (NUM_CLASSES * 4) as u64;
        let read = self
            .gpu
            .read(encoder, &self.counts, &self.counts_staging, bytes)
            .await?;
        let read: Vec<u32> = bytemuck::pod_collect_to_vec(&read);
        Ok(read.into_iter().map(u64::from).collect())
    }

    /// Logits `[n, 10]` of the noisy copies `samples` (checks: reads every chunk's logits).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn noisy_logits(&mut self, copies: &NoisyCopies, samples: Range<u64>) -> Result<Vec<f32>> {
        pollster::block_on(self.noisy_logits_async(copies, samples))
    }

    /// [`noisy_logits`](Self::noisy_logits) without blocking.
    pub async fn noisy_logits_async(
        &mut self,
        copies: &NoisyCopies,
        samples: Range<u64>,
    ) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        let mut encoder = self.begin_noisy(copies);
        for (first, count) in self.chunks(samples).collect::<Vec<_>>() {
            self.noisy_chunk(&mut encoder, copies, first, count)?;
            out.extend(self.read_logits(encoder, count).await?);
            encoder = self.gpu.encoder();
        }
        Ok(out)
    }

    /// The noisy copies `samples` as the GPU drew them, `[n, 784]` (checks).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn noisy_inputs(&mut self, copies: &NoisyCopies, samples: Range<u64>) -> Result<Vec<f32>> {
        pollster::block_on(self.noisy_inputs_async(copies, samples))
    }

    /// [`noisy_inputs`](Self::noisy_inputs) without blocking.
    pub async fn noisy_inputs_async(
        &mut self,
        copies: &NoisyCopies,
        samples: Range<u64>,
    ) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        let x = MAPS.iter().position(|&m| m == Map::X).expect("x");
        let mut encoder = self.begin_noisy(copies);
        for (first, count) in self.chunks(samples).collect::<Vec<_>>() {
            self.noisy_chunk(&mut encoder, copies, first, count)?;
            let bytes = (count * IMAGE_PIXELS * 4) as u64;
            let staging = self.gpu.staging(bytes);
            let read = self
                .gpu
                .read(encoder, &self.maps[x], &staging, bytes)
                .await?;
            out.extend(bytemuck::pod_collect_to_vec::<u8, f32>(&read));
            encoder = self.gpu.encoder();
        }
        Ok(out)
    }

    async fn read_logits(&self, encoder: wgpu::CommandEncoder, count: usize) -> Result<Vec<f32>> {
        let bytes = (count * NUM_CLASSES * 4) as u64;
        let read = self
            .gpu
            .read(encoder, &self.logits, &self.logits_staging, bytes)
            .await?;
        Ok(bytemuck::pod_collect_to_vec(&read))
    }

    /// Logits `[batch, 10]` of `batch` images given as `[batch, 1, 28, 28]` from the host.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn logits(&mut self, inputs: &[f32], batch: usize) -> Result<Vec<f32>> {
        pollster::block_on(self.logits_async(inputs, batch))
    }

    /// [`logits`](Self::logits) without blocking.
    pub async fn logits_async(&mut self, inputs: &[f32], batch: usize) -> Result<Vec<f32>> {
        if inputs.len() != batch * IMAGE_PIXELS {
            return Err(Error::Invalid(format!(
                "a batch of {batch} images needs {} values, got {}",
                batch * IMAGE_PIXELS,
                inputs.len()
            )));
        }
        let x = MAPS.iter().position(|&m| m == Map::X).expect("x");
        let mut out = Vec::with_capacity(batch * NUM_CLASSES);
        for chunk in inputs.chunks(self.capacity * IMAGE_PIXELS) {
            let count = chunk.len() / IMAGE_PIXELS;
            self.gpu
                .queue
                .write_buffer(&self.maps[x], 0, bytemuck::cast_slice(chunk));
            self.write_batch(None, 0, count);
            let mut encoder = self.gpu.encoder();
            self.record_chunk(&mut encoder, count, false)?;
            out.extend(self.read_logits(encoder, count).await?);
        }
        Ok(out)
    }
}

/// Index of the largest value, the lowest among ties (as `classify.wgsl` and `exec::cpu`).
#[cfg(not(target_arch = "wasm32"))]
fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if values[best] < v {
            best = i;
        }
    }
    best as u32
}

/// Natively the executor is a [`BaseClassifier`] (it blocks on the GPU); in the browser,
/// which cannot block, certification awaits [`GpuExecutor::noisy_counts_async`] instead.
#[cfg(not(target_arch = "wasm32"))]
impl BaseClassifier for GpuExecutor {
    fn num_classes(&self) -> usize {
        NUM_CLASSES
    }

    fn classify_batch(&mut self, inputs: &[f32], batch: usize) -> Result<Vec<u32>> {
        let logits = self.logits(inputs, batch)?;
        Ok(logits.chunks_exact(NUM_CLASSES).map(argmax).collect())
    }

    fn counts(&mut self, copies: &NoisyCopies, samples: Range<u64>) -> Option<Result<Vec<u64>>> {
        Some(self.noisy_counts(copies, samples))
    }
}
