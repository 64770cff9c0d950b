//! The integer path against the plain integer reference (`int_reference`, bit for bit) and
//! against the float path it replaces (level flips only).

use super::tests::{label, noisy_images_of, policies_to_check, shipped_model, SHIPPED_MODELS};
use super::{int_reference, Arithmetic, CpuExecutor, Operands};
use crate::quant::Policy;
use crate::smoothing::{self, CertifyParams, NoiseKey};

/// Every build of the integer path and the operands it asks for: the detected one (u8 with
/// AVX-512 VNNI where the processor has it, else i8 on AVX2 for narrow plans), AVX2 on i16
/// (`vpmaddwd`) and on i8 (`vpmaddubsw`), the portable one on i16 (SSE2), on i8 (scalar, the
/// relaxed-SIMD layout) and on u8 (scalar, the VNNI layout), and each on two threads.
fn integer_executors(model: &crate::model::Model) -> Vec<(CpuExecutor, Operands)> {
    use crate::exec::int_forward::IntIsa;
    type Build = fn(CpuExecutor) -> CpuExecutor;
    let builds: [(Build, Operands); 6] = [
        (|e| e, IntIsa::detect().fast_operands()),
        (|e| e.without_vnni().with_quads(false), Operands::I16),
        (|e| e.without_vnni().with_quads(true), Operands::I8),
        (|e| e.portable(), Operands::I16),
        (|e| e.portable().with_quads(true), Operands::I8),
        (|e| e.portable().with_operands(Operands::U8), Operands::U8),
    ];
    let mut execs = Vec::new();
    for threads in [1, 2] {
        for (build, operands) in builds {
            let exec = build(CpuExecutor::new(model).unwrap()).with_threads(threads);
            execs.push((exec, operands));
        }
    }
    for (e, _) in &execs {
        assert_eq!(e.arithmetic(), Arithmetic::Integer);
    }
    execs
}

#[test]
fn integer_kernels_equal_the_integer_reference_bit_for_bit_on_every_shipped_model() {
    // Every width 2..8, the mixed policies of the float tests, batches of 1 and 5 (the
    // 7 × 7 maps end in a partial tile of every build).
    for (k, (name, bytes)) in SHIPPED_MODELS.iter().enumerate() {
        let (mut model, switchable, data) = shipped_model(bytes);
        let inputs = noisy_images_of(&data, 2, 3, model.meta.sigma, 300 + k as u64);
        let mut policies: Vec<Policy> =
            (2..=8).map(|b| Policy::uniform(8, b, b).unwrap()).collect();
        policies.extend(policies_to_check(k as u64).into_iter().skip(4));
        let mut execs = integer_executors(&model);
        for policy in &policies {
            switchable.apply(&mut model, policy).unwrap();
            let want: Vec<f32> = inputs
                .chunks_exact(784)
                .flat_map(|x| int_reference::logits(&model, x).unwrap())
                .collect();
            // Activations of at most 7 bits after the stem: the i8 operands apply.
            let narrow = policy.act_bits[1..].iter().all(|&a| a <= 7);
            for (e, (exec, operands)) in execs.iter_mut().enumerate() {
                exec.reload(&model).unwrap();
                assert_eq!(exec.arithmetic(), Arithmetic::Integer);
                let expected = match operands {
                    Operands::I8 if !narrow => "i16",
                    other => other.name(),
                };
                assert_eq!(
                    exec.operands(),
                    Some(expected),
                    "{name} {} executor {e}",
                    label(policy)
                );
                let got = exec.logits(&inputs[..784], 1).unwrap().to_vec();
                assert_eq!(
                    got,
                    want[..10],
                    "{name} {} executor {e}, batch 1",
                    label(policy)
                );
                let got = exec.logits(&inputs[784..], 5).unwrap().to_vec();
                assert_eq!(
                    got,
                    want[10..],
                    "{name} {} executor {e}, batch 5",
                    label(policy)
                );
            }
        }
    }
}

#[test]
fn the_float_path_and_float_models_stay_float() {
    let (mut model, switchable, _) = shipped_model(SHIPPED_MODELS[0].1);
    switchable
        .apply(&mut model, &Policy::uniform(8, 4, 4).unwrap())
        .unwrap();
    assert_eq!(
        CpuExecutor::new(&model).unwrap().arithmetic(),
        Arithmetic::Integer
    );
    let mut float = CpuExecutor::new(&model).unwrap().float_path();
    assert_eq!(float.arithmetic(), Arithmetic::Float);
    float.reload(&model).unwrap();
    assert_eq!(
        float.arithmetic(),
        Arithmetic::Float,
        "a reload keeps the choice"
    );
    // Weights changed behind the policy's back (as training does) no longer equal their
    // integers: the executor notices and runs them in float.
    let w = model.weights[5].clone();
    model.weights[5] = (w * 1.001).unwrap();
    assert_eq!(
        CpuExecutor::new(&model).unwrap().arithmetic(),
        Arithmetic::Float
    );
    // A layer reading float activations has no integer path either.
    model.weights[5] = (model.weights[5].clone() / 1.001).unwrap();
    switchable
        .apply(&mut model, &Policy::uniform(8, 4, 4).unwrap())
        .unwrap();
    model.input_quant[3] = None;
    assert_eq!(
        CpuExecutor::new(&model).unwrap().arithmetic(),
        Arithmetic::Float
    );
    // A float model.
    let float_model = crate::checkpoint::load(include_bytes!(
        "../../../models/float/mnist-sigma0.25.safetensors"
    ))
    .unwrap()
    .model;
    assert_eq!(
        CpuExecutor::new(&float_model).unwrap().arithmetic(),
        Arithmetic::Float
    );
}

/// Noisy copies whose prediction differs between the integer path and the float path, at
/// most (measured: see the test's output; the float path's own disagreement with candle is
/// of the same kind, `tests::SHIPPED_FLIP_TOLERANCE`).
const PREDICTION_FLIP_RATE: f64 = 0.002;

#[test]
fn certification_counts_move_from_the_float_path_by_at_most_the_flip_rate() {
    // Same seeds, same noise: the integer path's CERTIFY counts against the float path's on
    // every shipped model at its trained widths and a mixed policy. The arithmetic changed,
    // so counts may move — only by copies whose prediction flips, rarely.
    let (mut moved, mut total) = (0u64, 0u64);
    for (k, (name, bytes)) in SHIPPED_MODELS.iter().enumerate() {
        let (mut model, switchable, data) = shipped_model(bytes);
        let params = CertifyParams {
            n0: 50,
            n: 500,
            batch: 100,
            ..CertifyParams::new(model.meta.sigma)
        };
        let mut int = CpuExecutor::new(&model).unwrap();
        let mut float = CpuExecutor::new(&model).unwrap().float_path();
        for (p, policy) in policies_to_check(k as u64).into_iter().take(5).enumerate() {
            switchable.apply(&mut model, &policy).unwrap();
            int.reload(&model).unwrap();
            float.reload(&model).unwrap();
            let key = NoiseKey::new(11, p as u32);
            let run = |f: &mut CpuExecutor| {
                smoothing::certify(f, data.image(p), &params, key, &mut |_, _| true)
                    .unwrap()
                    .completed()
                    .unwrap()
            };
            let (a, b) = (run(&mut int), run(&mut float));
            // Counts differ by at least the number of flipped copies' net effect; each
            // flipped copy moves two counts by one.
            let diff: u64 = a
                .counts
                .iter()
                .zip(&b.counts)
                .map(|(x, y)| x.abs_diff(*y))
                .sum();
            let diff0: u64 = a
                .counts_n0
                .iter()
                .zip(&b.counts_n0)
                .map(|(x, y)| x.abs_diff(*y))
                .sum();
            moved += (diff + diff0) / 2;
            total += params.n + params.n0;
            assert!(
                diff <= 4,
                "{name} {}: counts {:?} vs {:?}",
                label(&policy),
                a.counts,
                b.counts
            );
        }
    }
    let rate = moved as f64 / total as f64;
    eprintln!("integer vs float path: {moved} of {total} noisy copies change class ({rate:.2e})");
    assert!(
        rate <= PREDICTION_FLIP_RATE,
        "{moved} of {total} copies changed class"
    );
}
