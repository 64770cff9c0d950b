//! Draw your own: a visitor's 28×28 image (already centred the MNIST way by the page) is
//! classified at the current policy beside the stored model, certified with CERTIFY, and its
//! noisy copies shown. The same engine as the test images; the drawing has no label.

use super::certify::CertifySettings;
use super::{classifier, js_err, to_js, Engine};
use crate::data::Dataset;
use crate::error::Error;
use crate::eval;
use crate::model::{Model, NUM_CLASSES};
use crate::smoothing::{self, NoiseKey};
use serde::Serialize;
use wasm_bindgen::prelude::*;

/// Side of the images the models take.
const SIDE: usize = 28;

/// The noise of a drawing is keyed by (seed, this index), which no test image uses (the
/// shipped subsets hold 1,000 images), so its noise is its own.
pub const DRAWING_INDEX: u32 = u32::MAX;

/// One model's answer for the drawing.
#[derive(Serialize)]
struct Answer {
    prediction: u32,
    /// Softmax of the logits.
    probabilities: Vec<f32>,
}

#[derive(Serialize)]
struct DrawingPrediction {
    /// The model at the current policy.
    current: Answer,
    /// The model as stored (w8a8 for an int8 model, the float weights otherwise).
    stored: Answer,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CertifiedDrawing {
    /// The smoothed classifier's class, `null` when it abstains.
    prediction: Option<u32>,
    radius: f64,
    p_a: f64,
    c_hat: u32,
    counts: Vec<u64>,
    n: u64,
    sigma: f32,
    seed: u32,
}

/// The drawing as a one-image dataset, refusing anything but 28×28 pixels.
fn as_dataset(pixels: &[u8]) -> Result<Dataset, JsError> {
    if pixels.len() != SIDE * SIDE {
        return Err(js_err(Error::Invalid(format!(
            "a drawing must be {SIDE}×{SIDE} = {} pixels, got {}",
            SIDE * SIDE,
            pixels.len()
        ))));
    }
    Dataset::new(SIDE, SIDE, NUM_CLASSES, vec![0], pixels.to_vec()).map_err(js_err)
}

fn answer(model: &Model, image: &Dataset) -> Result<Answer, JsError> {
    let logits = eval::logits(model, image, 0, 1).map_err(js_err)?;
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    let prediction = (0..logits.len())
        .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
        .unwrap_or(0) as u32;
    Ok(Answer {
        prediction,
        probabilities: exp.iter().map(|e| e / sum).collect(),
    })
}

#[wasm_bindgen]
impl Engine {
    /// The class of a drawn image (784 pixels, 0..=255, row-major) at the current policy and
    /// as stored: `{ current: { prediction, probabilities }, stored: {...} }`.
    #[wasm_bindgen(js_name = classifyDrawing)]
    pub fn classify_drawing(&self, pixels: &[u8]) -> Result<JsValue, JsError> {
        let image = as_dataset(pixels)?;
        let stored = self
            .reference
            .as_ref()
            .ok_or_else(|| js_err("no model loaded: call loadModel first"))?;
        to_js(&DrawingPrediction {
            current: answer(self.model()?, &image)?,
            stored: answer(stored, &image)?,
        })
    }

    /// CERTIFY for a drawn image at the current policy (settings as `certify`); the noise is
    /// keyed by (seed, [`DRAWING_INDEX`]).
    #[wasm_bindgen(js_name = certifyDrawing)]
    pub fn certify_drawing(
        &mut self,
        pixels: &[u8],
        settings: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Result<JsValue, JsError> {
        let image = as_dataset(pixels)?;
        let s: CertifySettings = serde_wasm_bindgen::from_value(settings)
            .map_err(|e| js_err(format!("certification settings: {e}")))?;
        let params = s.params()?;
        let f = classifier(self.candle, &mut self.model, &mut self.fast)?;
        let mut progress =
            |done: u64, total: u64| super::certify::report_progress(&on_progress, done, total);
        let key = NoiseKey::new(s.seed as u64, DRAWING_INDEX);
        let cert = smoothing::certify(f, image.image(0), &params, key, &mut progress)
            .map_err(js_err)?
            .completed()
            .ok_or_else(|| js_err("certification was cancelled"))?;
        to_js(&CertifiedDrawing {
            prediction: cert.prediction,
            radius: cert.radius,
            p_a: cert.p_a,
            c_hat: cert.c_hat,
            counts: cert.counts.clone(),
            n: cert.n,
            sigma: s.sigma,
            seed: s.seed,
        })
    }

    /// `count` ∈ 1..=64 of the noisy copies `certifyDrawing`'s estimation draws see (clamped
    /// to [0, 1], scaled to 0..=255), 784 bytes each.
    #[wasm_bindgen(js_name = noisyDrawing)]
    pub fn noisy_drawing(
        &self,
        pixels: &[u8],
        count: usize,
        sigma: f32,
        seed: u32,
    ) -> Result<Vec<u8>, JsError> {
        if count == 0 || count > 64 {
            return Err(js_err(Error::Invalid(format!(
                "count must be in 1..=64, got {count}"
            ))));
        }
        let image = as_dataset(pixels)?;
        super::certify::noisy_bytes(
            image.image(0),
            sigma,
            NoiseKey::new(seed as u64, DRAWING_INDEX),
            count,
        )
    }
}
