//! The JavaScript surface: one [`Engine`] per Web Worker. The only module that knows about
//! JavaScript; every method is a thin wrapper over plain Rust that native tests exercise.
//! Errors cross the boundary as JS `Error`s with the engine's message, never as panics.

use crate::data::Dataset;
use crate::error::Error;
use crate::eval;
use crate::model::{LayerSpec, Model};
use candle_core::Device;
use serde::Serialize;
use std::collections::BTreeMap;
use wasm_bindgen::prelude::*;

/// Most noisy copies one call may ask for (keeps a typo from exhausting memory).
pub const MAX_COPIES: usize = 100_000;

/// Installs the panic hook once so that a bug shows as a readable console message.
#[wasm_bindgen(start)]
pub fn start() {
    #[cfg(target_arch = "wasm32")]
    console_error_panic_hook::set_once();
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
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DatasetInfo {
    count: usize,
    rows: usize,
    cols: usize,
    classes: usize,
}

/// One model and one dataset, loaded from bytes the worker fetched.
#[wasm_bindgen]
pub struct Engine {
    model: Option<Model>,
    data: Option<Dataset>,
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

#[wasm_bindgen]
impl Engine {
    #[wasm_bindgen(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Engine {
        Engine {
            model: None,
            data: None,
        }
    }

    /// Loads a safetensors checkpoint; returns its description (layers, MACs, metadata).
    /// A corrupt file leaves the previously loaded model in place.
    #[wasm_bindgen(js_name = loadModel)]
    pub fn load_model(&mut self, bytes: &[u8]) -> Result<JsValue, JsError> {
        let model = Model::from_safetensors(bytes, &Device::Cpu).map_err(js_err)?;
        self.model = Some(model);
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

    /// Classifies images `start..start+count`: `{ start, predictions, labels, correct }`.
    pub fn classify(&self, start: usize, count: usize) -> Result<JsValue, JsError> {
        let result = eval::evaluate(self.model()?, self.data()?, start, count, &mut |_, _| {})
            .map_err(js_err)?;
        to_js(&result)
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

    /// Class counts over `copies` noisy copies (N(0, σ²), seeded) of image `index`.
    #[wasm_bindgen(js_name = noisyCounts)]
    pub fn noisy_counts(
        &self,
        index: usize,
        copies: usize,
        sigma: f32,
        seed: u32,
    ) -> Result<Vec<u32>, JsError> {
        if copies == 0 || copies > MAX_COPIES {
            return Err(js_err(Error::Invalid(format!(
                "copies must be in 1..={MAX_COPIES}, got {copies}"
            ))));
        }
        eval::noisy_counts(
            self.model()?,
            self.data()?,
            index,
            copies,
            sigma,
            seed as u64,
        )
        .map_err(js_err)
    }
}
