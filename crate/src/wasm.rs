//! The JavaScript surface: one [`Engine`] per Web Worker. The only module that knows about
//! JavaScript; every method is a thin wrapper over plain Rust that native tests exercise.
//! Errors cross the boundary as JS `Error`s with the engine's message, never as panics.

use crate::checkpoint;
use crate::data::Dataset;
use crate::error::Error;
use crate::eval;
use crate::exec::CpuExecutor;
use crate::model::{LayerSpec, Model};
use crate::quant::{self, Policy, Switchable};
use crate::smoothing::{
    self, BaseClassifier, Certificate, CertificationRow, CertifyParams, NoiseKey, NoisyCopies,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::collections::HashMap;
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
    /// `float` or `int8` (multi-bit, switchable by Double Rounding) or `export`.
    kind: &'a str,
    /// Bit-widths a multi-bit model was trained at.
    bits: &'a [u8],
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

impl CertifySettings {
    /// CERTIFY's parameters, validated (messages name the setting).
    fn params(&self) -> Result<CertifyParams, JsError> {
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

/// A bit policy as JavaScript passes it (`null` = the float model).
#[derive(serde::Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct PolicyJs {
    weight_bits: Vec<u8>,
    act_bits: Vec<u8>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PolicyCost {
    policy: Option<PolicyJs>,
    bops: u64,
    size_bytes: f64,
    layers: Vec<quant::LayerCost>,
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

    /// Runs classification on `"fast"` (the default: our executor) or `"candle"` (the
    /// reference model, to check the executor against).
    #[wasm_bindgen(js_name = setExecutor)]
    pub fn set_executor(&mut self, name: &str) -> Result<(), JsError> {
        self.candle = match name {
            "fast" => false,
            "candle" => true,
            other => {
                return Err(js_err(Error::Invalid(format!(
                    "the executor is \"fast\" or \"candle\", got {other:?}"
                ))))
            }
        };
        Ok(())
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

    /// Switches the model to a bit policy `{ weightBits: [..], actBits: [..] }` (one width in
    /// 2..=8 per quantizable layer, forward order) or back to the stored model with `null`
    /// (w8a8 for an int8 model, float for a float one). The weights are derived from the int8
    /// masters by Double Rounding's shift. Returns the cost.
    #[wasm_bindgen(js_name = setPolicy)]
    pub fn set_policy(&mut self, policy: JsValue) -> Result<JsValue, JsError> {
        let policy = self.parse_policy(policy)?;
        self.apply_policy(policy)?;
        self.policy_cost(None)
    }

    /// Benchmark of the policy switch (bench.html): mean milliseconds per switch of the whole
    /// model, alternating w4a4 and w6a6, `{ doubleRoundMs, requantizeMs, reps }`.
    /// `doubleRoundMs` is what `setPolicy` does (shift the int8 masters, dequantize into the
    /// model, re-lower the executor); `requantizeMs` is the same but starting from a float
    /// copy of the weights that is quantized again on every switch (max-abs scales, round,
    /// shift) — what a system without an int8 master would do. Leaves the stored policy.
    #[wasm_bindgen(js_name = benchPolicySwitch)]
    pub fn bench_policy_switch(&mut self, reps: u32) -> Result<JsValue, JsError> {
        if !(2..=10_000).contains(&reps) {
            return Err(js_err(format!("reps must be in 2..=10000, got {reps}")));
        }
        self.ensure_switchable()?;
        let layers = self.model()?.layers.len();
        let policies = [4, 6].map(|b| Policy::uniform(layers, b, b).expect("valid widths"));
        let switchable = self.switchable.take().expect("made above");
        let floats: Vec<(Vec<f32>, Vec<usize>)> = self
            .model()?
            .weights
            .iter()
            .map(|w| Ok((w.flatten_all()?.to_vec1::<f32>()?, w.dims().to_vec())))
            .collect::<crate::Result<_>>()
            .map_err(js_err)?;
        let mut time = |requantize: bool| -> Result<f64, JsError> {
            let started = js_sys::Date::now();
            for k in 0..reps as usize {
                let model = self.model.as_mut().expect("checked above");
                if requantize {
                    let masters = floats
                        .iter()
                        .map(|(w, shape)| quant::QuantizedWeights::from_float(w, shape))
                        .collect::<crate::Result<Vec<_>>>()
                        .map_err(js_err)?;
                    let fresh = Switchable {
                        masters,
                        act_scales: switchable.act_scales.clone(),
                    };
                    fresh.apply(model, &policies[k % 2]).map_err(js_err)?;
                } else {
                    switchable.apply(model, &policies[k % 2]).map_err(js_err)?;
                }
                lower(&self.model, &mut self.fast)?;
            }
            Ok((js_sys::Date::now() - started) / reps as f64)
        };
        let timed = time(false).and_then(|d| Ok((d, time(true)?)));
        self.switchable = Some(switchable);
        let (double_round_ms, requantize_ms) = timed?;
        self.apply_policy(self.policy.clone())?;
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Timing {
            double_round_ms: f64,
            requantize_ms: f64,
            reps: u32,
        }
        to_js(&Timing {
            double_round_ms,
            requantize_ms,
            reps,
        })
    }

    /// BOPs (MACs × b_w × b_a) and weight size of a policy (`null`/omitted: the current one;
    /// float counts as 32 bits), in total and per layer.
    #[wasm_bindgen(js_name = policyCost)]
    pub fn policy_cost(&self, policy: Option<JsValue>) -> Result<JsValue, JsError> {
        let policy = match policy.filter(|p| !p.is_null() && !p.is_undefined()) {
            Some(p) => self.parse_policy(p)?,
            None => self.policy.clone(),
        };
        let per_layer =
            quant::layer_costs(&self.model()?.layers, policy.as_ref()).map_err(js_err)?;
        to_js(&PolicyCost {
            bops: per_layer.iter().map(|l| l.bops).sum(),
            size_bytes: per_layer.iter().map(|l| l.size_bytes).sum(),
            layers: per_layer,
            policy: policy.map(|p| PolicyJs {
                weight_bits: p.weight_bits,
                act_bits: p.act_bits,
            }),
        })
    }

    /// Histogram of layer `layer`'s integer weights at `bits` and at 8 bits (the stored
    /// master), so the double rounding can be seen: `{ bits, counts, counts8 }` where
    /// `counts[v + 2^(bits−1)]` is how many weights have the integer value v.
    #[wasm_bindgen(js_name = weightHistogram)]
    pub fn weight_histogram(&mut self, layer: usize, bits: u8) -> Result<JsValue, JsError> {
        self.ensure_switchable()?;
        let masters = &self.switchable.as_ref().expect("made above").masters;
        let master = masters.get(layer).ok_or_else(|| {
            js_err(format!(
                "layer {layer} does not exist (the model has {})",
                masters.len()
            ))
        })?;
        #[derive(Serialize)]
        struct Histogram {
            bits: u8,
            counts: Vec<u32>,
            counts8: Vec<u32>,
        }
        to_js(&Histogram {
            bits,
            counts: master.histogram(bits).map_err(js_err)?,
            counts8: master.histogram(quant::MAX_BITS).map_err(js_err)?,
        })
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

    fn parse_policy(&self, policy: JsValue) -> Result<Option<Policy>, JsError> {
        if policy.is_null() || policy.is_undefined() {
            return Ok(None);
        }
        let p: PolicyJs = serde_wasm_bindgen::from_value(policy).map_err(|e| {
            js_err(format!(
                "a policy is {{ weightBits: number[], actBits: number[] }}: {e}"
            ))
        })?;
        let policy = Policy {
            weight_bits: p.weight_bits,
            act_bits: p.act_bits,
        };
        policy
            .validate(self.model()?.layers.len())
            .map_err(js_err)?;
        Ok(Some(policy))
    }

    /// Switches to `policy` (see `setPolicy`) and re-lowers the executor.
    fn apply_policy(&mut self, mut policy: Option<Policy>) -> Result<(), JsError> {
        if policy.is_none() && self.is_int8() {
            policy = Some(stored_policy(self.model()?).map_err(js_err)?);
        }
        match &policy {
            None => {
                let float = checkpoint::load_float(&self.model_bytes).map_err(js_err)?;
                self.model = Some(float);
            }
            Some(p) => {
                self.ensure_switchable()?;
                let (switchable, model) = (
                    self.switchable.as_ref().expect("made above"),
                    self.model.as_mut(),
                );
                let model = model.ok_or_else(|| js_err("no model loaded: call loadModel first"))?;
                switchable.apply(model, p).map_err(js_err)?;
            }
        }
        self.policy = policy;
        lower(&self.model, &mut self.fast)
    }

    /// Makes the int8 masters and activation ranges from the float model, once per model.
    fn ensure_switchable(&mut self) -> Result<(), JsError> {
        if self.switchable.is_some() {
            return Ok(());
        }
        let reference = self
            .reference
            .as_ref()
            .ok_or_else(|| js_err("no model loaded: call loadModel first"))?;
        let images = self
            .calibration
            .as_ref()
            .ok_or_else(|| js_err("no calibration images loaded: call loadCalibration first"))?;
        let batch = quant::calibration_batch(images, reference.meta.sigma).map_err(js_err)?;
        self.switchable = Some(Switchable::from_float(reference, &batch).map_err(js_err)?);
        Ok(())
    }
}

/// Calls the optional JS progress callback; a throwing callback must not abort the work, so
/// its error is ignored, and the work is never cancelled from here (cancelling is done by
/// terminating the worker).
fn report_progress(callback: &Option<js_sys::Function>, done: u64, total: u64) -> bool {
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
