//! bitsmooth: quantize a small CNN to mixed precision and measure accuracy and certified
//! robustness; the same engine runs natively (CLI, tests, benchmarks) and as wasm in a browser.
//!
//! Modules are layered so that dependencies point one way:
//! `data` → `model` → `quant` (Double Rounding) → `checkpoint` (model files) → `smoothing`
//! (randomized smoothing certification and its incremental form, IRS); `train`/`eval` use
//! `model`, `qat` (multi-bit LSQ training) uses `model` and `quant`; `exec` (the fast
//! executor) sits after `model`/`quant`: it lowers a `model` into plain buffers and implements
//! `smoothing`'s `BaseClassifier`, using nothing else but `error`; `gpu` (wgpu + WGSL, natively
//! and on WebGPU in the browser) is a third executor beside it, built on `exec`'s lowering; `wasm` (the only module
//! that knows about JavaScript) and `cli` sit on top.

pub mod checkpoint;
pub mod data;
pub mod error;
pub mod eval;
pub mod exec;
pub mod gpu;
pub mod model;
pub mod noise;
pub mod qat;
pub mod quant;
pub mod search;
pub mod smoothing;
pub mod supernet;
pub mod train;
pub mod wasm;

#[cfg(feature = "cli")]
pub mod cli;

pub use error::{Error, Result};
