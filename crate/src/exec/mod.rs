//! A fast executor of our own for `bsnet8`, the certification hot path (DESIGN §10).
//!
//! candle stays the reference that defines, trains and checks the model; this module lowers
//! a [`Model`](crate::model::Model) into plain f32 buffers ([`plan`]: batch-norm folded into
//! the weights, activation quantizers kept per layer) and runs the forward pass on them
//! ([`cpu`]: NHWC feature maps reused across calls, register-tiled convolution with the
//! batch-norm shift, residual, ReLU and activation quantizer fused into its epilogue). The
//! executor implements [`BaseClassifier`](crate::smoothing::classifier::BaseClassifier), so
//! certification runs on it unchanged; its tests check it against the candle model.
//!
//! A model at a bit policy (weights derived by Double Rounding, every layer after the stem
//! reading quantized activations) runs on the **integer path** instead ([`int_plan`]: i16
//! levels times integer weights into i32, requantized between layers; `int_kernels` with
//! AVX2 `vpmaddwd` natively and SIMD128 `i32x4.dot_i16x8_s` in wasm), which is that model's
//! definition; its tests check it bit for bit against a plain integer reference.

pub mod cpu;
mod int_forward;
mod int_kernels;
pub mod int_plan;
pub mod int_reference;
mod kernels;
pub mod plan;

pub use cpu::{Arithmetic, CpuExecutor};
pub use int_forward::Operands;

#[cfg(test)]
mod int_tests;
#[cfg(test)]
mod tests;
