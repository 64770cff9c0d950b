//! The GPU itself: adapter, device and queue, and the few operations every kernel needs
//! (buffers, pipelines, dispatches sized to the adapter's limits, read-back).

use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};
use wgpu::util::DeviceExt;

/// Invocations per workgroup of every bitsmooth kernel (`WORKGROUP` in `common.wgsl`).
pub const WORKGROUP: u32 = 64;

#[cfg(not(target_arch = "wasm32"))]
const NO_ADAPTER_HINT: &str = "on Debian, `apt-get install mesa-vulkan-drivers` provides \
    llvmpipe, a Vulkan driver that runs on the CPU";
#[cfg(target_arch = "wasm32")]
const NO_ADAPTER_HINT: &str = "this browser offers no WebGPU adapter (`navigator.gpu`)";

/// The WGSL shared by every kernel, prepended to each shader's own source.
const COMMON: &str = include_str!("shaders/common.wgsl");

/// An adapter, its device and queue. Validation errors and device loss are collected (not
/// panicked on) and surface as [`Error::Gpu`] from the next read-back.
#[derive(Clone)]
pub struct Gpu {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Gpu {
    /// The default adapter (a high-performance one if there is a choice), with its own
    /// limits. Natively wgpu looks at Vulkan, Metal and DX12; on a machine without a GPU,
    /// Mesa's llvmpipe (Debian's `mesa-vulkan-drivers`) is a Vulkan adapter too.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<Self> {
        pollster::block_on(Self::request())
    }

    /// As [`new`](Self::new), without blocking: the only way in the browser, where the
    /// adapter is WebGPU's (`navigator.gpu`).
    pub async fn request() -> Result<Self> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Gpu(format!("no GPU adapter found ({e}); {NO_ADAPTER_HINT}")))?;
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("bitsmooth"),
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Gpu(format!("the GPU adapter refused a device: {e}")))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().expect("error sink").push(e.to_string());
        }));
        let sink = errors.clone();
        device.set_device_lost_callback(move |reason, message| {
            sink.lock()
                .expect("error sink")
                .push(format!("GPU device lost ({reason:?}): {message}"));
        });
        Ok(Self {
            device,
            queue,
            info: adapter.get_info(),
            limits,
            errors,
        })
    }

    /// What ran: e.g. "llvmpipe (LLVM 19.1.7, 256 bits) · Vulkan · Cpu".
    pub fn description(&self) -> String {
        let i = &self.info;
        format!("{} · {:?} · {:?}", i.name, i.backend, i.device_type)
    }

    /// True when the adapter is a CPU emulation (llvmpipe, SwiftShader, WARP).
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// Destroys the device, as a driver reset or a lost GPU would: every later read fails
    /// with [`Error::Gpu`]. For testing the fallback to the CPU.
    pub fn destroy(&self) {
        self.device.destroy();
    }

    /// The first error the device reported since the last check, if any.
    pub(crate) fn check(&self) -> Result<()> {
        let mut errors = self.errors.lock().expect("error sink");
        if errors.is_empty() {
            return Ok(());
        }
        let message = errors.join("; ");
        errors.clear();
        Err(Error::Gpu(message))
    }

    /// A compute pipeline for `entry` of `source` (with the common WGSL prepended).
    pub(crate) fn pipeline(&self, label: &str, source: &str, entry: &str) -> wgpu::ComputePipeline {
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(format!("{COMMON}\n{source}").into()),
            });
        self.device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
    }

    /// A buffer holding `contents`, usable as storage (or uniform) and as a copy source.
    pub(crate) fn buffer_with(
        &self,
        label: &str,
        contents: &[u8],
        usage: wgpu::BufferUsages,
    ) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: usage | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            })
    }

    /// A zero-filled storage buffer of `bytes` (at least 16).
    pub(crate) fn storage(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// A uniform buffer of `bytes`, written later with `queue.write_buffer`.
    pub(crate) fn uniform(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.next_multiple_of(16),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// A bind group of `buffers` (binding i = buffers[i]) for group 0 of `pipeline`.
    pub(crate) fn bind(
        &self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        let entries: Vec<_> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        })
    }

    /// Workgroups for `invocations` (≥ 1): (x, y) with x within the adapter's per-dimension
    /// limit; shaders recover the flat index as `id.x + id.y · x · WORKGROUP`.
    pub(crate) fn groups(&self, invocations: u64) -> Result<(u32, u32)> {
        let groups = invocations.max(1).div_ceil(u64::from(WORKGROUP));
        let max = u64::from(self.limits.max_compute_workgroups_per_dimension);
        let y = groups.div_ceil(max);
        if y > max || groups * u64::from(WORKGROUP) > u64::from(u32::MAX) {
            return Err(Error::Invalid(format!(
                "{invocations} invocations exceed what one dispatch can address"
            )));
        }
        Ok((groups.min(max) as u32, y as u32))
    }

    /// Records one dispatch of `pipeline` over `invocations` into `encoder`.
    pub(crate) fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        bind: &wgpu::BindGroup,
        invocations: u64,
    ) -> Result<()> {
        let (x, y) = self.groups(invocations)?;
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, bind, &[]);
        pass.dispatch_workgroups(x, y, 1);
        Ok(())
    }

    pub(crate) fn encoder(&self) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default())
    }

    /// A buffer to read `bytes` back through ([`read`](Self::read)).
    pub(crate) fn staging(&self, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read-back"),
            size: bytes.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Submits `encoder` after copying the first `bytes` of `source` into `staging`, and
    /// returns those bytes once the GPU is done. Natively the device is polled until then
    /// (callers block on this future); in the browser the map completes on its own. Errors the
    /// device reported on the way (a validation error, a lost device) come back as
    /// [`Error::Gpu`].
    pub(crate) async fn read(
        &self,
        mut encoder: wgpu::CommandEncoder,
        source: &wgpu::Buffer,
        staging: &wgpu::Buffer,
        bytes: u64,
    ) -> Result<Vec<u8>> {
        encoder.copy_buffer_to_buffer(source, 0, staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.map_async(wgpu::MapMode::Read, ..bytes, move |r| {
            let _ = tx.send(r);
        });
        self.poll()?;
        let mapped = rx.await;
        self.check()?;
        mapped
            .map_err(|_| Error::Gpu("the read-back never completed".into()))?
            .map_err(|e| Error::Gpu(format!("reading a GPU buffer: {e}")))?;
        let data = staging
            .get_mapped_range(..bytes)
            .map_err(|e| Error::Gpu(format!("reading a GPU buffer: {e:?}")))?
            .to_vec();
        staging.unmap();
        Ok(data)
    }

    /// Waits until the work submitted so far has finished (for timing).
    pub(crate) async fn finish(&self) -> Result<()> {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.queue.on_submitted_work_done(move || {
            let _ = tx.send(());
        });
        self.poll()?;
        rx.await
            .map_err(|_| Error::Gpu("the GPU never finished its work".into()))?;
        self.check()
    }

    /// Natively: drives the device until the queue is empty (callbacks fire here). In the
    /// browser there is nothing to do: the page's event loop drives the GPU.
    fn poll(&self) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))?;
        Ok(())
    }

    /// Submits `encoder` without waiting.
    pub(crate) fn submit(&self, encoder: wgpu::CommandEncoder) {
        self.queue.submit([encoder.finish()]);
    }
}
