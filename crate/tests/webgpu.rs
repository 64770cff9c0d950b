//! The GPU executor in headless Chromium on WebGPU (SwiftShader here, with
//! `--enable-unsafe-webgpu` from `crate/webdriver.json`): the same checks as the native GPU
//! tests (`src/gpu/tests.rs`, on llvmpipe), against the CPU computed in the same browser.
//! Without an adapter these fail, they do not skip.
#![cfg(target_arch = "wasm32")]

use bitsmooth::checkpoint;
use bitsmooth::data::Dataset;
use bitsmooth::exec::CpuExecutor;
use bitsmooth::gpu::{Gpu, GpuExecutor};
use bitsmooth::model::Model;
use bitsmooth::quant::{Policy, Switchable};
use bitsmooth::smoothing::{BaseClassifier, NoiseKey, NoisyCopies};
use bitsmooth::wasm::{Engine, GpuSession};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

const MODEL: &[u8] = include_bytes!("../../public/models/mnist-sigma0.25.safetensors");
/// The first 8 images of the MNIST test set (see `web.rs`).
const IMAGES: &[u8] = include_bytes!("fixtures/mnist-test.bsds");
/// As natively: logits within this fraction of the largest |logit| of the CPU executor's.
const LOGIT_TOLERANCE: f32 = 1e-4;

async fn gpu() -> Gpu {
    Gpu::request().await.unwrap_or_else(|e| {
        panic!("no WebGPU adapter in this browser ({e}): crate/webdriver.json must pass --enable-unsafe-webgpu")
    })
}

/// The shipped supernet with its policy check lifted (Double Rounding is defined at every
/// width; the supernet's refusal of untrained widths is tested elsewhere).
fn shipped() -> (Model, Switchable) {
    let loaded = checkpoint::load(MODEL).unwrap();
    let mut model = loaded.model;
    model.meta.supernet = false;
    (model, loaded.switchable.unwrap())
}

fn uniform(bits: u8) -> Policy {
    Policy::uniform(8, bits, bits).unwrap()
}

fn mixed() -> Policy {
    Policy {
        weight_bits: vec![8, 3, 5, 2, 7, 4, 6, 8],
        act_bits: vec![8, 6, 4, 8, 3, 5, 2, 7],
    }
}

fn argmax(logits: &[f32]) -> Vec<u32> {
    logits
        .chunks(10)
        .map(|l| {
            let mut best = 0;
            for (i, &v) in l.iter().enumerate() {
                if l[best] < v {
                    best = i;
                }
            }
            best as u32
        })
        .collect()
}

#[wasm_bindgen_test]
async fn double_rounding_on_webgpu_equals_quant_bit_for_bit() {
    let gpu = gpu().await;
    let (model, switchable) = shipped();
    let mut exec = GpuExecutor::with_capacity(&gpu, &model, 4).unwrap();
    for policy in (2..=8).map(uniform).chain([mixed()]) {
        exec.set_policy(&model, &switchable, &policy).unwrap();
        let got = exec.derived_weights_async().await.unwrap();
        for (layer, (master, &bits)) in switchable
            .masters
            .iter()
            .zip(&policy.weight_bits)
            .enumerate()
        {
            let ints: Vec<i32> = master
                .integers_at(bits)
                .unwrap()
                .into_iter()
                .map(i32::from)
                .collect();
            assert_eq!(got.integers[layer], ints, "layer {layer} at {bits} bits");
            let deq: Vec<u32> = master
                .dequantize(bits)
                .unwrap()
                .iter()
                .map(|x| x.to_bits())
                .collect();
            let got_deq: Vec<u32> = got.dequantized[layer].iter().map(|x| x.to_bits()).collect();
            assert_eq!(got_deq, deq, "layer {layer} at {bits} bits, dequantized");
        }
    }
    // an invalid policy is refused before anything is written
    let bad = Policy {
        weight_bits: vec![8, 8, 8, 9, 8, 8, 8, 8],
        act_bits: vec![8; 8],
    };
    assert!(exec.set_policy(&model, &switchable, &bad).is_err());
}

#[wasm_bindgen_test]
async fn logits_and_counts_on_webgpu_agree_with_the_cpu_in_this_browser() {
    let gpu = gpu().await;
    let data = Dataset::from_bytes(IMAGES).unwrap();
    // 300 copies of two images at w8a8, w4a4 and a mixed policy: chunks of 128 leave an odd
    // remainder (300 = 2·128 + 44)
    for policy in [uniform(8), uniform(4), mixed()] {
        let (mut model, switchable) = shipped();
        switchable.apply(&mut model, &policy).unwrap();
        let mut cpu = CpuExecutor::new(&model).unwrap();
        let mut exec = GpuExecutor::with_capacity(&gpu, &model, 128).unwrap();
        exec.set_policy(&model, &switchable, &policy).unwrap();
        let (mut flips, mut total, mut worst_close) = (0usize, 0usize, 0usize);
        for image in 0..2 {
            let copies =
                NoisyCopies::new(data.image(image), 0.25, NoiseKey::new(3, image as u32)).unwrap();
            let mut inputs = Vec::new();
            copies.fill(0..300, &mut inputs);
            // the forward pass alone, on the CPU's noisy copies: logits within tolerance
            let want = cpu.logits(&inputs, 300).unwrap().to_vec();
            let got = exec.logits_async(&inputs, 300).await.unwrap();
            for (w, g) in want.chunks(10).zip(got.chunks(10)) {
                let scale = w.iter().fold(1f32, |m, v| m.max(v.abs()));
                let dev = w.iter().zip(g).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
                if dev > LOGIT_TOLERANCE {
                    worst_close += 1; // a quantizer level taken on the other side of a half
                }
            }
            // end to end on the GPU (its own noise): classes against the CPU's
            let cpu_classes = cpu.classify_batch(&inputs, 300).unwrap();
            let gpu_logits = exec.noisy_logits_async(&copies, 0..300).await.unwrap();
            let gpu_classes = argmax(&gpu_logits);
            flips += gpu_classes
                .iter()
                .zip(&cpu_classes)
                .filter(|(a, b)| a != b)
                .count();
            total += 300;
            // the counts read back are the tally of the GPU's own classes
            let counts = exec.noisy_counts_async(&copies, 0..300).await.unwrap();
            let mut tally = vec![0u64; 10];
            for &c in &gpu_classes {
                tally[c as usize] += 1;
            }
            assert_eq!(counts, tally, "image {image} at {:?}", policy.weight_bits);
        }
        console_log!(
            "{:?}/{:?}: {flips} of {total} classes differ from the CPU (GPU noise + GPU forward); \
             {worst_close} of {total} copies beyond the logit tolerance on the CPU's inputs",
            policy.weight_bits,
            policy.act_bits
        );
        // the native bounds: ≤ 2 % of copies beyond the logit tolerance, ≤ 1 flip per 1,000
        assert!(
            worst_close * 50 <= total,
            "{worst_close} of {total} copies beyond the logit tolerance at {:?}",
            policy.weight_bits
        );
        assert!(
            flips * 1000 <= total.max(1000),
            "{flips} of {total} classes differ from the CPU at {:?}",
            policy.weight_bits
        );
    }
}

#[wasm_bindgen_test]
async fn the_integer_path_on_webgpu_gives_the_cpus_integer_logits_bit_for_bit() {
    // As natively (src/gpu/tests.rs): the same inputs through WebGPU's integer path and this
    // browser's CPU executor (whose integer path equals the plain integer reference, tested
    // in web.rs), at w8a8, w4a4, w2a2 and a mixed policy, in chunks of 16 (40 = 2·16 + 8),
    // lowered on the CPU (`reload`) and derived by Double Rounding on the GPU (`set_policy`).
    let gpu = gpu().await;
    let data = Dataset::from_bytes(IMAGES).unwrap();
    let mut inputs = Vec::new();
    for image in 0..2 {
        let mut copies = Vec::new();
        NoisyCopies::new(data.image(image), 0.25, NoiseKey::new(9, image as u32))
            .unwrap()
            .fill(0..20, &mut copies);
        inputs.extend(copies);
    }
    let (mut model, switchable) = shipped();
    let (stored, _) = shipped();
    let mut exec = GpuExecutor::with_capacity(&gpu, &model, 16)
        .unwrap()
        .integer_path(&model)
        .unwrap();
    for policy in [uniform(8), uniform(4), uniform(2), mixed()] {
        switchable.apply(&mut model, &policy).unwrap();
        let mut cpu = CpuExecutor::new(&model).unwrap();
        assert_eq!(cpu.arithmetic(), bitsmooth::exec::Arithmetic::Integer);
        let want = cpu.logits(&inputs, 40).unwrap().to_vec();
        for how in ["reload", "set_policy"] {
            match how {
                "reload" => exec.reload(&model).unwrap(),
                _ => exec.set_policy(&stored, &switchable, &policy).unwrap(),
            }
            assert_eq!(exec.arithmetic(), bitsmooth::exec::Arithmetic::Integer);
            let got = exec.logits_async(&inputs, 40).await.unwrap();
            let differ = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            console_log!(
                "{:?}/{:?} ({how}): {differ} of {} logits differ between WebGPU's and the CPU's \
                 integer paths",
                policy.weight_bits,
                policy.act_bits,
                got.len()
            );
            assert_eq!(differ, 0, "at {:?} ({how})", policy.weight_bits);
        }
    }
}

fn settings(n0: f64, n: f64) -> JsValue {
    let o = js_sys::Object::new();
    for (k, v) in [
        ("sigma", 0.25),
        ("n0", n0),
        ("n", n),
        ("alpha", 0.001),
        ("seed", 3.0),
        ("batch", 100.0),
    ] {
        js_sys::Reflect::set(&o, &k.into(), &JsValue::from_f64(v)).unwrap();
    }
    o.into()
}

fn number(v: &JsValue, k: &str) -> f64 {
    js_sys::Reflect::get(v, &k.into())
        .unwrap()
        .as_f64()
        .unwrap_or(f64::NAN)
}

fn message(v: JsValue) -> String {
    js_sys::Error::from(v).message().into()
}

#[wasm_bindgen_test]
async fn the_session_certifies_like_the_cpu_engine_and_fails_cleanly_when_the_device_is_lost() {
    let mut engine = Engine::new();
    engine.load_model(MODEL).unwrap();
    engine.load_dataset(IMAGES).unwrap();
    let session = GpuSession::create().await.unwrap();
    for policy in [None, Some(([4u8; 8], [4u8; 8]))] {
        if let Some((w, a)) = policy {
            let arr = |v: &[u8]| {
                v.iter()
                    .map(|&b| JsValue::from_f64(b as f64))
                    .collect::<js_sys::Array>()
            };
            let o = js_sys::Object::new();
            js_sys::Reflect::set(&o, &"weightBits".into(), &arr(&w)).unwrap();
            js_sys::Reflect::set(&o, &"actBits".into(), &arr(&a)).unwrap();
            engine.set_policy(o.into()).unwrap();
        }
        for image in [1usize, 2] {
            let cpu = engine.certify(image, settings(50.0, 500.0), None).unwrap();
            let promise = session
                .certify(&engine, image, settings(50.0, 500.0), None)
                .unwrap();
            let gpu = JsFuture::from(promise).await.unwrap();
            // the same CERTIFY on the same draws: the same guess, n_A within the flips
            assert_eq!(number(&gpu, "cHat"), number(&cpu, "cHat"));
            assert_eq!(number(&gpu, "n"), 500.0);
            let (a, b) = (number(&gpu, "nA"), number(&cpu, "nA"));
            assert!((a - b).abs() <= 2.0, "n_A {a} on the GPU, {b} on the CPU");
        }
    }
    // bad settings and images are refused before anything runs
    assert!(session
        .certify(&engine, 9, settings(50.0, 500.0), None)
        .is_err());
    assert!(session
        .certify(&engine, 1, settings(0.0, 500.0), None)
        .is_err());
    // a lost device: the next certification rejects with a message, it does not hang or panic
    session.lose_device();
    let text = match session.certify(&engine, 1, settings(50.0, 500.0), None) {
        Ok(promise) => message(JsFuture::from(promise).await.unwrap_err()),
        Err(e) => message(e.into()),
    };
    assert!(!text.is_empty(), "a lost device must give a message");
}
