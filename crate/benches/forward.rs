//! Native forward-pass throughput on the randomized-smoothing workload: a batch of noisy
//! copies of one test image (noise generation, inference and the class count all timed).
//! Run: `cargo bench --bench forward`. Prints samples/s; GMAC/s = samples/s × MACs/image.

use bitsmooth::data::Dataset;
use bitsmooth::eval;
use bitsmooth::model::Model;
use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const MODEL: &[u8] = include_bytes!("../../public/models/mnist-sigma0.25.safetensors");
const IMAGES: &[u8] = include_bytes!("../tests/fixtures/mnist-test.bsds");

fn noisy_batches(c: &mut Criterion) {
    let model = Model::from_safetensors(MODEL, &Device::Cpu).unwrap();
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

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(8));
    targets = noisy_batches
}
criterion_main!(benches);
