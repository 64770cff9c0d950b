//! The GPU executor against the fast CPU executor on the randomized-smoothing workload: a
//! batch of noisy copies of one test image — noise, inference and the class count all timed
//! (on the GPU the noise is drawn there and only the counts are read back).
//!
//! Run: `cargo bench --bench gpu` — unchanged on any machine where wgpu finds an adapter
//! (Vulkan, Metal, DX12). Prints the adapter, then samples/s and GMAC/s per variant
//! (GMAC/s = samples/s × the model's MACs per image), and criterion's own statistics.
//! On a machine without a GPU the adapter is Mesa's llvmpipe: a GPU emulated on the CPU.

use bitsmooth::data::Dataset;
use bitsmooth::exec::plan::Quantizer;
use bitsmooth::exec::CpuExecutor;
use bitsmooth::gpu::{kernels::FakeQuantizer, Gpu, GpuExecutor};
use bitsmooth::model::{ActQuant, Model};
use bitsmooth::quant::Policy;
use bitsmooth::smoothing::{sample_counts, BaseClassifier, NoiseKey, NoisyCopies};
use criterion::{Criterion, Throughput};
use std::time::{Duration, Instant};

/// The int8 multi-bit model the site ships (run at w8a8 and w4a4).
const SHIPPED: &[u8] = include_bytes!("../../public/models/mnist-sigma0.25.safetensors");
const IMAGES: &[u8] = include_bytes!("../tests/fixtures/mnist-test.bsds");

fn gpu() -> Gpu {
    Gpu::new().unwrap_or_else(|e| panic!("the GPU benchmark needs an adapter: {e}"))
}

/// `n` noisy copies of `copies`, counted by `f` through the path certification takes; each
/// call a fresh sample range (`*next`), so nothing is cached between calls.
fn counts(
    f: &mut dyn BaseClassifier,
    copies: &NoisyCopies,
    n: usize,
    batch: usize,
    next: &mut u64,
) {
    let start = *next;
    *next += n as u64;
    let out = sample_counts(f, copies, start..start + n as u64, batch, &mut |_, _| true).unwrap();
    assert_eq!(out.completed().unwrap().iter().sum::<u64>(), n as u64);
}

/// Samples per second of `run(n)` over about `budget`, the median of five rounds.
fn rate(n: usize, budget: Duration, mut run: impl FnMut()) -> f64 {
    run(); // warm-up: pipelines, caches
    let mut rates: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            let mut calls = 0;
            while calls == 0 || start.elapsed() < budget / 5 {
                run();
                calls += 1;
            }
            (calls * n) as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[2]
}

struct Setup {
    gpu: Gpu,
    w8: Model,
    w4: Model,
    copies: NoisyCopies,
}

fn setup() -> Setup {
    let loaded = bitsmooth::checkpoint::load(SHIPPED).unwrap();
    let (w8, switchable) = (loaded.model, loaded.switchable.unwrap());
    let mut w4 = bitsmooth::checkpoint::load(SHIPPED).unwrap().model;
    switchable
        .apply(&mut w4, &Policy::uniform(8, 4, 4).unwrap())
        .unwrap();
    let data = Dataset::from_bytes(IMAGES).unwrap();
    let copies = NoisyCopies::new(data.image(0), 0.25, NoiseKey::new(0, 0)).unwrap();
    Setup {
        gpu: gpu(),
        w8,
        w4,
        copies,
    }
}

/// The summary the issue asks for: adapter, samples/s and GMAC/s beside the CPU executor.
fn summary(s: &Setup) {
    let macs = s.w8.macs() as f64;
    println!("adapter: {}", s.gpu.description());
    if s.gpu.is_software() {
        println!("(a software adapter: it emulates a GPU on the CPU, sharing its cores)");
    }
    println!("model: bsnet8, {} MACs per image", s.w8.macs());
    let budget = Duration::from_secs(3);
    let mut rows = Vec::new();
    let mut next = 0;
    for (name, model) in [("w8a8", &s.w8), ("w4a4", &s.w4)] {
        let mut exec = GpuExecutor::new(&s.gpu, model).unwrap();
        let n = exec.capacity();
        let r = rate(n, budget, || counts(&mut exec, &s.copies, n, n, &mut next));
        rows.push((format!("gpu {name}, batch {n}"), r));
        for threads in [1, 2] {
            let mut cpu = CpuExecutor::new(model).unwrap().with_threads(threads);
            let r = rate(400, budget, || {
                counts(&mut cpu, &s.copies, 400, 100, &mut next)
            });
            rows.push((format!("cpu {name}, batch 100, {threads} thread(s)"), r));
        }
    }
    println!(
        "{:<36} {:>12} {:>8}",
        "noisy forward", "samples/s", "GMAC/s"
    );
    for (name, r) in rows {
        println!("{name:<36} {r:>12.0} {:>8.2}", r * macs / 1e9);
    }
    let values: Vec<f32> = (0..1 << 20).map(|i| (i % 1000) as f32 / 997.0).collect();
    let q = Quantizer::new(&ActQuant {
        scale: 0.05,
        bits: 4,
    })
    .unwrap();
    let fq = FakeQuantizer::new(&s.gpu, values.len()).unwrap();
    let r = rate(values.len(), budget, || fq.run(q, &values).unwrap());
    println!(
        "fake quantization (upload 1 M values + dispatch): {:.1} M values/s",
        r / 1e6
    );
}

fn criterion_groups(s: &Setup, c: &mut Criterion) {
    let mut group = c.benchmark_group("gpu_noisy_forward");
    group.sample_size(10);
    let mut next = 1 << 40;
    for (name, model) in [("w8a8", &s.w8), ("w4a4", &s.w4)] {
        let mut exec = GpuExecutor::new(&s.gpu, model).unwrap();
        let n = exec.capacity();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("{name}_gpu_batch{n}"), |b| {
            b.iter(|| counts(&mut exec, &s.copies, n, n, &mut next))
        });
        let mut cpu = CpuExecutor::new(model).unwrap();
        group.throughput(Throughput::Elements(400));
        group.bench_function(format!("{name}_cpu_batch100"), |b| {
            b.iter(|| counts(&mut cpu, &s.copies, 400, 100, &mut next))
        });
    }
    group.finish();
}

fn main() {
    let s = setup();
    summary(&s);
    let mut c = Criterion::default().configure_from_args();
    criterion_groups(&s, &mut c);
    c.final_summary();
}
