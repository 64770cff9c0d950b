//! The JavaScript surface: one [`Engine`] per Web Worker. The only module that knows about
//! JavaScript; every method is a thin wrapper over plain Rust that native tests exercise.
//! Errors cross the boundary as JS `Error`s with the engine's message, never as panics.
//!
//! One file per capability: this one loads models and data and classifies; [`bits`] switches
//! bit policies; [`certify`] runs CERTIFY and IRS; [`search`] runs a mixed-precision
//! search; `gpu` (in the browser only) certifies on WebGPU.

mod bits;
mod certify;
mod drawing;
#[cfg(target_arch = "wasm32")]
mod gpu;
mod search;

pub use certify::{CertifySettings, MAX_COPIES};
#[cfg(target_arch = "wasm32")]
pub use gpu::GpuSession;

use crate::checkpoint;
use crate::data::Dataset;
use crate::error::Error;
use crate::eval;
use crate::exec::CpuExecutor;
use crate::model::{LayerSpec, Model};
use crate::quant::{self, Policy, Switchable};
use crate::smoothing::{BaseClassifier, Certificate};
use serde::Serialize;
use std::collections::BTreeMap;
use std::collections::HashMap;
use wasm_bindgen::prelude::*;

/// Installs the panic hook once so that a bug shows as a readable console message.
#[wasm_bindgen(start)]
pub fn start() {
    #[cfg(target_arch = "wasm32")]
    console_error_panic_hook::set_once();
}

/// Which SIMD this build of the engine was compiled with: `"relaxed-simd"` (the page loads
/// it where the browser validates relaxed-SIMD code), `"simd128"` (the fallback) or
/// `"scalar"`.
#[wasm_bindgen(js_name = wasmSimd)]
pub fn wasm_simd() -> String {
    if cfg!(target_feature = "relaxed-simd") {
        "relaxed-simd"
    } else if cfg!(target_feature = "simd128") {
        "simd128"
    } else {
        "scalar"
    }
    .into()
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(js_err)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LayerInfo<'a> {
    #[serde(flatten)]
    spec: &'a LayerSpec,
    weights: usize,
    macs: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModelInfo<'a> {
    arch: &'a str,
    dataset: &'a str,
    sigma: f32,
    macs: u64,
    weights: usize,
    layers: Vec<LayerInfo<'a>>,
    accuracy: &'a BTreeMap<String, f64>,
    training: &'a serde_json::Value,
    /// `float` or `int8` (multi-bit, switchable by Double Rounding) or `export`.
    kind: &'a str,
    /// Bit-widths a multi-bit model was trained at.
    bits: &'a [u8],
    /// A HASB supernet (mixed policies over `bits` trained) rather than a multi-bit model.
    supernet: bool,
    /// Hutchinson Hessian trace per quantizable layer, when the file stores them.
    hessian_traces: Option<&'a [f64]>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DatasetInfo {
    count: usize,
    rows: usize,
    cols: usize,
    classes: usize,
}

/// What identifies a cached reference certificate: image, seed and CERTIFY's settings.
type ReferenceKey = (usize, u32, u64, u64, u64, u32);

/// One model and one dataset, loaded from bytes the worker fetched.
#[wasm_bindgen]
pub struct Engine {
    model: Option<Model>,
    data: Option<Dataset>,
    /// The checkpoint as loaded: the float model is rebuilt from it when the policy is reset.
    model_bytes: Vec<u8>,
    /// The reference of incremental certification: the float model, or an int8 model at
    /// w8a8 (the stored model itself).
    reference: Option<Model>,
    /// Training images for calibrating activation quantizers.
    calibration: Option<Dataset>,
    /// Int8 masters and activation scales: from the file for an int8 model, made on the
    /// first policy (post-training quantization) for a float one.
    switchable: Option<Switchable>,
    policy: Option<Policy>,
    /// Reference certificates of the float model, so that re-certifying another policy with
    /// IRS only costs the n_χ replayed samples.
    references: HashMap<ReferenceKey, Certificate>,
    /// The fast executor lowered from `model` and from `reference` (rebuilt whenever either
    /// changes): where noisy copies are classified, unless `candle` is set.
    fast: Option<CpuExecutor>,
    fast_reference: Option<CpuExecutor>,
    /// Classify with the candle models instead (for checking the executor).
    candle: bool,
}

/// The base classifier for one model: its fast executor, or the candle model itself.
fn classifier<'a>(
    candle: bool,
    model: &'a mut Option<Model>,
    fast: &'a mut Option<CpuExecutor>,
) -> Result<&'a mut dyn BaseClassifier, JsError> {
    let missing = || js_err("no model loaded: call loadModel first");
    Ok(if candle {
        model.as_mut().ok_or_else(missing)?
    } else {
        fast.as_mut().ok_or_else(missing)?
    })
}

/// Lowers `model` into `fast` (reusing its buffers), or clears it without a model.
fn lower(model: &Option<Model>, fast: &mut Option<CpuExecutor>) -> Result<(), JsError> {
    match (model, fast.as_mut()) {
        (None, _) => *fast = None,
        (Some(m), Some(exec)) => exec.reload(m).map_err(js_err)?,
        (Some(m), None) => *fast = Some(CpuExecutor::new(m).map_err(js_err)?),
    }
    Ok(())
}

impl Engine {
    fn model(&self) -> Result<&Model, JsError> {
        self.model
            .as_ref()
            .ok_or_else(|| js_err("no model loaded: call loadModel first"))
    }

    fn data(&self) -> Result<&Dataset, JsError> {
        self.data
            .as_ref()
            .ok_or_else(|| js_err("no dataset loaded: call loadDataset first"))
    }
}

/// Images per forward pass when classifying the test subset.
const GRID_BATCH: usize = 100;

#[wasm_bindgen]
impl Engine {
    #[wasm_bindgen(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Engine {
        Engine {
            model: None,
            data: None,
            model_bytes: Vec::new(),
            reference: None,
            calibration: None,
            switchable: None,
            policy: None,
            references: HashMap::new(),
            fast: None,
            fast_reference: None,
            candle: false,
        }
    }

    /// Loads a safetensors checkpoint; returns its description (layers, MACs, metadata).
    /// A corrupt file leaves the previously loaded model in place.
    #[wasm_bindgen(js_name = loadModel)]
    pub fn load_model(&mut self, bytes: &[u8]) -> Result<JsValue, JsError> {
        let loaded = checkpoint::load(bytes).map_err(js_err)?;
        self.reference = Some(checkpoint::load(bytes).map_err(js_err)?.model);
        self.policy = match loaded.switchable {
            Some(_) => Some(stored_policy(&loaded.model).map_err(js_err)?),
            None => None,
        };
        self.model = Some(loaded.model);
        self.model_bytes = bytes.to_vec();
        self.switchable = loaded.switchable;
        self.references.clear();
        self.lower_models()?;
        self.model_info()
    }

    /// Description of the loaded model.
    #[wasm_bindgen(js_name = modelInfo)]
    pub fn model_info(&self) -> Result<JsValue, JsError> {
        let m = self.model()?;
        let layers = m
            .layers
            .iter()
            .map(|spec| LayerInfo {
                spec,
                weights: spec.weights(),
                macs: spec.macs(),
            })
            .collect();
        to_js(&ModelInfo {
            arch: &m.meta.arch,
            dataset: &m.meta.dataset,
            sigma: m.meta.sigma,
            macs: m.macs(),
            weights: m.layers.iter().map(LayerSpec::weights).sum(),
            layers,
            accuracy: &m.meta.accuracy,
            training: &m.meta.training,
            kind: &m.meta.kind,
            bits: &m.meta.bits,
            supernet: m.meta.supernet,
            hessian_traces: m.meta.hessian_traces.as_deref(),
        })
    }

    /// Loads a `BSDS` dataset file; a corrupt file leaves the previous dataset in place.
    #[wasm_bindgen(js_name = loadDataset)]
    pub fn load_dataset(&mut self, bytes: &[u8]) -> Result<JsValue, JsError> {
        let d = Dataset::from_bytes(bytes).map_err(js_err)?;
        let info = DatasetInfo {
            count: d.len(),
            rows: d.rows,
            cols: d.cols,
            classes: d.classes,
        };
        self.data = Some(d);
        to_js(&info)
    }

    /// Classifies images `start..start+count`: `{ start, predictions, labels, correct }`, on
    /// the fast executor (the candle model after `setExecutor("candle")`).
    pub fn classify(&mut self, start: usize, count: usize) -> Result<JsValue, JsError> {
        self.model()?;
        if self.candle {
            let result = eval::evaluate(self.model()?, self.data()?, start, count, &mut |_, _| {})
                .map_err(js_err)?;
            return to_js(&result);
        }
        let data = self
            .data
            .as_ref()
            .ok_or_else(|| js_err("no dataset loaded: call loadDataset first"))?;
        data.check_range(start, count).map_err(js_err)?;
        let f = classifier(false, &mut self.model, &mut self.fast)?;
        let len = data.image_len();
        let mut predictions = Vec::with_capacity(count);
        let mut inputs = Vec::with_capacity(GRID_BATCH * len);
        for first in (start..start + count).step_by(GRID_BATCH) {
            let n = GRID_BATCH.min(start + count - first);
            inputs.clear();
            inputs.extend(
                data.pixels[first * len..(first + n) * len]
                    .iter()
                    .map(|&p| f32::from(p) / 255.0),
            );
            let classes = f.classify_batch(&inputs, n).map_err(js_err)?;
            predictions.extend(classes.into_iter().map(|c| c as u8));
        }
        to_js(&eval::Evaluation::of(data, start, predictions))
    }

    /// Raw logits `[count × 10]`, row-major.
    pub fn logits(&self, start: usize, count: usize) -> Result<Vec<f32>, JsError> {
        eval::logits(self.model()?, self.data()?, start, count).map_err(js_err)
    }

    /// Pixels (0..=255) of images `start..start+count`, for drawing.
    pub fn images(&self, start: usize, count: usize) -> Result<Vec<u8>, JsError> {
        let d = self.data()?;
        d.check_range(start, count).map_err(js_err)?;
        Ok(d.pixels[start * d.image_len()..(start + count) * d.image_len()].to_vec())
    }

    /// Runs classification on `"fast"` (the default: our executor, on the integer path where
    /// the policy has one, on i8 operands where the build has relaxed SIMD and the
    /// activations fit 7 bits), `"fast-i16"` (the integer path on i16 operands even then),
    /// `"fast-float"` (our executor on the float path even where the integer path applies)
    /// or `"candle"` (the reference model, to check the executor against). The comparison
    /// choices are kept across policy changes.
    #[wasm_bindgen(js_name = setExecutor)]
    pub fn set_executor(&mut self, name: &str) -> Result<(), JsError> {
        let (candle, float_path, wide) = match name {
            "fast" => (false, false, false),
            "fast-i16" => (false, false, true),
            "fast-float" => (false, true, false),
            "candle" => (true, false, false),
            other => {
                return Err(js_err(Error::Invalid(format!(
                    "the executor is \"fast\", \"fast-i16\", \"fast-float\" or \"candle\", got {other:?}"
                ))))
            }
        };
        self.candle = candle;
        let make = |m: &Model| {
            let exec = CpuExecutor::new(m)?;
            let exec = if wide { exec.with_quads(false) } else { exec };
            Ok::<_, crate::Error>(if float_path { exec.float_path() } else { exec })
        };
        self.fast = self.model.as_ref().map(make).transpose().map_err(js_err)?;
        self.fast_reference = self
            .reference
            .as_ref()
            .map(make)
            .transpose()
            .map_err(js_err)?;
        Ok(())
    }

    /// The arithmetic that classifies noisy copies now: `"integer"` (integer kernels: a
    /// quantized policy), `"float"` (a float model, or `setExecutor("fast-float")`) or
    /// `"candle"`.
    pub fn arithmetic(&self) -> String {
        match (&self.fast, self.candle) {
            (_, true) => "candle",
            (Some(f), false) if f.arithmetic() == crate::exec::Arithmetic::Integer => "integer",
            _ => "float",
        }
        .into()
    }

    /// The operands of the integer path where it runs (`"i8"` or `"i16"`), else `""`.
    pub fn operands(&self) -> String {
        match (&self.fast, self.candle) {
            (Some(f), false) => f.operands().unwrap_or(""),
            _ => "",
        }
        .into()
    }

    /// Loads the training images that activation quantizers are calibrated on (`BSDS`).
    #[wasm_bindgen(js_name = loadCalibration)]
    pub fn load_calibration(&mut self, bytes: &[u8]) -> Result<usize, JsError> {
        let d = Dataset::from_bytes(bytes).map_err(js_err)?;
        let count = d.len();
        self.calibration = Some(d);
        if !self.is_int8() {
            // a float model's activation ranges are calibrated on these images
            self.switchable = None;
        }
        Ok(count)
    }
}

/// The policy an int8 model runs at when loaded: w8a8.
fn stored_policy(model: &Model) -> crate::Result<Policy> {
    Policy::uniform(model.layers.len(), quant::MAX_BITS, quant::MAX_BITS)
}

impl Engine {
    /// Rebuilds both fast executors from the current models.
    fn lower_models(&mut self) -> Result<(), JsError> {
        lower(&self.model, &mut self.fast)?;
        lower(&self.reference, &mut self.fast_reference)
    }

    /// Whether the model runs as stored (float, or an int8 model at w8a8): then IRS has
    /// nothing to compare with the reference.
    fn runs_as_stored(&self) -> Result<bool, JsError> {
        Ok(match &self.policy {
            None => true,
            Some(p) => self.is_int8() && *p == stored_policy(self.model()?).map_err(js_err)?,
        })
    }

    /// Whether the loaded model is a multi-bit int8 model (switchable from the file).
    fn is_int8(&self) -> bool {
        self.reference
            .as_ref()
            .is_some_and(|m| m.meta.kind == checkpoint::KIND_INT8)
    }
}
