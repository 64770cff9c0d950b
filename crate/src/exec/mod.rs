//! A fast executor of our own for `bsnet8`, the certification hot path (DESIGN §10).
//!
//! candle stays the reference that defines, trains and checks the model; this module lowers
//! a [`Model`](crate::model::Model) into plain f32 buffers ([`plan`]: batch-norm folded into
//! the weights, activation quantizers kept per layer) and runs the forward pass on them
//! ([`cpu`]: NHWC feature maps reused across calls, register-tiled convolution with the
//! batch-norm shift, residual, ReLU and activation quantizer fused into its epilogue). The
//! executor implements [`BaseClassifier`](crate::smoothing::classifier::BaseClassifier), so
//! certification runs on it unchanged; its tests check it against the candle model.

pub mod cpu;
mod kernels;
pub mod plan;

pub use cpu::CpuExecutor;

#[cfg(test)]
mod tests;
