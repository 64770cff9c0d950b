//! The building blocks as stand-alone kernels, each comparable with its CPU twin on its own:
//! raw Philox-4x32-10 words (`smoothing::noise::philox4x32_10`) and activation
//! fake-quantization (`exec::plan::Quantizer`).

use super::device::Gpu;
use crate::error::{Error, Result};
use crate::exec::plan::Quantizer;

const PHILOX: &str = include_str!("shaders/philox.wgsl");
const FAKE_QUANT: &str = include_str!("shaders/fake_quant.wgsl");

/// Philox-4x32-10 of each (counter, key) pair, computed on the GPU.
#[cfg(not(target_arch = "wasm32"))]
pub fn philox_words(gpu: &Gpu, inputs: &[([u32; 4], [u32; 2])]) -> Result<Vec<[u32; 4]>> {
    pollster::block_on(philox_words_async(gpu, inputs))
}

/// [`philox_words`] without blocking (the browser's way).
pub async fn philox_words_async(
    gpu: &Gpu,
    inputs: &[([u32; 4], [u32; 2])],
) -> Result<Vec<[u32; 4]>> {
    if inputs.is_empty() {
        return Ok(Vec::new());
    }
    let packed: Vec<u32> = inputs
        .iter()
        .flat_map(|(c, k)| [c[0], c[1], c[2], c[3], k[0], k[1], 0, 0])
        .collect();
    let input = gpu.buffer_with(
        "philox counters",
        bytemuck::cast_slice(&packed),
        wgpu::BufferUsages::STORAGE,
    );
    let bytes = (inputs.len() * 16) as u64;
    let output = gpu.storage("philox words", bytes);
    let pipeline = gpu.pipeline("philox", PHILOX, "philox_words");
    let bind = gpu.bind(&pipeline, &[&input, &output]);
    let mut encoder = gpu.encoder();
    gpu.dispatch(&mut encoder, &pipeline, &bind, inputs.len() as u64)?;
    let words: Vec<u32> = bytemuck::pod_collect_to_vec(
        &gpu.read(encoder, &output, &gpu.staging(bytes), bytes)
            .await?,
    );
    Ok(words
        .chunks_exact(4)
        .map(|w| [w[0], w[1], w[2], w[3]])
        .collect())
}

/// `quant` applied to every value on the GPU: clip(round(v / scale), 0, hi) · scale with
/// WGSL's `round` (halves to even).
pub struct FakeQuantizer {
    gpu: Gpu,
    pipeline: wgpu::ComputePipeline,
    params: wgpu::Buffer,
    input: wgpu::Buffer,
    output: wgpu::Buffer,
    staging: wgpu::Buffer,
    bind: wgpu::BindGroup,
    capacity: usize,
}

impl FakeQuantizer {
    /// Buffers for up to `capacity` values per call, reused by every call.
    pub fn new(gpu: &Gpu, capacity: usize) -> Result<Self> {
        let bytes = (capacity.max(1) * 4) as u64;
        if bytes > gpu.limits().max_storage_buffer_binding_size {
            return Err(Error::Invalid(format!(
                "{capacity} values exceed the adapter's largest storage buffer"
            )));
        }
        let pipeline = gpu.pipeline("fake quantization", FAKE_QUANT, "fake_quantize_values");
        let params = gpu.uniform("fake quantization", 16);
        let input = gpu.storage("values", bytes);
        let output = gpu.storage("quantized values", bytes);
        let bind = gpu.bind(&pipeline, &[&params, &input, &output]);
        Ok(Self {
            gpu: gpu.clone(),
            staging: gpu.staging(bytes),
            pipeline,
            params,
            input,
            output,
            bind,
            capacity: capacity.max(1),
        })
    }

    /// The fake-quantized `values` (at most the capacity).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn apply(&self, quant: Quantizer, values: &[f32]) -> Result<Vec<f32>> {
        pollster::block_on(self.apply_async(quant, values))
    }

    /// [`apply`](Self::apply) without blocking.
    pub async fn apply_async(&self, quant: Quantizer, values: &[f32]) -> Result<Vec<f32>> {
        self.record(quant, values)?;
        let bytes = (values.len() * 4) as u64;
        let out = self
            .gpu
            .read(self.gpu.encoder(), &self.output, &self.staging, bytes)
            .await?;
        Ok(bytemuck::pod_collect_to_vec(&out))
    }

    /// Quantizes `values` on the GPU and waits, reading back nothing (for timing).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run(&self, quant: Quantizer, values: &[f32]) -> Result<()> {
        pollster::block_on(self.run_async(quant, values))
    }

    /// [`run`](Self::run) without blocking.
    pub async fn run_async(&self, quant: Quantizer, values: &[f32]) -> Result<()> {
        self.record(quant, values)?;
        self.gpu.finish().await
    }

    /// Uploads `values` and submits the dispatch that quantizes them.
    fn record(&self, quant: Quantizer, values: &[f32]) -> Result<()> {
        if values.is_empty() || values.len() > self.capacity {
            return Err(Error::Invalid(format!(
                "1 to {} values per call, got {}",
                self.capacity,
                values.len()
            )));
        }
        let gpu = &self.gpu;
        let params = [
            values.len() as u32,
            quant.scale.to_bits(),
            quant.hi.to_bits(),
            0,
        ];
        gpu.queue
            .write_buffer(&self.params, 0, bytemuck::cast_slice(&params));
        gpu.queue
            .write_buffer(&self.input, 0, bytemuck::cast_slice(values));
        let mut encoder = gpu.encoder();
        gpu.dispatch(
            &mut encoder,
            &self.pipeline,
            &self.bind,
            values.len() as u64,
        )?;
        gpu.submit(encoder);
        Ok(())
    }
}
