//! Inference-only throughput of the fast executor: the best of 30 calls on a batch of 100
//! images, for each build and thread count. The best call, not the median, because on a
//! shared machine it is the one least disturbed by other work (criterion's medians in
//! `benches/forward.rs` include the noise and are the figures to compare with candle).
//! Run: `cargo run --release --example exec_throughput`.

use bitsmooth::exec::CpuExecutor;
use std::time::Instant;

const MODEL: &[u8] = include_bytes!("../../models/float/mnist-sigma0.25.safetensors");

fn main() {
    let model = bitsmooth::checkpoint::load(MODEL).unwrap().model;
    let inputs: Vec<f32> = (0..100 * 784)
        .map(|i| ((i * 37) % 101) as f32 / 100.0)
        .collect();
    let variants = [
        ("best build, 1 thread", false, 1),
        ("best build, 2 threads", false, 2),
        ("portable build, 1 thread", true, 1),
    ];
    for (name, portable, threads) in variants {
        let mut exec = CpuExecutor::new(&model).unwrap().with_threads(threads);
        if portable {
            exec = exec.portable();
        }
        let mut best = f64::MAX;
        for _ in 0..30 {
            let t = Instant::now();
            std::hint::black_box(exec.logits(&inputs, 100).unwrap());
            best = best.min(t.elapsed().as_secs_f64());
        }
        let rate = 100.0 / best;
        println!(
            "{name}: {:.2} ms per 100 images, {rate:.0} samples/s, {:.1} GMAC/s",
            best * 1e3,
            rate * model.macs() as f64 / 1e9
        );
    }
}
