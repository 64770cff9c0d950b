//! The GPU executor against the CPU: Double Rounding bit for bit, Philox words bit for bit,
//! fake-quantization, noise, logits and class counts within measured, stated bounds.
//! Natively these run on whatever adapter wgpu finds (llvmpipe on a machine without a GPU);
//! without an adapter they fail, saying how to get one.

use super::weights::plan_weights;
use super::{kernels, max_capacity, DerivedWeights, Gpu, GpuExecutor};
use crate::checkpoint;
use crate::data::Dataset;
use crate::exec::plan::{Plan, Quantizer};
use crate::exec::CpuExecutor;
use crate::model::{ActQuant, Model};
use crate::quant::{Policy, Switchable};
use crate::smoothing::classifier::BaseClassifier;
use crate::smoothing::mocks::mix;
use crate::smoothing::noise::{philox4x32_10, NoiseKey, NoisyCopies, IMAGE_PIXELS};
use crate::smoothing::{self, CertifyParams, PredictParams};
use std::sync::OnceLock;

const SHIPPED: &[u8] = include_bytes!("../../../public/models/mnist-sigma0.25.safetensors");
const FLOAT: &[u8] = include_bytes!("../../../models/float/mnist-sigma0.25.safetensors");
const IMAGES: &[u8] = include_bytes!("../../tests/fixtures/mnist-test.bsds");

/// Logits agree with the CPU executor's within this fraction of the largest |logit| (at
/// least 1): the same products summed in the same order, but the GPU may or may not fuse
/// a multiply-add that the CPU fuses (AVX2) or not (portable build).
const LOGIT_TOLERANCE: f32 = 1e-4;
/// An image whose activation lands within float rounding of a quantizer's half-level may
/// take the neighbouring level on one side: allowed for at most 2 % of the copies, within
/// this bound (as in the CPU executor's own tests against candle).
const FLIP_TOLERANCE: f32 = 2e-2;

/// The adapter, shared by every test. Fails (does not skip) without one.
fn gpu() -> Gpu {
    static GPU: OnceLock<std::result::Result<Gpu, String>> = OnceLock::new();
    GPU.get_or_init(|| Gpu::new().map_err(|e| e.to_string()))
        .clone()
        .unwrap_or_else(|e| {
            panic!(
                "the GPU tests need a wgpu adapter and found none: {e}. \
                 scripts/setup.sh installs Debian's mesa-vulkan-drivers (llvmpipe)"
            )
        })
}

fn images() -> Dataset {
    Dataset::from_bytes(IMAGES).unwrap()
}

fn shipped() -> (Model, Switchable) {
    let loaded = checkpoint::load(SHIPPED).unwrap();
    (any_width(loaded.model), loaded.switchable.unwrap())
}

/// Double Rounding is defined at every width; a supernet's refusal of the widths it was not
/// trained at is a policy check (supernet/tests.rs), lifted here so that the GPU is checked at
/// the odd widths too.
fn any_width(mut model: Model) -> Model {
    model.meta.supernet = false;
    model
}

fn uniform(bits: u8) -> Policy {
    Policy::uniform(8, bits, bits).unwrap()
}

/// A mixed policy: every weight width 2..8 somewhere, activation widths differing.
fn mixed() -> Policy {
    Policy {
        weight_bits: vec![8, 3, 5, 2, 7, 4, 6, 8],
        act_bits: vec![8, 6, 4, 8, 3, 5, 2, 7],
    }
}

#[test]
fn adapter_is_found_and_described() {
    let gpu = gpu();
    eprintln!("adapter: {}", gpu.description());
    assert!(!gpu.description().is_empty());
    assert!(max_capacity(&gpu) >= 1);
}

#[test]
fn philox_words_equal_the_cpu_bit_for_bit() {
    let gpu = gpu();
    // Random123's published known-answer vectors, then 100,000 hashed counters and keys.
    let known = [
        (
            ([0; 4], [0; 2]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8],
        ),
        (
            ([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd],
        ),
        (
            (
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0],
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1],
        ),
    ];
    let inputs: Vec<_> = known.iter().map(|(i, _)| *i).collect();
    let words = kernels::philox_words(&gpu, &inputs).unwrap();
    for ((_, want), got) in known.iter().zip(&words) {
        assert_eq!(got, want);
    }
    let mut h = 7u32;
    let mut next = || {
        h = mix(h.wrapping_add(0x9e37_79b9));
        h
    };
    let inputs: Vec<([u32; 4], [u32; 2])> = (0..100_000)
        .map(|_| ([next(), next(), next(), next()], [next(), next()]))
        .collect();
    let words = kernels::philox_words(&gpu, &inputs).unwrap();
    assert_eq!(words.len(), inputs.len());
    for ((counter, key), got) in inputs.iter().zip(&words) {
        assert_eq!(*got, philox4x32_10(*counter, *key), "{counter:x?} {key:x?}");
    }
}

#[test]
fn fake_quantization_rounds_like_the_cpu_quantizer() {
    let gpu = gpu();
    let fq = kernels::FakeQuantizer::new(&gpu, 1 << 16).unwrap();
    // A power-of-two scale makes v / scale exact on any GPU: every half-level (the ties),
    // its neighbours, the clamp at both ends — bit for bit.
    for bits in [2u8, 4, 8] {
        let q = Quantizer::new(&ActQuant { scale: 0.25, bits }).unwrap();
        let mut values = Vec::new();
        for k in -8..(2 * q.hi as i32 + 8) {
            let t = k as f32 * 0.5 * 0.25;
            values.extend([t, t.next_up(), t.next_down()]);
        }
        let got = fq.apply(q, &values).unwrap();
        for (v, g) in values.iter().zip(&got) {
            // the reference formula, written out: clip(round_half_even(v/s), 0, hi)·s
            let want = (v / 0.25f32).round_ties_even().clamp(0.0, q.hi) * 0.25;
            assert_eq!(*g, want, "{bits} bits, {v}");
        }
    }
    // A learned (non-power-of-two) scale: WGSL's division need only be within 2.5 ulp, so
    // a value within rounding of a half-level may take the neighbouring level. Measured.
    let q = Quantizer::new(&ActQuant {
        scale: 0.037_3,
        bits: 4,
    })
    .unwrap();
    let values: Vec<f32> = (0..1u32 << 16)
        .map(|i| (mix(i) >> 8) as f32 / (1 << 24) as f32 * 0.7 - 0.05)
        .collect();
    let got = fq.apply(q, &values).unwrap();
    let mut differ = 0;
    for (v, g) in values.iter().zip(&got) {
        let want = q.apply(*v);
        if *g != want {
            differ += 1;
            assert!((g - want).abs() <= q.scale * 1.0001, "{v}: {g} vs {want}");
        }
    }
    eprintln!(
        "fake quantization at scale {}: {differ} of {} values on another level than the CPU",
        q.scale,
        values.len()
    );
    assert!(differ * 1000 <= values.len(), "{differ} level flips");
}

/// The weights of `policy` as the CPU derives them: `quant` per layer, and the plan of the
/// model switched to it.
fn cpu_weights(model: &mut Model, switchable: &Switchable, policy: &Policy) -> DerivedWeights {
    let ints = switchable
        .masters
        .iter()
        .zip(&policy.weight_bits)
        .map(|(m, &b)| {
            m.integers_at(b)
                .unwrap()
                .into_iter()
                .map(i32::from)
                .collect()
        })
        .collect();
    let deq = switchable
        .masters
        .iter()
        .zip(&policy.weight_bits)
        .map(|(m, &b)| m.dequantize(b).unwrap())
        .collect();
    switchable.apply(model, policy).unwrap();
    DerivedWeights {
        integers: ints,
        dequantized: deq,
        folded: plan_weights(&Plan::lower(model).unwrap()),
    }
}

fn bits_of(v: &[Vec<f32>]) -> Vec<Vec<u32>> {
    v.iter()
        .map(|l| l.iter().map(|x| x.to_bits()).collect())
        .collect()
}

#[test]
fn double_rounding_on_the_gpu_equals_quant_bit_for_bit_for_every_shipped_model() {
    let gpu = gpu();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../public/models");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "shipped models: {files:?}");
    let mut exec: Option<GpuExecutor> = None;
    for file in &files {
        let loaded = checkpoint::load(&std::fs::read(file).unwrap()).unwrap();
        let (mut model, switchable) = (any_width(loaded.model), loaded.switchable.unwrap());
        let exec = exec.get_or_insert_with(|| GpuExecutor::with_capacity(&gpu, &model, 4).unwrap());
        let policies = (2..=8).map(uniform).chain([mixed()]);
        for policy in policies {
            exec.set_policy(&model, &switchable, &policy).unwrap();
            let got = exec.derived_weights().unwrap();
            let want = cpu_weights(&mut model, &switchable, &policy);
            let what = format!("{} at {:?}", file.display(), policy.weight_bits);
            assert_eq!(got.integers, want.integers, "integers, {what}");
            assert_eq!(
                bits_of(&got.dequantized),
                bits_of(&want.dequantized),
                "dequantized, {what}"
            );
            // Ŵ_l with the batch-norm folded in, against the CPU executor's lowering
            assert_eq!(
                bits_of(&got.folded),
                bits_of(&want.folded),
                "folded, {what}"
            );
        }
    }
}

/// Per copy: largest |gpu − cpu| relative to max(1, largest |cpu logit|).
fn deviations(gpu_logits: &[f32], cpu_logits: &[f32]) -> Vec<f32> {
    assert_eq!(gpu_logits.len(), cpu_logits.len());
    cpu_logits
        .chunks(10)
        .zip(gpu_logits.chunks(10))
        .map(|(w, g)| {
            let scale = w.iter().fold(1f32, |m, v| m.max(v.abs()));
            w.iter().zip(g).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale
        })
        .collect()
}

/// Noisy copies 0..copies of the first `images` test images (seed 5), drawn on the CPU.
fn cpu_noisy_inputs(images: usize, copies: u64, sigma: f32) -> Vec<f32> {
    let data = self::images();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for i in 0..images {
        NoisyCopies::new(data.image(i), sigma, NoiseKey::new(5, i as u32))
            .unwrap()
            .fill(0..copies, &mut buf);
        out.extend_from_slice(&buf);
    }
    out
}

#[test]
fn logits_agree_with_the_cpu_executor_on_the_same_inputs() {
    let gpu = gpu();
    let inputs = cpu_noisy_inputs(8, 50, 0.25);
    let batch = inputs.len() / IMAGE_PIXELS;
    let float = checkpoint::load(FLOAT).unwrap().model;
    let mut cases: Vec<(String, Model)> = vec![("float".into(), float)];
    for bits in [8u8, 4, 2] {
        let (mut model, switchable) = shipped();
        switchable.apply(&mut model, &uniform(bits)).unwrap();
        cases.push((format!("w{bits}a{bits}"), model));
    }
    for (name, model) in &cases {
        let mut cpu = CpuExecutor::new(model).unwrap();
        let want = cpu.logits(&inputs, batch).unwrap().to_vec();
        let got = GpuExecutor::new(&gpu, model)
            .unwrap()
            .logits(&inputs, batch)
            .unwrap();
        let devs = deviations(&got, &want);
        let worst = devs.iter().fold(0f32, |m, &d| m.max(d));
        let beyond = devs.iter().filter(|&&d| d > LOGIT_TOLERANCE).count();
        let exact = got.iter().zip(&want).filter(|(a, b)| a == b).count();
        eprintln!(
            "{name}: worst logit deviation {worst:.2e} of the largest logit; {beyond} of \
             {batch} copies beyond {LOGIT_TOLERANCE:e}; {exact} of {} logits bit-identical",
            got.len()
        );
        assert!(
            beyond * 50 <= batch,
            "{name}: {beyond} copies beyond the tolerance"
        );
        assert!(worst <= FLIP_TOLERANCE, "{name}: {worst}");
    }
}

#[test]
fn the_integer_path_gives_the_cpus_integer_logits_bit_for_bit() {
    // The same inputs (the CPU's noisy copies, uploaded) through the GPU's integer path and
    // through the plain integer reference (`exec::int_reference`: NCHW loops, i64 sums) and
    // the CPU executor: every width 2..8 and a mixed policy, in one chunk and in chunks of 7
    // (a partial last chunk), lowered on the CPU (`reload`) and derived on the GPU
    // (`set_policy`).
    let gpu = gpu();
    let inputs = cpu_noisy_inputs(4, 25, 0.25);
    let batch = inputs.len() / IMAGE_PIXELS;
    let (mut model, switchable) = shipped();
    let mut policies: Vec<Policy> = (2..=8).map(uniform).collect();
    policies.push(mixed());
    let mut whole = GpuExecutor::new(&gpu, &model)
        .unwrap()
        .integer_path(&model)
        .unwrap();
    let (stored, _) = shipped();
    let mut chunked = GpuExecutor::with_capacity(&gpu, &model, 7)
        .unwrap()
        .integer_path(&model)
        .unwrap();
    for policy in &policies {
        switchable.apply(&mut model, policy).unwrap();
        let reference: Vec<f32> = inputs
            .chunks_exact(IMAGE_PIXELS)
            .flat_map(|x| crate::exec::int_reference::logits(&model, x).unwrap())
            .collect();
        let mut cpu = CpuExecutor::new(&model).unwrap();
        assert_eq!(cpu.logits(&inputs, batch).unwrap(), reference);
        whole.reload(&model).unwrap();
        chunked.set_policy(&stored, &switchable, policy).unwrap();
        for (how, exec) in [
            ("reload, one chunk", &mut whole),
            (
                "set_policy (Double Rounding on the GPU), chunks of 7",
                &mut chunked,
            ),
        ] {
            assert_eq!(exec.arithmetic(), crate::exec::Arithmetic::Integer);
            let got = exec.logits(&inputs, batch).unwrap();
            let differ = got.iter().zip(&reference).filter(|(a, b)| a != b).count();
            assert_eq!(
                differ,
                0,
                "{:?}/{:?} ({how}): {differ} of {} logits differ from the integer reference",
                policy.weight_bits,
                policy.act_bits,
                got.len()
            );
        }
    }
    // A float model has no integer path: the GPU runs it in float, as the CPU does.
    let float = checkpoint::load(FLOAT).unwrap().model;
    let exec = GpuExecutor::new(&gpu, &float)
        .unwrap()
        .integer_path(&float)
        .unwrap();
    assert_eq!(exec.arithmetic(), crate::exec::Arithmetic::Float);
}

/// Classes of `[n, 10]` logits.
fn classes(logits: &[f32]) -> Vec<u32> {
    logits
        .chunks(10)
        .map(|l| (0..10).fold(0, |best, i| if l[best] < l[i] { i } else { best }) as u32)
        .collect()
}

fn tally(classes: &[u32]) -> Vec<u64> {
    let mut counts = vec![0u64; 10];
    for &c in classes {
        counts[c as usize] += 1;
    }
    counts
}

#[test]
fn noise_drawn_on_the_gpu_is_the_cpu_noise() {
    let gpu = gpu();
    let (model, _) = shipped();
    let mut exec = GpuExecutor::with_capacity(&gpu, &model, 100).unwrap();
    let data = images();
    let (mut identical, mut total, mut worst) = (0usize, 0usize, 0f32);
    // ordinary ranges, and one crossing 2³² (the carry into the counter's high word)
    let ranges = [
        (0u32, 0..250u64),
        (3, 1000..1250),
        (7, (1 << 32) - 120..(1 << 32) + 130),
    ];
    for (image, range) in ranges {
        let copies =
            NoisyCopies::new(data.image(image as usize), 0.5, NoiseKey::new(11, image)).unwrap();
        let got = exec.noisy_inputs(&copies, range.clone()).unwrap();
        let mut want = Vec::new();
        copies.fill(range, &mut want);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            total += 1;
            identical += usize::from(g.to_bits() == w.to_bits());
            worst = worst.max((g - w).abs());
        }
    }
    eprintln!(
        "noisy inputs (σ = 0.5): {identical} of {total} values bit-identical to the CPU's, \
         worst difference {worst:.2e}"
    );
    // The Philox words are identical (above); the difference is the GPU's log, sin and cos
    // (Vulkan requires only 3 ulp for log and 2⁻¹¹ absolute for sin/cos; llvmpipe measured
    // ≤ 2.1·10⁻⁵ in ε). Bound: 10⁻⁴ in ε, i.e. 0.5·10⁻⁴ in σ·ε.
    assert!(worst < 0.5e-4, "{worst}");
    assert!(identical * 2 > total);
}

#[test]
fn class_counts_equal_the_cpus_for_a_fixed_seed_but_for_a_measured_flip_rate() {
    let gpu = gpu();
    let data = images();
    let mut report = Vec::new();
    // w8a8 (the stored model): every image of the fixture (8) × 1,250 copies = 10,000
    // samples; the lower widths 2,500 each (software GPUs are slow, the suite must stay short).
    for (bits, images, samples) in [(8u8, data.len(), 1250u64), (4, 2, 1250), (2, 2, 1250)] {
        let (mut model, switchable) = shipped();
        switchable.apply(&mut model, &uniform(bits)).unwrap();
        let mut cpu = CpuExecutor::new(&model).unwrap();
        let mut exec = GpuExecutor::new(&gpu, &model).unwrap();
        let (mut flips, mut forward_flips, mut l1) = (0usize, 0usize, 0u64);
        for i in 0..images {
            let copies = NoisyCopies::new(data.image(i), 0.25, NoiseKey::new(3, i as u32)).unwrap();
            let mut inputs = Vec::new();
            copies.fill(0..samples, &mut inputs);
            let cpu_classes = cpu.classify_batch(&inputs, samples as usize).unwrap();
            // end to end on the GPU: its own noise, its forward pass
            let gpu_classes = classes(&exec.noisy_logits(&copies, 0..samples).unwrap());
            let differ = |a: &[u32], b: &[u32]| a.iter().zip(b).filter(|(x, y)| x != y).count();
            let these = differ(&gpu_classes, &cpu_classes);
            flips += these;
            if i == 0 {
                // the counts read back are the tally of those classes …
                let counts = exec.noisy_counts(&copies, 0..samples).unwrap();
                assert_eq!(
                    counts,
                    tally(&gpu_classes),
                    "counts vs the GPU's own classes"
                );
                l1 += counts
                    .iter()
                    .zip(&tally(&cpu_classes))
                    .map(|(a, b)| a.abs_diff(*b))
                    .sum::<u64>();
                // each flipped sample moves one count from one class to another
                assert!(l1 <= 2 * these as u64, "{l1} vs {these} flips");
                // … and the forward pass alone, on the CPU's noisy copies
                let gpu_forward = exec.classify_batch(&inputs, samples as usize).unwrap();
                forward_flips += differ(&gpu_forward, &cpu_classes);
            }
        }
        let n = images as u64 * samples;
        report.push(format!(
            "w{bits}a{bits}: {flips} of {n} samples change class (GPU noise + GPU forward); \
             first image: {forward_flips} of {samples} with the CPU's noise, counts differ by \
             {l1} in L1"
        ));
        assert!(flips as u64 * 1000 <= n, "{}", report.last().unwrap());
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn set_policy_derives_the_same_model_as_switching_on_the_cpu() {
    let gpu = gpu();
    let (mut model, switchable) = shipped();
    let data = images();
    let copies = NoisyCopies::new(data.image(1), 0.25, NoiseKey::new(9, 1)).unwrap();
    let mut derived = GpuExecutor::with_capacity(&gpu, &model, 300).unwrap();
    for policy in [uniform(4), mixed(), uniform(8)] {
        derived.set_policy(&model, &switchable, &policy).unwrap();
        switchable.apply(&mut model, &policy).unwrap();
        let mut lowered = GpuExecutor::with_capacity(&gpu, &model, 300).unwrap();
        // the same weights, shifts and quantizers: the same logits, bit for bit
        let a = derived.noisy_logits(&copies, 0..500).unwrap();
        let b = lowered.noisy_logits(&copies, 0..500).unwrap();
        assert_eq!(bits_of(&[a]), bits_of(&[b]), "{:?}", policy.weight_bits);
    }
}

#[test]
fn chunks_batch_of_one_and_odd_sizes_give_the_same_counts() {
    let gpu = gpu();
    let (model, _) = shipped();
    let data = images();
    let copies = NoisyCopies::new(data.image(2), 0.5, NoiseKey::new(1, 2)).unwrap();
    let max = max_capacity(&gpu);
    let mut big = GpuExecutor::new(&gpu, &model).unwrap();
    assert_eq!(big.capacity(), super::DEFAULT_CAPACITY.min(max));
    let mut tiny = GpuExecutor::with_capacity(&gpu, &model, 7).unwrap();
    let mut one = GpuExecutor::with_capacity(&gpu, &model, 1).unwrap();
    let logits = big.noisy_logits(&copies, 0..300).unwrap();
    let want = classes(&logits);
    // 37 and 300 do not divide the workgroup (64); 7 splits 300 into 43 chunks.
    for range in [0..300u64, 0..37, 100..101, 263..300] {
        let expect = tally(&want[range.start as usize..range.end as usize]);
        assert_eq!(big.noisy_counts(&copies, range.clone()).unwrap(), expect);
        assert_eq!(tiny.noisy_counts(&copies, range.clone()).unwrap(), expect);
    }
    assert_eq!(one.noisy_counts(&copies, 5..6).unwrap(), tally(&want[5..6]));
    assert_eq!(
        one.noisy_counts(&copies, 0..20).unwrap(),
        tally(&want[..20])
    );
    assert_eq!(big.noisy_counts(&copies, 4..4).unwrap(), vec![0; 10]);
    // the chunk size comes from the adapter's limits
    assert!(GpuExecutor::with_capacity(&gpu, &model, max + 1)
        .err()
        .unwrap()
        .to_string()
        .contains(&format!("1 to {max} copies")));
    assert!(GpuExecutor::with_capacity(&gpu, &model, 0).is_err());
}

#[test]
fn buffers_are_reused_and_leave_nothing_behind_between_calls() {
    let gpu = gpu();
    let (model, _) = shipped();
    let data = images();
    let a = NoisyCopies::new(data.image(3), 0.25, NoiseKey::new(2, 3)).unwrap();
    let b = NoisyCopies::new(data.image(4), 1.0, NoiseKey::new(2, 4)).unwrap();
    let fresh = |copies: &NoisyCopies, n| {
        GpuExecutor::with_capacity(&gpu, &model, 64)
            .unwrap()
            .noisy_counts(copies, 0..n)
            .unwrap()
    };
    let (want_a, want_b) = (fresh(&a, 200), fresh(&b, 50));
    let mut exec = GpuExecutor::with_capacity(&gpu, &model, 64).unwrap();
    for _ in 0..3 {
        // a long run, then a short one on another image and σ, then host inputs: the same
        // buffers, and each answer as from a fresh executor
        assert_eq!(exec.noisy_counts(&a, 0..200).unwrap(), want_a);
        assert_eq!(exec.noisy_counts(&b, 0..50).unwrap(), want_b);
        let inputs = vec![0.5; 3 * IMAGE_PIXELS];
        assert_eq!(exec.classify_batch(&inputs, 3).unwrap().len(), 3);
    }
    let err = exec.logits(&[0.0; 100], 1).unwrap_err().to_string();
    assert!(err.contains("784 values"), "{err}");
}

#[test]
fn an_invalid_policy_is_rejected_before_any_dispatch() {
    let gpu = gpu();
    let (model, switchable) = shipped();
    let data = images();
    let copies = NoisyCopies::new(data.image(0), 0.25, NoiseKey::new(4, 0)).unwrap();
    let mut exec = GpuExecutor::with_capacity(&gpu, &model, 128).unwrap();
    exec.set_policy(&model, &switchable, &uniform(4)).unwrap();
    let before = exec.noisy_counts(&copies, 0..200).unwrap();
    let dispatches = exec.dispatches();
    let mut bad = uniform(4);
    bad.weight_bits[3] = 9;
    let err = exec.set_policy(&model, &switchable, &bad).unwrap_err();
    assert!(err.to_string().contains("layer 3 weight"), "{err}");
    let short = Policy::uniform(5, 4, 4).unwrap();
    assert!(exec.set_policy(&model, &switchable, &short).is_err());
    assert_eq!(exec.dispatches(), dispatches, "nothing dispatched");
    // and the model in force is still w4a4
    assert_eq!(exec.noisy_counts(&copies, 0..200).unwrap(), before);
}

/// Forwards to a classifier and records which way certification asked for answers.
struct Watched<'a> {
    inner: &'a mut dyn BaseClassifier,
    batches: usize,
    counted: usize,
}

impl BaseClassifier for Watched<'_> {
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }

    fn classify_batch(&mut self, inputs: &[f32], batch: usize) -> crate::Result<Vec<u32>> {
        self.batches += 1;
        self.inner.classify_batch(inputs, batch)
    }

    fn counts(
        &mut self,
        copies: &NoisyCopies,
        samples: std::ops::Range<u64>,
    ) -> Option<crate::Result<Vec<u64>>> {
        self.counted += 1;
        self.inner.counts(copies, samples)
    }
}

#[test]
fn certify_and_predict_run_on_the_gpu_through_its_counts() {
    let gpu = gpu();
    let (model, _) = shipped();
    let data = images();
    let mut gpu_exec = GpuExecutor::new(&gpu, &model).unwrap();
    let mut cpu_exec = CpuExecutor::new(&model).unwrap();
    let mut params = CertifyParams::new(0.25);
    (params.n0, params.n, params.batch) = (100, 2000, 500);
    for i in 0..4 {
        let key = NoiseKey::new(0, i as u32);
        let mut on_gpu = Watched {
            inner: &mut gpu_exec,
            batches: 0,
            counted: 0,
        };
        let g = smoothing::certify(&mut on_gpu, data.image(i), &params, key, &mut |_, _| true)
            .unwrap()
            .completed()
            .unwrap();
        // every batch counted on the GPU, none drawn on the host
        assert_eq!((on_gpu.batches, on_gpu.counted), (0, 1 + 4));
        let c = smoothing::certify(&mut cpu_exec, data.image(i), &params, key, &mut |_, _| true)
            .unwrap()
            .completed()
            .unwrap();
        assert_eq!(g.prediction, c.prediction, "image {i}");
        assert!(
            g.n_a.abs_diff(c.n_a) <= 2,
            "image {i}: nA {} vs {}",
            g.n_a,
            c.n_a
        );
        let mut predict = PredictParams::new(0.25);
        (predict.n, predict.batch) = (1000, 300);
        on_gpu.counted = 0;
        let g = smoothing::predict(&mut on_gpu, data.image(i), &predict, key, &mut |_, _| true)
            .unwrap()
            .completed()
            .unwrap();
        assert_eq!((on_gpu.batches, on_gpu.counted), (0, 4));
        let c = smoothing::predict(&mut cpu_exec, data.image(i), &predict, key, &mut |_, _| {
            true
        })
        .unwrap()
        .completed()
        .unwrap();
        assert_eq!(g.prediction, c.prediction, "image {i}");
    }
}
