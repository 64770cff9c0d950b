//! Bit policies from JavaScript: switching the model's widths by Double Rounding, their
//! cost (BOPs, size), weight histograms and the policy-switch benchmark.

use super::{js_err, lower, stored_policy, to_js, Engine};
use crate::checkpoint;
use crate::quant::{self, Policy, Switchable};
use serde::Serialize;
use wasm_bindgen::prelude::*;

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

#[wasm_bindgen]
impl Engine {
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

    /// Benchmark (bench-gpu.html): activation values fake-quantized per second on the CPU by
    /// the executor's quantizer (4 bits), over `values` values repeated until ≥ 50 ms pass —
    /// the CPU side of the GPU's fake-quantization figure.
    #[wasm_bindgen(js_name = benchFakeQuant)]
    pub fn bench_fake_quant(&self, values: usize) -> Result<f64, JsError> {
        if !(1..=1 << 24).contains(&values) {
            return Err(js_err(format!(
                "values must be in 1..=16777216, got {values}"
            )));
        }
        let q = crate::exec::plan::Quantizer::new(&crate::model::ActQuant {
            scale: 0.05,
            bits: 4,
        })
        .map_err(js_err)?;
        let input: Vec<f32> = (0..values).map(|i| (i % 1000) as f32 / 250.0).collect();
        let mut output = vec![0f32; values];
        let (started, mut done) = (js_sys::Date::now(), 0usize);
        while done == 0 || js_sys::Date::now() - started < 50.0 {
            for (o, &v) in output.iter_mut().zip(&input) {
                *o = q.apply(v);
            }
            std::hint::black_box(&output);
            done += values;
        }
        Ok(done as f64 / ((js_sys::Date::now() - started) / 1000.0))
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
}

impl Engine {
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
