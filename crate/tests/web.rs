//! Tests that run in headless Chromium (`wasm-pack test --headless --chrome --release`) and,
//! where marked `unsupported = test`, natively too: the same engine must give the same
//! numbers in both places.

use bitsmooth::data::Dataset;
use bitsmooth::eval;
use wasm_bindgen_test::*;

// In a dedicated worker, as the site runs the engine: a long certification on the page's own
// thread left Chromium unresponsive to the driver for over 30 s on a loaded machine and ended
// the run ("Timed out receiving message from renderer").
wasm_bindgen_test_configure!(run_in_dedicated_worker);

const MODEL: &[u8] = include_bytes!("../../public/models/mnist-sigma0.25.safetensors");
/// The float model the int8 one was trained from (a float file must keep working).
#[cfg(target_arch = "wasm32")]
const FLOAT_MODEL: &[u8] = include_bytes!("../../models/float/mnist-sigma0.25.safetensors");
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
    let model = bitsmooth::checkpoint::load(MODEL).unwrap().model;
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
    let model = bitsmooth::checkpoint::load(MODEL).unwrap().model;
    let data = Dataset::from_bytes(IMAGES).unwrap();
    let a = eval::noisy_counts(&model, &data, 0, 64, 0.25, 9).unwrap();
    let b = eval::noisy_counts(&model, &data, 0, 64, 0.25, 9).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.iter().sum::<u32>(), 64);
    // a σ = 0.25 model still recognises a clean-looking digit under its own noise level
    assert!(a[data.labels[0] as usize] >= 48, "{a:?}");
}

/// `bitsmooth certify --model public/models/mnist-sigma0.25.safetensors --sigma 0.75 --data crate/tests/fixtures/mnist-test.bsds --n0 20 --n 200 --seed 3 --out crate/tests/fixtures/mnist-certify-sigma0.75-n200-seed3.tsv`
const CERTIFIED: &str = include_str!("fixtures/mnist-certify-sigma0.75-n200-seed3.tsv");

#[wasm_bindgen_test(unsupported = test)]
fn certification_counts_equal_the_native_cli_run_for_the_same_seed() {
    use bitsmooth::smoothing::{certify, CertifyParams, NoiseKey};
    let mut model = bitsmooth::checkpoint::load(MODEL).unwrap().model;
    let data = Dataset::from_bytes(IMAGES).unwrap();
    let params = CertifyParams {
        sigma: 0.75,
        n0: 20,
        n: 200,
        alpha: 0.001,
        batch: 100,
    };
    for line in CERTIFIED.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let idx: usize = cols[0].parse().unwrap();
        let cert = certify(
            &mut model,
            data.image(idx),
            &params,
            NoiseKey::new(3, idx as u32),
            &mut |_, _| true,
        )
        .unwrap()
        .completed()
        .unwrap();
        let predict = cert.prediction.map_or(-1, |c| c as i64);
        assert_eq!(predict.to_string(), cols[2], "image {idx}");
        assert_eq!(cert.n_a.to_string(), cols[6], "image {idx}: nA");
        assert!(
            (cert.radius - cols[3].parse::<f64>().unwrap()).abs() < 1e-4,
            "image {idx}: radius"
        );
    }
}

/// The first 8 Fashion-MNIST test images, made like [`IMAGES`].
const FASHION_IMAGES: &[u8] = include_bytes!("fixtures/fashion-test.bsds");
const FASHION_MODEL: &[u8] = include_bytes!("../../public/models/fashion-sigma0.5.safetensors");

/// Certification of two shipped models by the candle reference, natively, at every trained
/// width and one mixed policy (the learned activation scales and BN sets of each width):
/// `bash crate/tests/fixtures/policies/make.sh` (n0 = 100, n = 200, seed 7, 2 images).
const POLICY_RUNS: [(&str, &str); 10] = [
    (
        "mnist w8a8",
        include_str!("fixtures/policies/mnist-sigma0.25-w8a8.tsv"),
    ),
    (
        "mnist w6a6",
        include_str!("fixtures/policies/mnist-sigma0.25-w6a6.tsv"),
    ),
    (
        "mnist w4a4",
        include_str!("fixtures/policies/mnist-sigma0.25-w4a4.tsv"),
    ),
    (
        "mnist w2a2",
        include_str!("fixtures/policies/mnist-sigma0.25-w2a2.tsv"),
    ),
    (
        "mnist mixed",
        include_str!("fixtures/policies/mnist-sigma0.25-mixed.tsv"),
    ),
    (
        "fashion w8a8",
        include_str!("fixtures/policies/fashion-sigma0.5-w8a8.tsv"),
    ),
    (
        "fashion w6a6",
        include_str!("fixtures/policies/fashion-sigma0.5-w6a6.tsv"),
    ),
    (
        "fashion w4a4",
        include_str!("fixtures/policies/fashion-sigma0.5-w4a4.tsv"),
    ),
    (
        "fashion w2a2",
        include_str!("fixtures/policies/fashion-sigma0.5-w2a2.tsv"),
    ),
    (
        "fashion mixed",
        include_str!("fixtures/policies/fashion-sigma0.5-mixed.tsv"),
    ),
];

/// The policy a fixture was made at (`make.sh`'s `--bits B` or its mixed policy).
fn fixture_policy(name: &str) -> bitsmooth::quant::Policy {
    use bitsmooth::quant::Policy;
    match name.split(' ').nth(1).unwrap() {
        "mixed" => Policy {
            weight_bits: vec![8, 4, 2, 6, 4, 2, 4, 8],
            act_bits: vec![8, 6, 4, 2, 8, 4, 6, 2],
        },
        uniform => {
            let b: u8 = uniform[1..2].parse().unwrap();
            Policy::uniform(8, b, b).unwrap()
        }
    }
}

/// The shipped model of a fixture (`"mnist …"` or `"fashion …"`) at the fixture's policy, and
/// the test images of its dataset.
fn fixture_model(name: &str) -> (bitsmooth::model::Model, Dataset) {
    let (bytes, images) = if name.starts_with("mnist") {
        (MODEL, IMAGES)
    } else {
        (FASHION_MODEL, FASHION_IMAGES)
    };
    let loaded = bitsmooth::checkpoint::load(bytes).unwrap();
    let mut model = loaded.model;
    loaded
        .switchable
        .unwrap()
        .apply(&mut model, &fixture_policy(name))
        .unwrap();
    (model, Dataset::from_bytes(images).unwrap())
}

#[wasm_bindgen_test(unsupported = test)]
fn both_executors_certify_shipped_models_at_their_widths_like_the_native_reference() {
    use bitsmooth::exec::CpuExecutor;
    use bitsmooth::smoothing::{certify, BaseClassifier, CertifyParams, NoiseKey};
    for (name, tsv) in POLICY_RUNS {
        let (mut model, data) = fixture_model(name);
        let mut exec = CpuExecutor::new(&model).unwrap();
        let params = CertifyParams {
            n0: 100,
            n: 200,
            batch: 100,
            ..CertifyParams::new(model.meta.sigma)
        };
        let rows: Vec<&str> = tsv.lines().skip(1).collect();
        assert_eq!(rows.len(), 2, "{name}");
        for line in rows {
            let cols: Vec<&str> = line.split('\t').collect();
            let idx: usize = cols[0].parse().unwrap();
            let run = |f: &mut dyn BaseClassifier| {
                certify(
                    f,
                    data.image(idx),
                    &params,
                    NoiseKey::new(7, idx as u32),
                    &mut |_, _| true,
                )
                .unwrap()
                .completed()
                .unwrap()
            };
            let (candle, fast) = (run(&mut model), run(&mut exec));
            assert_eq!(fast.counts, candle.counts, "{name} image {idx}");
            assert_eq!(fast.counts_n0, candle.counts_n0, "{name} image {idx}");
            let predict = candle.prediction.map_or(-1, |c| c as i64);
            assert_eq!(
                predict.to_string(),
                cols[2],
                "{name} image {idx}: prediction"
            );
            assert_eq!(candle.n_a.to_string(), cols[6], "{name} image {idx}: nA");
            assert_eq!(candle.n.to_string(), cols[7], "{name} image {idx}: n");
        }
    }
}

/// The integer path equals the plain integer reference bit for bit, on both shipped models of
/// the fixtures at every trained width and a mixed policy, for batches of 1 and 7: on i16
/// operands (SIMD128 `i32x4.dot_i16x8_s` in wasm, AVX2 `vpmaddwd` natively) and on the
/// default ones — in the relaxed-SIMD build (`scripts/test.sh` runs this file's integer
/// tests in it too) i8 (`i32x4.relaxed_dot_i8x16_i7x16_add_s`) wherever the activations fit
/// 7 bits; natively u8 with AVX-512 VNNI, else i8 on AVX2 where they fit 7 bits.
#[wasm_bindgen_test(unsupported = test)]
fn integer_kernels_equal_the_integer_reference_bit_for_bit() {
    use bitsmooth::exec::CpuExecutor;
    for (name, _) in POLICY_RUNS {
        let (model, data) = fixture_model(name);
        let narrow = fixture_policy(name).act_bits[1..].iter().all(|&a| a <= 7);
        let default = CpuExecutor::new(&model).unwrap();
        check_integer_executor(name, &model, &data, default, default_operands(narrow));
        let wide = CpuExecutor::new(&model).unwrap().with_quads(false);
        check_integer_executor(name, &model, &data, wide, "i16");
    }
}

/// The operands the executor should pick by default, from what this build and processor
/// offer: u8 levels with AVX-512 VNNI; i8 levels for activations of ≤ 7 bits with AVX2 or
/// wasm relaxed SIMD; i16 otherwise.
fn default_operands(narrow: bool) -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vnni")
        {
            return "u8";
        }
        if is_x86_feature_detected!("avx2") && narrow {
            return "i8";
        }
    }
    let relaxed = cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd"));
    if relaxed && narrow {
        "i8"
    } else {
        "i16"
    }
}

fn check_integer_executor(
    name: &str,
    model: &bitsmooth::model::Model,
    data: &Dataset,
    mut exec: bitsmooth::exec::CpuExecutor,
    operands: &str,
) {
    use bitsmooth::exec::{int_reference, Arithmetic};
    assert_eq!(exec.arithmetic(), Arithmetic::Integer, "{name}");
    assert_eq!(exec.operands(), Some(operands), "{name}");
    // clean images, and noisy copies of image 0 (levels land all over the range)
    let mut inputs: Vec<f32> = (0..4)
        .flat_map(|i| data.image(i).iter().map(|&p| f32::from(p) / 255.0))
        .collect();
    let copies = bitsmooth::smoothing::NoisyCopies::new(
        data.image(0),
        model.meta.sigma,
        bitsmooth::smoothing::NoiseKey::new(3, 0),
    )
    .unwrap();
    let mut noisy = Vec::new();
    copies.fill(0..4, &mut noisy);
    inputs.extend(noisy);
    let want: Vec<f32> = inputs
        .chunks_exact(784)
        .flat_map(|x| int_reference::logits(model, x).unwrap())
        .collect();
    assert_eq!(
        exec.logits(&inputs[..784], 1).unwrap(),
        &want[..10],
        "{name} on {operands}"
    );
    assert_eq!(
        exec.logits(&inputs[784..], 7).unwrap(),
        &want[10..],
        "{name} on {operands}"
    );
}

#[cfg(target_arch = "wasm32")]
mod through_the_js_api {
    use super::*;
    use bitsmooth::wasm::Engine;
    use wasm_bindgen::{JsCast, JsValue};

    fn message(e: wasm_bindgen::JsError) -> String {
        let v: JsValue = e.into();
        js_sys::Error::from(v).message().into()
    }

    /// The stored int8 model runs the integer kernels; "fast-float" switches to the float
    /// path and keeps it across policy changes; the counts of both stay valid.
    #[wasm_bindgen_test]
    fn the_arithmetic_can_be_chosen_and_is_reported() {
        let mut engine = Engine::new();
        engine.load_model(MODEL).unwrap();
        engine.load_dataset(IMAGES).unwrap();
        assert_eq!(engine.arithmetic(), "integer");
        let integer = engine.noisy_counts(0, 200, 0.25, 9).unwrap();
        engine.set_executor("fast-float").unwrap();
        assert_eq!(engine.arithmetic(), "float");
        let float = engine.noisy_counts(0, 200, 0.25, 9).unwrap();
        // the same noise: only copies whose class flips between the arithmetics may move
        let moved: u32 = integer
            .iter()
            .zip(&float)
            .map(|(a, b)| a.abs_diff(*b))
            .sum();
        assert!(moved <= 2, "{integer:?} vs {float:?}");
        engine.set_policy(policy(&[4; 8], &[4; 8])).unwrap();
        assert_eq!(engine.arithmetic(), "float", "kept across a policy change");
        assert_eq!(engine.operands(), "");
        engine.set_executor("fast").unwrap();
        assert_eq!(engine.arithmetic(), "integer");
        // 4-bit activations: i8 operands in the relaxed-SIMD build, i16 in the SIMD128 one
        let relaxed = cfg!(target_feature = "relaxed-simd");
        let build = bitsmooth::wasm::wasm_simd();
        assert_eq!(build, if relaxed { "relaxed-simd" } else { "simd128" });
        assert_eq!(engine.operands(), if relaxed { "i8" } else { "i16" });
        let counts = engine.noisy_counts(0, 200, 0.25, 9).unwrap();
        engine.set_executor("fast-i16").unwrap();
        assert_eq!(
            (engine.arithmetic().as_str(), engine.operands().as_str()),
            ("integer", "i16")
        );
        assert_eq!(engine.noisy_counts(0, 200, 0.25, 9).unwrap(), counts);
        engine.set_policy(policy(&[2; 8], &[2; 8])).unwrap();
        assert_eq!(engine.operands(), "i16", "kept across a policy change");
        engine.set_executor("candle").unwrap();
        assert_eq!(engine.arithmetic(), "candle");
        assert_eq!(engine.operands(), "");
        let err = message(engine.set_executor("gpu").unwrap_err());
        assert!(
            err.contains("fast-float") && err.contains("fast-i16"),
            "{err}"
        );
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
        // one weight byte changed after saving: the recorded digest refuses it
        let mut flipped = MODEL.to_vec();
        let header_len = u64::from_le_bytes(MODEL[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&MODEL[8..8 + header_len]).unwrap();
        let start = header["block2.conv2.weight.q"]["data_offsets"][0]
            .as_u64()
            .unwrap() as usize;
        flipped[8 + header_len + start + 1000] ^= 0x01;
        let err = message(engine.load_model(&flipped).unwrap_err());
        assert!(
            err.contains("the weights do not match the digest recorded in the file: corrupted?"),
            "{err}"
        );
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

    /// A settings object as JavaScript would build it (NaN stays a number).
    fn settings(sigma: f32, n0: f64, n: f64, alpha: f64) -> JsValue {
        let o = js_sys::Object::new();
        for (k, v) in [
            ("sigma", sigma as f64),
            ("n0", n0),
            ("n", n),
            ("alpha", alpha),
            ("seed", 3.0),
            ("batch", 100.0),
        ] {
            js_sys::Reflect::set(&o, &k.into(), &JsValue::from_f64(v)).unwrap();
        }
        o.into()
    }

    #[wasm_bindgen_test]
    fn a_drawing_is_classified_certified_and_its_noise_shown_like_a_test_image() {
        let mut engine = Engine::new();
        engine.load_model(MODEL).unwrap();
        engine.load_dataset(IMAGES).unwrap();
        let get = |v: &JsValue, k: &str| js_sys::Reflect::get(v, &k.into()).unwrap();
        let data = Dataset::from_bytes(IMAGES).unwrap();
        // test image 1 handed in as a drawing: the same class as the grid gives it, at the
        // current policy and as stored, with probabilities that sum to 1
        let pixels = data.image(1).to_vec();
        let grid = engine.classify(1, 1).unwrap();
        let grid_class = js_sys::Array::from(&get(&grid, "predictions"))
            .get(0)
            .as_f64();
        let p = engine.classify_drawing(&pixels).unwrap();
        for which in ["current", "stored"] {
            let a = get(&p, which);
            assert_eq!(get(&a, "prediction").as_f64(), grid_class, "{which}");
            let probs: Vec<f64> = js_sys::Array::from(&get(&a, "probabilities"))
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(probs.len(), 10);
            assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-5);
        }
        // certification uses its own noise key (seed, u32::MAX): the library's CERTIFY with
        // that key on the stored model gives the same counts
        let c = engine
            .certify_drawing(&pixels, settings(0.25, 20.0, 200.0, 0.001), None)
            .unwrap();
        let loaded = bitsmooth::checkpoint::load(MODEL).unwrap();
        let mut exec = bitsmooth::exec::CpuExecutor::new(&loaded.model).unwrap();
        let params = bitsmooth::smoothing::CertifyParams {
            n0: 20,
            n: 200,
            ..bitsmooth::smoothing::CertifyParams::new(0.25)
        };
        let expected = bitsmooth::smoothing::certify(
            &mut exec,
            &pixels,
            &params,
            bitsmooth::smoothing::NoiseKey::new(3, u32::MAX),
            &mut |_, _| true,
        )
        .unwrap()
        .completed()
        .unwrap();
        let counts: Vec<u64> = js_sys::Array::from(&get(&c, "counts"))
            .iter()
            .map(|v| v.as_f64().unwrap() as u64)
            .collect();
        assert_eq!(counts, expected.counts);
        assert_eq!(get(&c, "radius").as_f64(), Some(expected.radius));
        assert_eq!(
            engine.noisy_drawing(&pixels, 3, 0.25, 3).unwrap().len(),
            3 * 784
        );
        // wrong sizes and bad settings are messages
        let err = message(engine.classify_drawing(&pixels[..783]).unwrap_err());
        assert!(err.contains("784 pixels, got 783"), "{err}");
        assert!(message(
            engine
                .certify_drawing(&pixels, settings(-1.0, 20.0, 200.0, 0.001), None)
                .unwrap_err()
        )
        .contains("σ"));
        assert!(engine.noisy_drawing(&[0; 10], 3, 0.25, 3).is_err());
        assert!(engine.noisy_drawing(&pixels, 65, 0.25, 3).is_err());
    }

    #[wasm_bindgen_test]
    fn certify_through_the_js_api_is_reproducible_and_rejects_bad_settings() {
        let mut engine = Engine::new();
        engine.load_model(MODEL).unwrap();
        engine.load_dataset(IMAGES).unwrap();
        let get = |v: &JsValue, k: &str| js_sys::Reflect::get(v, &k.into()).unwrap();
        let a = engine
            .certify(1, settings(0.25, 20.0, 200.0, 0.001), None)
            .unwrap();
        let b = engine
            .certify(1, settings(0.25, 20.0, 200.0, 0.001), None)
            .unwrap();
        assert_eq!(get(&a, "nA").as_f64(), get(&b, "nA").as_f64());
        assert_eq!(get(&a, "predict").as_f64(), Some(2.0));
        assert!(get(&a, "radius").as_f64().unwrap() > 0.0);
        for (bad, what) in [
            (settings(0.0, 20.0, 200.0, 0.001), "σ"),
            (settings(f32::NAN, 20.0, 200.0, 0.001), "σ"),
            (settings(0.25, 0.0, 200.0, 0.001), "n0"),
            (settings(0.25, 20.0, 1e12, 0.001), "n"),
            (settings(0.25, 20.0, 2.5, 0.001), "n"),
            (settings(0.25, 20.0, 200.0, 1.0), "α"),
        ] {
            let err = message(engine.certify(1, bad, None).unwrap_err());
            assert!(err.contains(what), "{err}");
        }
        assert!(message(
            engine
                .certify(9, settings(0.25, 20.0, 200.0, 0.001), None)
                .unwrap_err()
        )
        .contains("images 9..10"));
        assert!(engine
            .certify(1, JsValue::from_str("nonsense"), None)
            .is_err());
        assert_eq!(engine.noisy_images(1, 4, 0.25, 3).unwrap().len(), 4 * 784);
        assert!(engine.noisy_images(1, 0, 0.25, 3).is_err());
    }

    fn policy(w: &[u8], a: &[u8]) -> JsValue {
        let o = js_sys::Object::new();
        let arr = |v: &[u8]| {
            v.iter()
                .map(|&b| JsValue::from_f64(b as f64))
                .collect::<js_sys::Array>()
        };
        js_sys::Reflect::set(&o, &"weightBits".into(), &arr(w)).unwrap();
        js_sys::Reflect::set(&o, &"actBits".into(), &arr(a)).unwrap();
        o.into()
    }

    fn number(v: &JsValue, k: &str) -> f64 {
        js_sys::Reflect::get(v, &k.into())
            .unwrap()
            .as_f64()
            .unwrap()
    }

    #[wasm_bindgen_test]
    fn the_grid_is_classified_by_the_fast_executor_like_the_candle_model() {
        // the test subset's predictions come from the fast executor; the candle model (the
        // reference implementation) must agree on the fixture digits at every trained width
        let mut engine = Engine::new();
        engine.load_model(MODEL).unwrap();
        engine.load_dataset(IMAGES).unwrap();
        let predictions = |engine: &mut Engine| {
            let r = engine.classify(0, 8).unwrap();
            let p = js_sys::Reflect::get(&r, &"predictions".into()).unwrap();
            js_sys::Array::from(&p)
                .iter()
                .map(|v| v.as_f64().unwrap() as u8)
                .collect::<Vec<u8>>()
        };
        for b in [8u8, 6, 4, 2] {
            engine.set_policy(policy(&[b; 8], &[b; 8])).unwrap();
            engine.set_executor("fast").unwrap();
            let fast = predictions(&mut engine);
            engine.set_executor("candle").unwrap();
            let candle = predictions(&mut engine);
            assert_eq!(fast, candle, "w{b}a{b}");
        }
        let labels: Vec<u8> = Dataset::from_bytes(IMAGES).unwrap().labels;
        engine.set_policy(policy(&[8; 8], &[8; 8])).unwrap();
        engine.set_executor("fast").unwrap();
        assert_eq!(
            predictions(&mut engine),
            labels,
            "the stored model gets the 8 digits right"
        );
    }

    #[wasm_bindgen_test]
    fn bit_policies_switch_at_run_time_and_back_to_the_stored_int8_model_exactly() {
        let mut engine = Engine::new();
        engine.load_model(MODEL).unwrap();
        engine.load_dataset(IMAGES).unwrap();
        let info = engine.model_info().unwrap();
        let kind = js_sys::Reflect::get(&info, &"kind".into()).unwrap();
        assert_eq!(kind.as_string().as_deref(), Some("int8"));
        // an int8 model needs no calibration: its activation scales were learned
        let stored_logits = engine.logits(0, 8).unwrap();
        let cost = engine.set_policy(policy(&[4; 8], &[4; 8])).unwrap();
        // BOPs by hand: the stem's 8·1·9·28² = 56,448 MACs multiply 4-bit weights by the
        // float image + noise (32 bits); the other 2,174,816 − 56,448 = 2,118,368 MACs are
        // 4 × 4 bits: 7,225,344 + 33,893,888
        assert_eq!(number(&cost, "bops"), 41_119_232.0);
        assert_eq!(number(&cost, "sizeBytes"), 55_592.0 / 2.0);
        let w4 = engine.logits(0, 8).unwrap();
        assert_ne!(w4, stored_logits);
        assert!(number(&engine.classify(0, 8).unwrap(), "correct") >= 7.0);
        let cost = engine.set_policy(JsValue::NULL).unwrap();
        // w8a8: 56,448·8·32 + 2,118,368·64 = 14,450,688 + 135,575,552
        assert_eq!(number(&cost, "bops"), 150_026_240.0);
        assert_eq!(engine.logits(0, 8).unwrap(), stored_logits);
        // mixed policy, and its cost without switching
        let mixed = engine
            .policy_cost(Some(policy(&[8, 6, 4, 4, 4, 4, 6, 8], &[8; 8])))
            .unwrap();
        assert!(number(&mixed, "bops") < 150_026_240.0);
        // the stem's activation bits are not applied, so they cost nothing either
        let mut acts = [4; 8];
        let w4_cost = engine.policy_cost(Some(policy(&[4; 8], &acts))).unwrap();
        acts[0] = 8;
        let stem_a8 = engine.policy_cost(Some(policy(&[4; 8], &acts))).unwrap();
        assert_eq!(number(&w4_cost, "bops"), 41_119_232.0);
        assert_eq!(number(&stem_a8, "bops"), 41_119_232.0);
        for (bad, what) in [
            (policy(&[4; 3], &[4; 3]), "3 bit-widths"),
            (policy(&[9; 8], &[4; 8]), "outside 2..=8"),
            (policy(&[4; 8], &[1; 8]), "outside 2..=8"),
            (JsValue::from_str("w4a4"), "weightBits"),
        ] {
            let err = message(engine.set_policy(bad).unwrap_err());
            assert!(err.contains(what), "{err}");
        }
        assert_eq!(
            engine.logits(0, 8).unwrap(),
            stored_logits,
            "a rejected policy changes nothing"
        );
        let h = engine.weight_histogram(5, 2).unwrap();
        let sum = |k: &str| {
            js_sys::Array::from(&js_sys::Reflect::get(&h, &k.into()).unwrap())
                .iter()
                .map(|v| v.as_f64().unwrap())
                .sum::<f64>()
        };
        assert_eq!(sum("counts"), 20_736.0);
        assert_eq!(sum("counts8"), 20_736.0);
        assert!(message(engine.weight_histogram(8, 4).unwrap_err()).contains("layer 8"));
    }

    #[wasm_bindgen_test]
    fn a_float_model_calibrates_before_its_first_policy_and_returns_to_float() {
        let mut engine = Engine::new();
        engine.load_model(FLOAT_MODEL).unwrap();
        engine.load_dataset(IMAGES).unwrap();
        assert!(
            message(engine.set_policy(policy(&[4; 8], &[4; 8])).unwrap_err())
                .contains("loadCalibration")
        );
        // (the eight test images stand in for calibration images in this test)
        assert_eq!(engine.load_calibration(IMAGES).unwrap(), 8);
        let float_logits = engine.logits(0, 8).unwrap();
        engine.set_policy(policy(&[4; 8], &[4; 8])).unwrap();
        assert_ne!(engine.logits(0, 8).unwrap(), float_logits);
        let cost = engine.set_policy(JsValue::NULL).unwrap();
        assert_eq!(number(&cost, "bops"), 2_174_816.0 * 1024.0);
        assert_eq!(engine.logits(0, 8).unwrap(), float_logits);
    }

    #[wasm_bindgen_test]
    fn wrong_shaped_and_out_of_range_int8_files_are_clear_errors() {
        use bitsmooth::checkpoint;
        let loaded = checkpoint::load(MODEL).unwrap();
        let mut sw = loaded.switchable.unwrap();
        sw.masters[4].shape = vec![48, 16, 1, 1];
        sw.masters[4].q.truncate(48 * 16);
        let wrong = checkpoint::save_int8(&loaded.model, &sw).unwrap();
        let mut engine = Engine::new();
        let err = message(engine.load_model(&wrong).unwrap_err());
        assert!(
            err.contains("block2.conv1.weight.q") && err.contains("shape"),
            "{err}"
        );
        let mut meta_bits = checkpoint::load(MODEL).unwrap();
        meta_bits.model.bn_bits = vec![8, 6, 4, 1];
        let sw = meta_bits.switchable.take().unwrap();
        assert!(checkpoint::save_int8(&meta_bits.model, &sw).is_err());
        // the good model still loads after the bad one
        engine.load_model(MODEL).unwrap();
    }

    #[wasm_bindgen_test]
    fn incremental_certification_reuses_the_float_certificate() {
        let mut engine = Engine::new();
        engine.load_model(MODEL).unwrap();
        engine.load_dataset(IMAGES).unwrap();
        engine.load_calibration(IMAGES).unwrap();
        let settings = || {
            let o: js_sys::Object = settings(0.75, 20.0, 400.0, 0.001).into();
            js_sys::Reflect::set(&o, &"nChi".into(), &JsValue::from_f64(40.0)).unwrap();
            JsValue::from(o)
        };
        assert!(
            message(engine.certify_incremental(0, settings(), None).unwrap_err())
                .contains("set a bit policy other than the stored one")
        );
        // w8a8 set explicitly is still the stored model: nothing to compare
        engine.set_policy(policy(&[8; 8], &[8; 8])).unwrap();
        assert!(engine.certify_incremental(0, settings(), None).is_err());
        engine.set_policy(policy(&[4; 8], &[4; 8])).unwrap();
        let first = engine.certify_incremental(6, settings(), None).unwrap();
        let get = |v: &JsValue, k: &str| js_sys::Reflect::get(v, &k.into()).unwrap();
        assert_eq!(get(&first, "referenceCached").as_bool(), Some(false));
        let second = engine.certify_incremental(6, settings(), None).unwrap();
        assert_eq!(get(&second, "referenceCached").as_bool(), Some(true));
        assert_eq!(number(&first, "radius"), number(&second, "radius"));
        // at σ = 0.75 the float model is unsure of image 6 (p_A < γ): the incremental path
        assert_eq!(
            get(&first, "path").as_string().as_deref(),
            Some("incremental")
        );
        let zeta = number(&first, "zeta");
        assert!(zeta >= number(&first, "disagreements") / 40.0);
        let reference = get(&first, "reference");
        assert!(number(&first, "radius") <= number(&reference, "radius") + 1e-12);
    }

    fn json(text: &str) -> JsValue {
        js_sys::JSON::parse(text).unwrap()
    }

    /// The search through the engine (what the page's worker calls) gives the native CLI's
    /// HAQ trace for the same seed (see `HAQ_TRACE` below), reports every episode's policy,
    /// and refuses bad settings with messages.
    #[wasm_bindgen_test]
    fn the_engines_search_gives_the_native_haq_trace_and_refuses_bad_settings() {
        let mut engine = Engine::new();
        engine.load_model(MODEL).unwrap();
        let settings = |extra: &str| {
            json(&format!(
                r#"{{"method":"haq","budget":0.3,"episodes":30,"warmup":10,"seed":3,"valSize":8,
                    "noiseSigma":1.0,"pinFirstLast":true{extra}}}"#
            ))
        };
        // the validation images are the training images loaded with loadCalibration
        let err = message(engine.search(settings(""), None).unwrap_err());
        assert!(err.contains("loadCalibration"), "{err}");
        engine.load_calibration(IMAGES).unwrap();
        let reports = js_sys::Array::new();
        let collect = {
            let reports = reports.clone();
            wasm_bindgen::closure::Closure::<dyn FnMut(JsValue)>::new(move |r: JsValue| {
                reports.push(&r);
            })
        };
        let f: &js_sys::Function = collect.as_ref().unchecked_ref();
        let out = engine.search(settings(""), Some(f.clone())).unwrap();
        let out: serde_json::Value =
            serde_json::from_str(&String::from(js_sys::JSON::stringify(&out).unwrap())).unwrap();
        let rows: Vec<Vec<&str>> = HAQ_TRACE
            .lines()
            .skip(1)
            .map(|l| l.split('\t').collect())
            .collect();
        let trace = out["trace"].as_array().unwrap();
        assert_eq!(trace.len(), rows.len());
        for (row, e) in rows.iter().zip(trace) {
            let widths: Vec<String> = e["widths"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.to_string())
                .collect();
            assert_eq!(row[1], widths.join(","));
            assert_eq!(
                row[4].parse::<f64>().unwrap(),
                e["reward"].as_f64().unwrap()
            );
        }
        // one report per episode, each naming the policy it scored
        assert_eq!(reports.length() as usize, rows.len());
        let last: serde_json::Value = serde_json::from_str(&String::from(
            js_sys::JSON::stringify(&reports.get(reports.length() - 1)).unwrap(),
        ))
        .unwrap();
        assert_eq!(last["phase"], "search");
        assert_eq!(
            last["evaluated"]["widths"],
            trace[trace.len() - 1]["widths"]
        );
        for (extra, expected) in [
            (r#","budget":0.01"#, "budget"),
            (r#","budget":1.5"#, "budget fraction"),
            (r#","episodes":0"#, "episodes"),
            (r#","valSize":0"#, "validation size"),
            (r#","valSize":9"#, "validation size"),
            (r#","method":"sgd""#, "method"),
        ] {
            let err = message(engine.search(settings(extra), None).unwrap_err());
            assert!(err.contains(expected), "{extra}: {err}");
        }
    }
}

/// HAQ's search (DDPG agent, noisy validation accuracy) traced natively by
/// `bitsmooth search --model public/models/mnist-sigma0.25.safetensors --data
/// crate/tests/fixtures/mnist-test.bsds --method haq --noisy --sigma 1.0 --val-size 8
/// --episodes 30 --warmup 10 --seed 3 --pin-first-last --bops 0.3 --threads 1 --trace
/// crate/tests/fixtures/haq-mnist-sigma0.25-seed3.tsv`.
const HAQ_TRACE: &str = include_str!("fixtures/haq-mnist-sigma0.25-seed3.tsv");

#[wasm_bindgen_test(unsupported = test)]
fn the_same_seed_gives_the_same_haq_search_as_the_native_cli() {
    use bitsmooth::search::accuracy::{ValidationAccuracy, ValidationConfig};
    use bitsmooth::search::rl::RlSettings;
    use bitsmooth::search::{haq, Budget, SearchSpace};
    let loaded = bitsmooth::checkpoint::load(MODEL).unwrap();
    let space =
        SearchSpace::new(loaded.model.layers.clone(), &loaded.model.meta.bits, true).unwrap();
    let budget = Budget::fraction(&space, 0.3).unwrap();
    let data = Dataset::from_bytes(IMAGES).unwrap();
    let cfg = ValidationConfig {
        images: 8,
        seed: 3,
        noise_sigma: Some(1.0),
        threads: 1,
    };
    let mut reward = ValidationAccuracy::new(loaded, &data, &cfg).unwrap();
    let mut settings = RlSettings::new(30, 3);
    settings.ddpg.warmup = 10;
    let result = haq::search(&space, budget, &mut reward, &settings, &mut |_| true).unwrap();
    let rows: Vec<Vec<&str>> = HAQ_TRACE
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), result.trace.len());
    for (row, e) in rows.iter().zip(&result.trace) {
        let widths: Vec<String> = e.widths.iter().map(|b| b.to_string()).collect();
        assert_eq!(row[1], widths.join(","), "episode {}", e.episode);
        assert_eq!(
            row[4].parse::<f64>().unwrap(),
            e.reward,
            "episode {}",
            e.episode
        );
    }
}
