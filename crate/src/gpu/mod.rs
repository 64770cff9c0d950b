//! The GPU executor (wgpu + WGSL): a third executor of `bsnet8` beside the candle reference
//! (`model`) and the fast CPU one (`exec`), for the certification hot path (DESIGN §9).
//!
//! - [`weights`]: Double Rounding on the GPU — every layer's weights derived from the int8
//!   master at a policy by the integer shift `(q + 2^(Δ−1)) >> Δ` and clamp, dequantized with
//!   the per-channel scale, and folded with the batch-norm, in one dispatch per model; bit for
//!   bit `quant`'s result.
//! - [`kernels`]: the building blocks alone — raw Philox-4x32-10 words (bit for bit the CPU's)
//!   and activation fake-quantization (WGSL `round`: halves to even, the project's rule).
//! - [`executor`]: the forward pass of a batch of noisy copies of one image, the noise drawn
//!   on the GPU from the same counter-based generator as `smoothing::noise`, only the class
//!   counts read back; it implements `smoothing`'s `BaseClassifier` including `counts`, so
//!   CERTIFY and PREDICT (and IRS's sampling) run on it unchanged.
//!
//! The shaders are the `.wgsl` files in `shaders/`, each prefixed with `common.wgsl` (Philox,
//! Box–Muller, the fake-quantizer). Natively only for now: wgpu looks for Vulkan, Metal or
//! DX12 (on a machine without a GPU, Mesa's llvmpipe is a Vulkan device emulated on the CPU),
//! in the browser on WebGPU. Every read from the GPU is a future: natively the blocking
//! methods wait on it (and the executor is a `BaseClassifier`), in the browser
//! `wasm::GpuSession` awaits the `_async` ones.

mod device;
pub mod executor;
pub mod kernels;
pub mod weights;

pub use device::{Gpu, WORKGROUP};
pub use executor::{max_capacity, GpuExecutor, DEFAULT_CAPACITY};
pub use weights::DerivedWeights;

// Natively (blocking on the GPU); the browser runs its own in `tests/webgpu.rs`.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
