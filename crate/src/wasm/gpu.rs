//! The GPU executor from JavaScript (WebGPU): a [`GpuSession`] holds the device and the
//! executor of one worker and certifies the images of that worker's [`Engine`] on it.
//!
//! The browser cannot block on the GPU, so every call that reads from it returns a
//! `Promise`. CERTIFY is the library's own: the selection and estimation counts are drawn on
//! the same sample ranges as `smoothing::certify` draws them, only awaited chunk by chunk,
//! and [`Certificate::from_draws`] makes the decision.

use super::certify::{report_progress, CertifiedImage, CertifySettings};
use super::{js_err, to_js, Engine};
use crate::error::Error;
use crate::exec::plan::Quantizer;
use crate::gpu::kernels::FakeQuantizer;
use crate::gpu::{Gpu, GpuExecutor};
use crate::model::ActQuant;
use crate::smoothing::{Certificate, NoiseKey, NoisyCopies, ESTIMATION_SAMPLES, SELECTION_SAMPLES};
use std::cell::RefCell;
use std::ops::Range;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// The GPU of one worker. The executor (made on the first certification) is taken out of its
/// cell while a call awaits the GPU: a call that arrives meanwhile finds it gone and is
/// refused with an error, never run interleaved.
#[wasm_bindgen]
pub struct GpuSession {
    gpu: Gpu,
    exec: Rc<RefCell<Option<GpuExecutor>>>,
    /// Whether an executor was made (it may be out on a call).
    made: std::cell::Cell<bool>,
}

const BUSY: &str = "the GPU is busy with another call";

/// Puts the executor back into its cell when a call ends, however it ends.
struct Lent {
    exec: Option<GpuExecutor>,
    home: Rc<RefCell<Option<GpuExecutor>>>,
}

impl Lent {
    fn get(&mut self) -> &mut GpuExecutor {
        self.exec.as_mut().expect("lent until dropped")
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        *self.home.borrow_mut() = self.exec.take();
    }
}

/// Timings of the GPU benchmark (see [`GpuSession::bench`]).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct GpuBench {
    /// Noisy copies per second through the whole network, counts read back once per call.
    samples_per_second: f64,
    /// Activation values fake-quantized per second (upload + one dispatch, no read-back).
    fake_quant_per_second: f64,
    /// Bringing the executor to the engine's policy until the GPU is done, milliseconds: for
    /// an int8 model one Double Rounding dispatch of every layer plus the small uploads.
    policy_switch_ms: f64,
    /// Copies per GPU chunk (sized from the adapter's limits).
    chunk: usize,
}

fn gpu_err(e: impl std::fmt::Display) -> JsValue {
    // the future's error: a JS Error with the message, like the synchronous calls' JsError
    JsError::new(&e.to_string()).into()
}

#[wasm_bindgen]
impl GpuSession {
    /// Requests WebGPU's adapter and a device; rejects with a message when the browser has
    /// none (no `navigator.gpu`, or no adapter, or the adapter refuses a device).
    pub async fn create() -> Result<GpuSession, JsError> {
        let gpu = Gpu::request().await.map_err(js_err)?;
        Ok(GpuSession {
            gpu,
            exec: Rc::new(RefCell::new(None)),
            made: std::cell::Cell::new(false),
        })
    }

    /// What wgpu reports of the adapter (the page adds what `navigator.gpu` says).
    pub fn description(&self) -> String {
        self.gpu.description()
    }

    /// Destroys the device (a simulated device loss, for testing the CPU fallback).
    #[wasm_bindgen(js_name = loseDevice)]
    pub fn lose_device(&self) {
        self.gpu.destroy();
    }

    /// CERTIFY for image `index` of `engine`'s dataset, at `engine`'s current model and
    /// policy, on the GPU: the noise drawn there and only class counts read back. The same
    /// settings as `Engine.certify` (its `batch` is ignored: the GPU's chunk is sized from the
    /// adapter) and the same result. `on_progress(done, total)` after every chunk.
    pub fn certify(
        &self,
        engine: &Engine,
        index: usize,
        settings: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Result<js_sys::Promise, JsError> {
        let s: CertifySettings = serde_wasm_bindgen::from_value(settings)
            .map_err(|e| js_err(format!("certification settings: {e}")))?;
        let (sigma, seed) = (s.sigma, s.seed);
        let params = s.params()?;
        let data = engine.data()?;
        data.check_range(index, 1).map_err(js_err)?;
        let label = data.labels[index] as u32;
        let key = NoiseKey::new(seed as u64, index as u32);
        let copies = NoisyCopies::new(data.image(index), sigma, key).map_err(js_err)?;
        let mut lent = self.prepare(engine)?;
        Ok(future_to_promise(async move {
            let exec = lent.get();
            let started = js_sys::Date::now();
            let total = params.n0 + params.n;
            let selection = SELECTION_SAMPLES..SELECTION_SAMPLES + params.n0;
            let counts_n0 = counts(exec, &copies, selection, &|done| {
                report_progress(&on_progress, done, total);
            })
            .await?;
            let estimation = ESTIMATION_SAMPLES..ESTIMATION_SAMPLES + params.n;
            let counts = counts(exec, &copies, estimation, &|done| {
                report_progress(&on_progress, params.n0 + done, total);
            })
            .await?;
            let cert = Certificate::from_draws(counts_n0, counts, sigma, params.alpha, key)
                .map_err(gpu_err)?;
            let seconds = (js_sys::Date::now() - started) / 1000.0;
            to_js(&CertifiedImage::new(index, label, &cert, seconds, seed)).map_err(JsValue::from)
        }))
    }

    /// Class counts of `copies` noisy copies of image `index` (seeded, σ), on the GPU.
    #[wasm_bindgen(js_name = noisyCounts)]
    pub fn noisy_counts(
        &self,
        engine: &Engine,
        index: usize,
        copies: usize,
        sigma: f32,
        seed: u32,
    ) -> Result<js_sys::Promise, JsError> {
        let data = engine.data()?;
        data.check_range(index, 1).map_err(js_err)?;
        if copies == 0 || copies > super::MAX_COPIES {
            return Err(js_err(Error::Invalid(format!(
                "copies must be in 1..={}, got {copies}",
                super::MAX_COPIES
            ))));
        }
        let key = NoiseKey::new(seed as u64, index as u32);
        let noisy = NoisyCopies::new(data.image(index), sigma, key).map_err(js_err)?;
        let mut lent = self.prepare(engine)?;
        Ok(future_to_promise(async move {
            let exec = lent.get();
            let range = ESTIMATION_SAMPLES..ESTIMATION_SAMPLES + copies as u64;
            let counts = exec
                .noisy_counts_async(&noisy, range)
                .await
                .map_err(gpu_err)?;
            let counts: Vec<u32> = counts.into_iter().map(|c| c as u32).collect();
            Ok(js_sys::Uint32Array::from(&counts[..]).into())
        }))
    }

    /// Times the GPU at `engine`'s model and policy: `samples` noisy copies of image `index`
    /// through the network (counts read back once), `values` activation values
    /// fake-quantized, and a policy switch by Double Rounding. Resolves to
    /// `{ samplesPerSecond, fakeQuantPerSecond, policySwitchMs, chunk }`.
    pub fn bench(
        &self,
        engine: &Engine,
        index: usize,
        samples: usize,
        values: usize,
    ) -> Result<js_sys::Promise, JsError> {
        if !(1..=super::MAX_COPIES).contains(&samples) || !(1..=1 << 24).contains(&values) {
            return Err(js_err(Error::Invalid(format!(
                "bench: 1..={} samples and 1..=16,777,216 values, got {samples} and {values}",
                super::MAX_COPIES
            ))));
        }
        let data = engine.data()?;
        data.check_range(index, 1).map_err(js_err)?;
        let sigma = engine.model()?.meta.sigma;
        let noisy = NoisyCopies::new(data.image(index), sigma, NoiseKey::new(0, index as u32))
            .map_err(js_err)?;
        let switch_started = js_sys::Date::now();
        let mut lent = self.prepare(engine)?;
        let gpu = self.gpu.clone();
        Ok(future_to_promise(async move {
            gpu.finish().await.map_err(gpu_err)?;
            let switch = js_sys::Date::now() - switch_started;
            let quantizer = FakeQuantizer::new(&gpu, values).map_err(gpu_err)?;
            let input: Vec<f32> = (0..values).map(|i| (i % 1000) as f32 / 250.0).collect();
            let q = Quantizer::new(&ActQuant {
                scale: 0.05,
                bits: 4,
            })
            .map_err(gpu_err)?;
            quantizer.run_async(q, &input).await.map_err(gpu_err)?; // warm-up
            let t = js_sys::Date::now();
            quantizer.run_async(q, &input).await.map_err(gpu_err)?;
            let fake_quant_seconds = (js_sys::Date::now() - t) / 1000.0;
            let exec = lent.get();
            exec.noisy_counts_async(&noisy, 0..exec.capacity().min(samples) as u64)
                .await
                .map_err(gpu_err)?; // warm-up: pipelines compiled, buffers touched
            let t = js_sys::Date::now();
            exec.noisy_counts_async(&noisy, 0..samples as u64)
                .await
                .map_err(gpu_err)?;
            let forward_seconds = (js_sys::Date::now() - t) / 1000.0;
            to_js(&GpuBench {
                samples_per_second: samples as f64 / forward_seconds.max(1e-6),
                fake_quant_per_second: values as f64 / fake_quant_seconds.max(1e-6),
                policy_switch_ms: switch,
                chunk: exec.capacity(),
            })
            .map_err(JsValue::from)
        }))
    }
}

impl GpuSession {
    /// Lends the executor, brought to `engine`'s model: an int8 model's policy is applied by
    /// Double Rounding on the GPU from the int8 masters; any other model (float, or a float
    /// model quantized after training) is lowered on the CPU and uploaded. A quantized policy
    /// runs on the integer path, the model's definition, as on the CPU workers (bit for bit
    /// the same logits); a float model in float. Refused while another call has it.
    fn prepare(&self, engine: &Engine) -> Result<Lent, JsError> {
        let model = engine.model()?;
        let taken = self.exec.borrow_mut().take();
        let mut exec = match taken {
            Some(exec) => exec,
            None if self.made.get() => return Err(js_err(BUSY)),
            None => {
                let exec = GpuExecutor::new(&self.gpu, model)
                    .and_then(|e| e.integer_path(model))
                    .map_err(js_err)?;
                self.made.set(true);
                exec
            }
        };
        let lowered = match (&engine.switchable, &engine.policy) {
            (Some(switchable), Some(policy)) if engine.is_int8() => {
                exec.set_policy(model, switchable, policy)
            }
            _ => exec.reload(model),
        };
        // lent from here on: back into the cell when the call ends (or now, on an error)
        let lent = Lent {
            exec: Some(exec),
            home: self.exec.clone(),
        };
        lowered.map_err(js_err)?;
        Ok(lent)
    }
}

/// The class counts of `samples`, awaited chunk by chunk so that `progress(done)` can
/// report after each.
async fn counts(
    exec: &mut GpuExecutor,
    copies: &NoisyCopies,
    samples: Range<u64>,
    progress: &dyn Fn(u64),
) -> Result<Vec<u64>, JsValue> {
    let chunk = exec.capacity() as u64;
    let mut total = vec![0u64; crate::model::NUM_CLASSES];
    let mut first = samples.start;
    while first < samples.end {
        let end = samples.end.min(first + chunk);
        let counts = exec
            .noisy_counts_async(copies, first..end)
            .await
            .map_err(gpu_err)?;
        for (t, c) in total.iter_mut().zip(counts) {
            *t += c;
        }
        first = end;
        progress(first - samples.start);
    }
    Ok(total)
}
