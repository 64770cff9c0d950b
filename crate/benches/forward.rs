//! Native forward-pass throughput on the randomized-smoothing workload: a batch of noisy
//! copies of one test image (noise generation, inference and the class count all timed).
//! Run: `cargo bench --bench forward`. Prints samples/s; GMAC/s = samples/s × MACs/image.

use bitsmooth::data::Dataset;
use bitsmooth::eval;
use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const MODEL: &[u8] = include_bytes!("../../models/float/mnist-sigma0.25.safetensors");
/// The int8 multi-bit model the site ships.
const SHIPPED: &[u8] = include_bytes!("../../public/models/mnist-sigma0.25.safetensors");
const IMAGES: &[u8] = include_bytes!("../tests/fixtures/mnist-test.bsds");

fn noisy_batches(c: &mut Criterion) {
    let model = bitsmooth::checkpoint::load(MODEL).unwrap().model;
    let data = Dataset::from_bytes(IMAGES).unwrap();
    let mut group = c.benchmark_group("noisy_forward");
    for batch in [100usize, 400] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("batch{batch}"), |b| {
            let mut seed = 0;
            b.iter(|| {
                seed += 1;
                eval::noisy_counts(&model, &data, 0, batch, 0.25, seed).unwrap()
            })
        });
    }
    group.finish();
    println!("MACs per image: {}", model.macs());
}

/// The same workload on the fast executor (`exec::CpuExecutor`), through the path
/// certification takes: counter-based noisy copies (`smoothing::sample_counts`), inference,
/// the class count. Threads split each batch; the portable build is the one wasm gets.
fn fast_executor(c: &mut Criterion) {
    use bitsmooth::exec::CpuExecutor;
    use bitsmooth::smoothing::{NoiseKey, NoisyCopies};
    let model = bitsmooth::checkpoint::load(MODEL).unwrap().model;
    let data = Dataset::from_bytes(IMAGES).unwrap();
    let copies = NoisyCopies::new(data.image(0), 0.25, NoiseKey::new(0, 0)).unwrap();
    let mut group = c.benchmark_group("noisy_forward_fast");
    let variants = [
        ("", 1, false),
        ("_2threads", 2, false),
        ("_portable", 1, true),
    ];
    for (name, threads, portable) in variants {
        let mut exec = CpuExecutor::new(&model).unwrap().with_threads(threads);
        if portable {
            exec = exec.portable();
        }
        for batch in [100usize, 400] {
            let id = format!("batch{batch}{name}");
            bench_counts(&mut group, &id, &mut exec, &copies, batch);
        }
    }
    group.finish();
}

/// The shipped int8 multi-bit model on the fast executor (one thread, batch 100), as stored
/// (w8a8) and switched to w4a4 and w2a2: on the integer path (the default: u8 levels with
/// `vpdpbusd` where AVX-512 VNNI is there, else AVX2 with i8 levels where the activations
/// fit 7 bits and i16 otherwise; `_avx2`: i16 on AVX2 (`vpmaddwd`) even where VNNI is there;
/// `_i8`: i8 levels on AVX2 where the activations fit 7 bits (`vpmaddubsw`); `_portable`:
/// the SSE2 build; `_2threads`: the default on two threads) and on the float path it
/// replaces (`_float`: dequantized weights, activation quantizers in every epilogue).
fn fast_executor_int8(c: &mut Criterion) {
    use bitsmooth::exec::CpuExecutor;
    use bitsmooth::quant::Policy;
    use bitsmooth::smoothing::{NoiseKey, NoisyCopies};
    let loaded = bitsmooth::checkpoint::load(SHIPPED).unwrap();
    let (mut model, switchable) = (loaded.model, loaded.switchable.unwrap());
    let data = Dataset::from_bytes(IMAGES).unwrap();
    let copies = NoisyCopies::new(data.image(0), 0.25, NoiseKey::new(0, 0)).unwrap();
    let mut group = c.benchmark_group("noisy_forward_fast_int8");
    for bits in [8u8, 4, 2] {
        let policy = Policy::uniform(model.layers.len(), bits, bits).unwrap();
        switchable.apply(&mut model, &policy).unwrap();
        let variants = [
            ("", CpuExecutor::new(&model).unwrap()),
            (
                "_2threads",
                CpuExecutor::new(&model).unwrap().with_threads(2),
            ),
            (
                "_avx2",
                CpuExecutor::new(&model)
                    .unwrap()
                    .without_vnni()
                    .with_quads(false),
            ),
            (
                "_i8",
                CpuExecutor::new(&model)
                    .unwrap()
                    .without_vnni()
                    .with_quads(true),
            ),
            ("_portable", CpuExecutor::new(&model).unwrap().portable()),
            ("_float", CpuExecutor::new(&model).unwrap().float_path()),
        ];
        for (name, mut exec) in variants {
            let id = format!("w{bits}a{bits}_batch100{name}");
            bench_counts(&mut group, &id, &mut exec, &copies, 100);
        }
    }
    group.finish();
}

/// One benchmark of `batch` noisy copies → inference → class counts, fresh samples each time.
fn bench_counts(
    group: &mut criterion::BenchmarkGroup<criterion::measurement::WallTime>,
    id: &str,
    exec: &mut bitsmooth::exec::CpuExecutor,
    copies: &bitsmooth::smoothing::NoisyCopies,
    batch: usize,
) {
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function(id, |b| {
        let mut start = 0;
        b.iter(|| {
            let samples = start..start + batch as u64;
            start += batch as u64;
            bitsmooth::smoothing::sample_counts(exec, copies, samples, batch, &mut |_, _| true)
                .unwrap()
        })
    });
}

/// Switching the whole model to another bit policy: Double Rounding's shift of the int8
/// masters, against re-quantizing the float weights (what a float-master design would do).
fn policy_switch(c: &mut Criterion) {
    use bitsmooth::quant::{Policy, QuantizedWeights, Switchable};
    let mut model = bitsmooth::checkpoint::load(MODEL).unwrap().model;
    let data = Dataset::from_bytes(IMAGES).unwrap();
    let calibration = data
        .batch(&(0..data.len()).collect::<Vec<_>>(), &Device::Cpu)
        .unwrap();
    let switchable = Switchable::from_float(&model, &calibration).unwrap();
    let floats: Vec<(Vec<f32>, Vec<usize>)> = model
        .weights
        .iter()
        .map(|w| {
            (
                w.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                w.dims().to_vec(),
            )
        })
        .collect();
    let policies = [
        Policy::uniform(8, 4, 4).unwrap(),
        Policy::uniform(8, 6, 6).unwrap(),
    ];
    let mut group = c.benchmark_group("switch_policy");
    group.bench_function("double_round_from_int8", |b| {
        let mut k = 0;
        b.iter(|| {
            k += 1;
            switchable.apply(&mut model, &policies[k % 2]).unwrap()
        })
    });
    group.bench_function("requantize_from_float", |b| {
        let mut k = 0;
        b.iter(|| {
            k += 1;
            for (w, shape) in &floats {
                let master = QuantizedWeights::from_float(w, shape).unwrap();
                std::hint::black_box(master.dequantize(policies[k % 2].weight_bits[0]).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(8));
    targets = noisy_batches, fast_executor, fast_executor_int8, policy_switch
}
criterion_main!(benches);
