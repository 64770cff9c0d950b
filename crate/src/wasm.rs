//! The JavaScript surface: one [`Engine`] per Web Worker. The only module that knows about
//! JavaScript; every method is a thin wrapper over plain Rust that native tests exercise.
//! Errors cross the boundary as JS `Error`s with the engine's message, never as panics.

use crate::data::Dataset;
use crate::error::Error;
use crate::eval;
use crate::model::{LayerSpec, Model};
use crate::smoothing::{self, CertificationRow, CertifyParams, NoiseKey, NoisyCopies};
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

/// Settings of one certification, as JavaScript passes them.
#[derive(serde::Deserialize)]
pub struct CertifySettings {
    /// Noise level σ > 0 (normally the model's own).
    pub sigma: f32,
    /// Selection samples, 1..=10⁷.
    pub n0: f64,
    /// Estimation samples, 1..=10⁷.
    pub n: f64,
    /// Failure probability α ∈ (0, 1).
    pub alpha: f64,
    /// Seed of the counter-based noise.
    pub seed: u32,
    /// Noisy copies per forward pass, 1..=10,000.
    pub batch: usize,
}

/// A certified image as the UI shows it: the TSV row plus the statistics behind it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CertifiedImage {
    #[serde(flatten)]
    row: CertificationRow,
    /// Lower confidence bound of the top class's probability.
    p_a: f64,
    /// The guess from the selection draws (kept when abstaining).
    c_hat: u32,
    /// Class counts of the n estimation draws.
    counts: Vec<u64>,
    sigma: f32,
    seed: u32,
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

    /// CERTIFY (Cohen et al. 2019) for image `index`: with probability ≥ 1 − α the smoothed
    /// classifier's prediction cannot change within the returned ℓ₂ radius. `settings` is
    /// `{ sigma, n0, n, alpha, seed, batch }` (see [`CertifySettings`]); bad values are errors
    /// that name the setting. `on_progress(done, total)` is called after every batch.
    pub fn certify(
        &mut self,
        index: usize,
        settings: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Result<JsValue, JsError> {
        let s: CertifySettings = serde_wasm_bindgen::from_value(settings)
            .map_err(|e| js_err(format!("certification settings: {e}")))?;
        let (sigma, seed) = (s.sigma, s.seed);
        let params = CertifyParams {
            sigma,
            n0: sample_count("n0", s.n0)?,
            n: sample_count("n", s.n)?,
            alpha: s.alpha,
            batch: s.batch,
        };
        params.validate().map_err(js_err)?;
        let data = self
            .data
            .as_ref()
            .ok_or_else(|| js_err("no dataset loaded: call loadDataset first"))?;
        data.check_range(index, 1).map_err(js_err)?;
        let image = data.image(index).to_vec();
        let label = data.labels[index] as u32;
        let model = self
            .model
            .as_mut()
            .ok_or_else(|| js_err("no model loaded: call loadModel first"))?;
        let started = js_sys::Date::now();
        let mut progress = |done: u64, total: u64| {
            if let Some(f) = &on_progress {
                // a throwing callback must not abort the certification
                let _ = f.call2(
                    &JsValue::NULL,
                    &JsValue::from_f64(done as f64),
                    &JsValue::from_f64(total as f64),
                );
            }
            true
        };
        let key = NoiseKey::new(seed as u64, index as u32);
        let cert = smoothing::certify(model, &image, &params, key, &mut progress)
            .map_err(js_err)?
            .completed()
            .ok_or_else(|| js_err("certification was cancelled"))?;
        let seconds = (js_sys::Date::now() - started) / 1000.0;
        to_js(&CertifiedImage {
            row: CertificationRow::from_certificate(index as u64, label, &cert, seconds),
            p_a: cert.p_a,
            c_hat: cert.c_hat,
            counts: cert.counts.clone(),
            sigma,
            seed,
        })
    }

    /// `count` of the noisy copies CERTIFY's estimation draws see for image `index` (the same
    /// counter-based noise), clamped to [0, 1] and scaled to 0..=255 for display.
    #[wasm_bindgen(js_name = noisyImages)]
    pub fn noisy_images(
        &self,
        index: usize,
        count: usize,
        sigma: f32,
        seed: u32,
    ) -> Result<Vec<u8>, JsError> {
        if count == 0 || count > 64 {
            return Err(js_err(Error::Invalid(format!(
                "count must be in 1..=64, got {count}"
            ))));
        }
        let data = self.data()?;
        data.check_range(index, 1).map_err(js_err)?;
        let copies = NoisyCopies::new(
            data.image(index),
            sigma,
            NoiseKey::new(seed as u64, index as u32),
        )
        .map_err(js_err)?;
        let first = smoothing::ESTIMATION_SAMPLES;
        let mut values = Vec::new();
        copies.fill(first..first + count as u64, &mut values);
        Ok(values
            .iter()
            .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect())
    }
}

/// A sample count from JavaScript (a number): a whole number ≥ 0, else a clear error.
fn sample_count(name: &str, value: f64) -> Result<u64, JsError> {
    if !(value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= 9.0e15) {
        return Err(js_err(Error::Invalid(format!(
            "{name} must be a whole number of samples, got {value}"
        ))));
    }
    Ok(value as u64)
}
