//! Certification from JavaScript: CERTIFY (Cohen et al.), incremental certification (IRS)
//! against the stored model, and the noisy copies both draw.

use super::{classifier, js_err, to_js, Engine, ReferenceKey};
use crate::error::Error;
use crate::eval;
use crate::smoothing::{
    self, BaseClassifier, Certificate, CertificationRow, CertifyParams, NoiseKey, NoisyCopies,
};
use serde::Serialize;
use wasm_bindgen::prelude::*;

/// Most noisy copies one call may ask for (keeps a typo from exhausting memory).
pub const MAX_COPIES: usize = 100_000;

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

impl CertifySettings {
    /// CERTIFY's parameters, validated (messages name the setting).
    pub(super) fn params(&self) -> Result<CertifyParams, JsError> {
        let params = CertifyParams {
            sigma: self.sigma,
            n0: sample_count("n0", self.n0)?,
            n: sample_count("n", self.n)?,
            alpha: self.alpha,
            batch: self.batch,
        };
        params.validate().map_err(js_err)?;
        Ok(params)
    }
}

/// A certified image as the UI shows it: the TSV row plus the statistics behind it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CertifiedImage {
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

impl CertifiedImage {
    /// Image `index` (label `label`) certified as `cert` in `seconds`, noise seed `seed`.
    pub(super) fn new(
        index: usize,
        label: u32,
        cert: &Certificate,
        seconds: f64,
        seed: u32,
    ) -> Self {
        Self {
            row: CertificationRow::from_certificate(index as u64, label, cert, seconds),
            p_a: cert.p_a,
            c_hat: cert.c_hat,
            counts: cert.counts.clone(),
            sigma: cert.sigma,
            seed,
        }
    }
}

/// Settings of an incremental certification: CERTIFY's plus IRS's.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct IrsSettings {
    #[serde(flatten)]
    certify: CertifySettings,
    /// Replayed samples n_χ.
    n_chi: f64,
    /// Threshold γ on the reference p_A above which IRS recertifies from scratch.
    #[serde(default = "default_gamma")]
    gamma: f64,
}

fn default_gamma() -> f64 {
    smoothing::DEFAULT_GAMMA
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IncrementalResult {
    /// The quantized model's certification (TSV columns).
    #[serde(flatten)]
    row: CertificationRow,
    path: smoothing::IrsPath,
    zeta: Option<f64>,
    disagreements: Option<u64>,
    n_chi: u64,
    /// The float model's certification it started from.
    reference: CertificationRow,
    /// Seconds spent certifying the float model now (0 when its certificate was cached).
    reference_seconds: f64,
    reference_cached: bool,
    irs_seconds: f64,
}

#[wasm_bindgen]
impl Engine {
    /// Class counts over `copies` noisy copies (N(0, σ²), seeded) of image `index`.
    #[wasm_bindgen(js_name = noisyCounts)]
    pub fn noisy_counts(
        &mut self,
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
        if self.candle {
            let (model, data) = (self.model()?, self.data()?);
            return eval::noisy_counts(model, data, index, copies, sigma, seed as u64)
                .map_err(js_err);
        }
        let f = classifier(false, &mut self.model, &mut self.fast)?;
        let data = self
            .data
            .as_ref()
            .ok_or_else(|| js_err("no dataset loaded: call loadDataset first"))?;
        data.check_range(index, 1).map_err(js_err)?;
        let device = candle_core::Device::Cpu;
        let x = crate::noise::noisy_copies(data.image(index), copies, sigma, seed as u64, &device)
            .and_then(|x| Ok(x.flatten_all()?.to_vec1::<f32>()?))
            .map_err(js_err)?;
        let mut counts = vec![0u32; f.num_classes()];
        for class in f.classify_batch(&x, copies).map_err(js_err)? {
            counts[class as usize] += 1;
        }
        Ok(counts)
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
        let seed = s.seed;
        let params = s.params()?;
        let data = self
            .data
            .as_ref()
            .ok_or_else(|| js_err("no dataset loaded: call loadDataset first"))?;
        data.check_range(index, 1).map_err(js_err)?;
        let image = data.image(index).to_vec();
        let label = data.labels[index] as u32;
        let f = classifier(self.candle, &mut self.model, &mut self.fast)?;
        let started = js_sys::Date::now();
        let mut progress = |done: u64, total: u64| report_progress(&on_progress, done, total);
        let key = NoiseKey::new(seed as u64, index as u32);
        let cert = smoothing::certify(f, &image, &params, key, &mut progress)
            .map_err(js_err)?
            .completed()
            .ok_or_else(|| js_err("certification was cancelled"))?;
        let seconds = (js_sys::Date::now() - started) / 1000.0;
        to_js(&CertifiedImage::new(index, label, &cert, seconds, seed))
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
        noisy_bytes(
            data.image(index),
            sigma,
            NoiseKey::new(seed as u64, index as u32),
            count,
        )
    }

    /// Incremental randomized smoothing (Ugare et al. 2024) for image `index`: certifies the
    /// float model f with CERTIFY (or reuses its cached certificate for the same image, seed
    /// and settings), then the current policy's model fᵖ from n_χ replayed noisy samples.
    /// `settings` = CERTIFY's `{ sigma, n0, n, alpha, seed, batch }` plus `{ nChi, gamma? }`.
    #[wasm_bindgen(js_name = certifyIncremental)]
    pub fn certify_incremental(
        &mut self,
        index: usize,
        settings: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Result<JsValue, JsError> {
        let s: IrsSettings = serde_wasm_bindgen::from_value(settings)
            .map_err(|e| js_err(format!("incremental certification settings: {e}")))?;
        if self.runs_as_stored()? {
            return Err(js_err("incremental certification compares a lower-precision policy with the stored model: set a bit policy other than the stored one first"));
        }
        let params = s.certify.params()?;
        let irs = smoothing::IrsParams {
            n_chi: sample_count("nChi", s.n_chi)?,
            alpha_chi: params.alpha,
            gamma: s.gamma,
            n0: params.n0,
            batch: params.batch,
        };
        irs.validate().map_err(js_err)?;
        let data = self
            .data
            .as_ref()
            .ok_or_else(|| js_err("no dataset loaded: call loadDataset first"))?;
        data.check_range(index, 1).map_err(js_err)?;
        let (image, label) = (data.image(index).to_vec(), data.labels[index] as u32);
        let seed = s.certify.seed;
        let key: ReferenceKey = (
            index,
            seed,
            params.n0,
            params.n,
            params.alpha.to_bits(),
            params.sigma.to_bits(),
        );
        let f = classifier(self.candle, &mut self.reference, &mut self.fast_reference)?;
        let f_p = classifier(self.candle, &mut self.model, &mut self.fast)?;
        let mut progress = |done: u64, total: u64| report_progress(&on_progress, done, total);
        let started = js_sys::Date::now();
        let reference_cached = self.references.contains_key(&key);
        if !reference_cached {
            let cert = smoothing::certify(
                f,
                &image,
                &params,
                NoiseKey::new(seed as u64, index as u32),
                &mut progress,
            )
            .map_err(js_err)?
            .completed()
            .ok_or_else(|| js_err("certification was cancelled"))?;
            self.references.insert(key, cert);
        }
        let reference = &self.references[&key];
        let reference_seconds = (js_sys::Date::now() - started) / 1000.0;
        let irs_started = js_sys::Date::now();
        let cert = smoothing::certify_incremental(f, f_p, &image, reference, &irs, &mut progress)
            .map_err(js_err)?
            .completed()
            .ok_or_else(|| js_err("certification was cancelled"))?;
        let irs_seconds = (js_sys::Date::now() - irs_started) / 1000.0;
        to_js(&IncrementalResult {
            row: CertificationRow::from_incremental(index as u64, label, &cert, irs_seconds),
            path: cert.path,
            zeta: cert.zeta,
            disagreements: cert.disagreements,
            n_chi: cert.n_chi,
            reference: CertificationRow::from_certificate(
                index as u64,
                label,
                reference,
                reference_seconds,
            ),
            reference_seconds,
            reference_cached,
            irs_seconds,
        })
    }
}

/// The first `count` of CERTIFY's estimation draws of `image` under `key`, clamped to [0, 1]
/// and scaled to 0..=255 for display (shared by test images and drawings).
pub(super) fn noisy_bytes(
    image: &[u8],
    sigma: f32,
    key: NoiseKey,
    count: usize,
) -> Result<Vec<u8>, JsError> {
    let copies = NoisyCopies::new(image, sigma, key).map_err(js_err)?;
    let first = smoothing::ESTIMATION_SAMPLES;
    let mut values = Vec::new();
    copies.fill(first..first + count as u64, &mut values);
    Ok(values
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect())
}

/// Calls the optional JS progress callback; a throwing callback must not abort the work, so
/// its error is ignored, and the work is never cancelled from here (cancelling is done by
/// terminating the worker).
pub(super) fn report_progress(callback: &Option<js_sys::Function>, done: u64, total: u64) -> bool {
    if let Some(f) = callback {
        let _ = f.call2(
            &JsValue::NULL,
            &JsValue::from_f64(done as f64),
            &JsValue::from_f64(total as f64),
        );
    }
    true
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
