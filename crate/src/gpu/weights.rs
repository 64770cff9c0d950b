//! Double Rounding on the GPU: every layer's weights derived from the int8 master at a
//! policy's widths, dequantized, and folded with the batch-norm into the layout the forward
//! pass reads — all layers in one dispatch (`shaders/double_round.wgsl`).
//!
//! Layout of the folded weights (f32, one buffer, layers one after the other, each starting
//! at a multiple of 4 values): a convolution `[ky][kx][cin][cout]` (the batch-norm scale of
//! each output channel multiplied in), the linear head `[inputs][16]` with inputs in NHWC
//! order and outputs 10..15 zero (as `exec::plan`'s).

use super::device::Gpu;
use crate::error::{Error, Result};
use crate::exec::plan::{Plan, FC_LANES};
use crate::model::{LayerKind, LayerSpec};
use crate::quant::{signed_range, QuantizedWeights, MAX_BITS};

const SOURCE: &str = include_str!("shaders/double_round.wgsl");

/// One entry of the layer table the shader reads (`Layer` in the WGSL).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct LayerEntry {
    first: u32,
    count: u32,
    per_channel: u32,
    delta: u32,
    lo: i32,
    hi: i32,
    channel_first: u32,
    folded_first: u32,
    is_linear: u32,
    a: u32,
    b: u32,
    c: u32,
    integer: u32,
}

/// Where each layer's values start: in the weights (and masters), in the output channels,
/// and in the folded buffer.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub weights: Vec<usize>,
    pub channels: Vec<usize>,
    pub folded: Vec<usize>,
    pub total_weights: usize,
    pub total_channels: usize,
    pub total_folded: usize,
}

impl Layout {
    pub fn of(layers: &[LayerSpec]) -> Self {
        let (mut w, mut c, mut f) = (0, 0, 0);
        let mut layout = Self {
            weights: Vec::new(),
            channels: Vec::new(),
            folded: Vec::new(),
            total_weights: 0,
            total_channels: 0,
            total_folded: 0,
        };
        for l in layers {
            layout.weights.push(w);
            layout.channels.push(c);
            layout.folded.push(f);
            w += l.weights();
            c += l.out_channels;
            f += folded_len(l).next_multiple_of(4);
        }
        (
            layout.total_weights,
            layout.total_channels,
            layout.total_folded,
        ) = (w, c, f);
        layout
    }
}

/// Values of a layer in the folded layout.
fn folded_len(l: &LayerSpec) -> usize {
    match l.kind {
        LayerKind::Conv => l.weights(),
        LayerKind::Linear => l.in_channels * FC_LANES,
    }
}

/// A plan's weights in the GPU layout, one vector per layer (convolutions from
/// `[cout/block][ky][kx][cin][block]` to `[ky][kx][cin][cout]`; the head as is).
pub(crate) fn plan_weights(plan: &Plan) -> Vec<Vec<f32>> {
    let mut out: Vec<Vec<f32>> = plan
        .convs
        .iter()
        .map(|c| {
            let (k, cin, cout, block) = (c.kernel, c.cin, c.cout, c.block);
            let mut w = vec![0.0; c.weights.len()];
            for o in 0..cout {
                for ky in 0..k {
                    for kx in 0..k {
                        for ci in 0..cin {
                            let src =
                                (((o / block * k + ky) * k + kx) * cin + ci) * block + o % block;
                            w[((ky * k + kx) * cin + ci) * cout + o] = c.weights[src];
                        }
                    }
                }
            }
            w
        })
        .collect();
    // the plan holds the convolutions in forward order, which is the layers' order here
    out.push(plan.fc.weights.clone());
    out
}

/// What one Double Rounding dispatch produced, read back per layer (for checks).
#[derive(Clone, Debug, PartialEq)]
pub struct DerivedWeights {
    /// Wq_l per weight, in the master's layout.
    pub integers: Vec<Vec<i32>>,
    /// Ŵ_l = Wq_l · s_8 · 2^(8−l), in the master's layout.
    pub dequantized: Vec<Vec<f32>>,
    /// Ŵ_l with the batch-norm scale folded in, in the GPU layout (see the module doc).
    pub folded: Vec<Vec<f32>>,
}

/// The Double Rounding kernel and its buffers: masters, scales, the layer table, and the
/// three outputs. `folded` is what the forward pass reads.
pub(crate) struct GpuWeights {
    layers: Vec<LayerSpec>,
    pub layout: Layout,
    pipeline: wgpu::ComputePipeline,
    bind: wgpu::BindGroup,
    table: wgpu::Buffer,
    masters: wgpu::Buffer,
    scales: wgpu::Buffer,
    fold: wgpu::Buffer,
    ints: wgpu::Buffer,
    dequantized: wgpu::Buffer,
    pub folded: wgpu::Buffer,
}

impl GpuWeights {
    pub fn new(gpu: &Gpu, layers: &[LayerSpec]) -> Self {
        let layout = Layout::of(layers);
        let f32s = |n: usize| (n * 4) as u64;
        let table = gpu.storage(
            "layer table",
            (layers.len() * size_of::<LayerEntry>()) as u64,
        );
        let masters = gpu.storage("int8 masters", f32s(layout.total_weights));
        let scales = gpu.storage("scales", f32s(layout.total_channels));
        let fold = gpu.storage("batch-norm scales", f32s(layout.total_channels));
        let ints = gpu.storage("integers", f32s(layout.total_weights));
        let dequantized = gpu.storage("dequantized", f32s(layout.total_weights));
        let folded = gpu.storage("folded weights", f32s(layout.total_folded));
        let totals = gpu.buffer_with(
            "totals",
            bytemuck::cast_slice(&[layout.total_weights as u32, layers.len() as u32, 0, 0]),
            wgpu::BufferUsages::UNIFORM,
        );
        let pipeline = gpu.pipeline("double rounding", SOURCE, "derive_weights");
        let bind = gpu.bind(
            &pipeline,
            &[
                &table,
                &masters,
                &scales,
                &fold,
                &ints,
                &dequantized,
                &folded,
                &totals,
            ],
        );
        Self {
            layers: layers.to_vec(),
            layout,
            pipeline,
            bind,
            table,
            masters,
            scales,
            fold,
            ints,
            dequantized,
            folded,
        }
    }

    /// Uploads already-folded weights (a [`Plan`] of any model, float ones included).
    pub fn upload(&self, gpu: &Gpu, plan: &Plan) {
        self.upload_values(gpu, &plan_weights(plan));
    }

    /// Uploads weights already in the GPU layout, one vector per layer.
    pub fn upload_values(&self, gpu: &Gpu, layers: &[Vec<f32>]) {
        for (i, w) in layers.iter().enumerate() {
            gpu.queue.write_buffer(
                &self.folded,
                (self.layout.folded[i] * 4) as u64,
                bytemuck::cast_slice(w),
            );
        }
    }

    /// Checks the masters against the layers (before anything is uploaded).
    pub fn check_masters(&self, masters: &[QuantizedWeights]) -> Result<()> {
        if masters.len() != self.layers.len() {
            return Err(Error::Model(format!(
                "{} int8 masters for {} layers",
                masters.len(),
                self.layers.len()
            )));
        }
        for (m, l) in masters.iter().zip(&self.layers) {
            if m.q.len() != l.weights() || m.scales.len() != l.out_channels {
                return Err(Error::Model(format!(
                    "layer {}: the int8 master holds {} weights and {} scales, the layer needs {} and {}",
                    l.name,
                    m.q.len(),
                    m.scales.len(),
                    l.weights(),
                    l.out_channels
                )));
            }
        }
        Ok(())
    }

    /// Records the Double Rounding dispatch: `masters` at `weight_bits` (validated by the
    /// caller: one width in 2..=8 per layer), folded with `fold` (per output channel of every
    /// convolution; ignored for the head). Returns the encoder to submit.
    /// Records the dispatch that derives every layer's weights at `weight_bits` (see the
    /// module doc); with `integer`, the layers after the stem are written to `folded` as
    /// their integers (the integer path), the stem folded as always.
    pub fn derive(
        &self,
        gpu: &Gpu,
        masters: &[QuantizedWeights],
        weight_bits: &[u8],
        fold: &[Vec<f32>],
        integer: bool,
    ) -> Result<wgpu::CommandEncoder> {
        self.check_masters(masters)?;
        let lay = &self.layout;
        let mut entries = Vec::new();
        let (mut q, mut scales, mut folds) = (Vec::new(), Vec::new(), Vec::new());
        for (i, (l, m)) in self.layers.iter().zip(masters).enumerate() {
            let bits = weight_bits[i];
            let (lo, hi) = signed_range(bits);
            let linear = l.kind == LayerKind::Linear;
            let (a, b, c) = if linear {
                let last = &self.layers[i - 2]; // the convolution that feeds the head
                let side2 = last.out_hw[0] * last.out_hw[1];
                (last.out_channels, side2, FC_LANES)
            } else {
                (l.in_channels, l.kernel, l.out_channels)
            };
            entries.push(LayerEntry {
                first: lay.weights[i] as u32,
                count: l.weights() as u32,
                per_channel: (l.weights() / l.out_channels) as u32,
                delta: u32::from(MAX_BITS - bits),
                lo,
                hi,
                channel_first: lay.channels[i] as u32,
                folded_first: lay.folded[i] as u32,
                is_linear: u32::from(linear),
                a: a as u32,
                b: b as u32,
                c: c as u32,
                integer: u32::from(integer && i > 0),
            });
            q.extend(m.q.iter().map(|&v| i32::from(v)));
            scales.extend_from_slice(&m.scales);
            if linear {
                folds.extend(std::iter::repeat_n(1.0f32, l.out_channels));
            } else {
                let f = fold.get(i).filter(|f| f.len() == l.out_channels);
                let f = f.ok_or_else(|| {
                    Error::Model(format!(
                        "layer {}: no batch-norm scale per output channel",
                        l.name
                    ))
                })?;
                folds.extend_from_slice(f);
            }
        }
        gpu.queue
            .write_buffer(&self.table, 0, bytemuck::cast_slice(&entries));
        gpu.queue
            .write_buffer(&self.masters, 0, bytemuck::cast_slice(&q));
        gpu.queue
            .write_buffer(&self.scales, 0, bytemuck::cast_slice(&scales));
        gpu.queue
            .write_buffer(&self.fold, 0, bytemuck::cast_slice(&folds));
        let mut encoder = gpu.encoder();
        gpu.dispatch(
            &mut encoder,
            &self.pipeline,
            &self.bind,
            lay.total_weights as u64,
        )?;
        Ok(encoder)
    }

    /// Reads the three outputs of the last dispatch back, split per layer.
    pub async fn read(&self, gpu: &Gpu) -> Result<DerivedWeights> {
        let lay = &self.layout;
        let ints: Vec<i32> =
            bytemuck::pod_collect_to_vec(&read_all(gpu, &self.ints, lay.total_weights).await?);
        let deq: Vec<f32> = bytemuck::pod_collect_to_vec(
            &read_all(gpu, &self.dequantized, lay.total_weights).await?,
        );
        let folded: Vec<f32> =
            bytemuck::pod_collect_to_vec(&read_all(gpu, &self.folded, lay.total_folded).await?);
        let mut out = DerivedWeights {
            integers: Vec::new(),
            dequantized: Vec::new(),
            folded: Vec::new(),
        };
        for (i, l) in self.layers.iter().enumerate() {
            let w = lay.weights[i]..lay.weights[i] + l.weights();
            out.integers.push(ints[w.clone()].to_vec());
            out.dequantized.push(deq[w].to_vec());
            out.folded
                .push(folded[lay.folded[i]..lay.folded[i] + folded_len(l)].to_vec());
        }
        Ok(out)
    }
}

/// The first `n` 4-byte values of `buffer`, read back.
async fn read_all(gpu: &Gpu, buffer: &wgpu::Buffer, n: usize) -> Result<Vec<u8>> {
    let bytes = (n * 4) as u64;
    gpu.read(gpu.encoder(), buffer, &gpu.staging(bytes), bytes)
        .await
}
