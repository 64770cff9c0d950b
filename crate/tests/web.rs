//! Tests that run in headless Chromium (`wasm-pack test --headless --chrome --release`) and,
//! where marked `unsupported = test`, natively too: the same engine must give the same
//! numbers in both places.

use bitsmooth::data::Dataset;
use bitsmooth::eval;
use bitsmooth::model::Model;
use candle_core::Device;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const MODEL: &[u8] = include_bytes!("../../public/models/mnist-sigma0.25.safetensors");
/// The first 8 images of the MNIST test set: `bitsmooth prepare-data --out /tmp/full --site crate/tests/fixtures --subset 8`.
const IMAGES: &[u8] = include_bytes!("fixtures/mnist-test.bsds");
/// Logits of MODEL on IMAGES computed natively by
/// `bitsmooth eval --model public/models/mnist-sigma0.25.safetensors --data crate/tests/fixtures/mnist-test.bsds --logits --json`.
const REFERENCE: &str = include_str!("fixtures/mnist-sigma0.25-head8-logits.json");
/// Largest allowed absolute difference between wasm and native logits: both run the same f32
/// code, but SIMD width and summation order differ.
const LOGIT_TOLERANCE: f32 = 1e-4;

fn reference_logits() -> Vec<f32> {
    let v: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
    v["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[wasm_bindgen_test(unsupported = test)]
fn logits_equal_the_native_reference_within_tolerance() {
    let model = Model::from_safetensors(MODEL, &Device::Cpu).unwrap();
    let data = Dataset::from_bytes(IMAGES).unwrap();
    let got = eval::logits(&model, &data, 0, data.len()).unwrap();
    let want = reference_logits();
    assert_eq!(got.len(), want.len());
    assert_eq!(got.len(), 80);
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= LOGIT_TOLERANCE, "largest logit difference {worst}");
    // and the predictions are the labels (the model is good on these eight)
    let eval = eval::evaluate(&model, &data, 0, data.len(), &mut |_, _| {}).unwrap();
    assert_eq!(eval.predictions, data.labels);
}

#[wasm_bindgen_test(unsupported = test)]
fn noisy_counts_are_reproducible_from_the_seed() {
    let model = Model::from_safetensors(MODEL, &Device::Cpu).unwrap();
    let data = Dataset::from_bytes(IMAGES).unwrap();
    let a = eval::noisy_counts(&model, &data, 0, 64, 0.25, 9).unwrap();
    let b = eval::noisy_counts(&model, &data, 0, 64, 0.25, 9).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.iter().sum::<u32>(), 64);
    // a σ = 0.25 model still recognises a clean-looking digit under its own noise level
    assert!(a[data.labels[0] as usize] >= 48, "{a:?}");
}

#[cfg(target_arch = "wasm32")]
mod through_the_js_api {
    use super::*;
    use bitsmooth::wasm::Engine;
    use wasm_bindgen::JsValue;

    fn message(e: wasm_bindgen::JsError) -> String {
        let v: JsValue = e.into();
        js_sys::Error::from(v).message().into()
    }

    #[wasm_bindgen_test]
    fn bad_inputs_become_js_errors_with_messages_and_lose_nothing() {
        let mut engine = Engine::new();
        assert!(message(engine.classify(0, 1).unwrap_err()).contains("no model loaded"));
        assert!(message(engine.load_model(b"not a model").unwrap_err()).contains("model file"));
        engine.load_model(MODEL).unwrap();
        assert!(message(engine.classify(0, 1).unwrap_err()).contains("no dataset loaded"));
        let truncated = &IMAGES[..IMAGES.len() - 10];
        assert!(message(engine.load_dataset(truncated).unwrap_err()).contains("truncated"));
        engine.load_dataset(IMAGES).unwrap();
        // a corrupt model after a good one keeps the good one
        let half = &MODEL[..MODEL.len() / 2];
        assert!(message(engine.load_model(half).unwrap_err()).contains("truncated or corrupt"));
        assert!(engine.classify(0, 8).is_ok());
        assert!(message(engine.classify(4, 8).unwrap_err()).contains("images 4..12"));
        assert!(message(engine.noisy_counts(0, 0, 0.25, 1).unwrap_err()).contains("copies"));
        assert!(
            message(engine.noisy_counts(0, 10_000_000, 0.25, 1).unwrap_err()).contains("copies")
        );
        assert!(message(engine.noisy_counts(0, 10, 0.0, 1).unwrap_err()).contains("σ"));
        assert!(message(engine.noisy_counts(0, 10, f32::NAN, 1).unwrap_err()).contains("σ"));
        assert!(message(engine.images(7, 2).unwrap_err()).contains("images 7..9"));
        assert_eq!(engine.images(0, 2).unwrap().len(), 2 * 784);
    }
}
