// WebGPU benchmark page: the GPU against the CPU wasm path, interleaved in one browser run, at
// w8a8 and w4a4. Noisy-forward samples/s (noise + network + class count; the GPU reads back only
// the counts), fake-quantization values/s, and the policy switch. Prints JSON into #out
// (scripts/bench-gpu-browser.mjs drives it headlessly with WebGPU enabled).
import { spawnEngine } from './engine';
import type { DatasetName, GpuBenchResult, Policy, Sigma } from './types';

const q = new URLSearchParams(location.search);
const dataset = (q.get('dataset') ?? 'mnist') as DatasetName;
const sigma = (q.get('sigma') ?? '0.25') as Sigma;
const samples = Number(q.get('samples') ?? 4096);
const values = Number(q.get('values') ?? 1 << 20);
const rounds = Number(q.get('rounds') ?? 3);
const out = document.querySelector('#out')!;

const uniform = (bits: number): Policy => ({ weightBits: Array(8).fill(bits), actBits: Array(8).fill(bits) });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function run(): Promise<void> {
  // two workers, as the page has them: one for the CPU path, one holding the GPU device
  const cpu = spawnEngine('bench-cpu').api;
  const gpu = spawnEngine('bench-gpu').api;
  const [loaded] = await Promise.all([cpu.load(dataset, sigma, document.baseURI), gpu.load(dataset, sigma, document.baseURI)]);
  const info = await gpu.gpuInit();
  if (!info.available) throw new Error(`WebGPU is not available: ${info.reason}`);
  const macs = loaded.model.macs;
  const result: Record<string, unknown> = { dataset, sigma, adapter: info.description, samples, values, rounds, macsPerImage: macs };
  for (const bits of [8, 4]) {
    await Promise.all([cpu.setPolicy(uniform(bits)), gpu.setPolicy(uniform(bits))]);
    await cpu.noisyCounts(0, Math.min(samples, 1000), Number(sigma), 0); // warm-up
    // warm-up: the first call at a width switches the policy (and, the first time, makes the
    // executor and compiles its pipelines)
    const first = await gpu.benchGpu(0, Math.min(samples, 1024), values);
    const cpuRate: number[] = [];
    const gpuRate: number[] = [];
    const gpuBench: GpuBenchResult[] = [];
    for (let r = 0; r < rounds; r++) {
      let t0 = performance.now();
      let counts = await cpu.noisyCounts(r % 8, samples, Number(sigma), r + 1);
      cpuRate.push(samples / ((performance.now() - t0) / 1000));
      if (counts.reduce((a, b) => a + b, 0) !== samples) throw new Error('CPU counts do not add up');
      t0 = performance.now();
      counts = await gpu.noisyCountsGpu(r % 8, samples, Number(sigma), r + 1);
      gpuRate.push(samples / ((performance.now() - t0) / 1000));
      if (counts.reduce((a, b) => a + b, 0) !== samples) throw new Error('GPU counts do not add up');
      gpuBench.push(await gpu.benchGpu(0, samples, values));
    }
    const cpuFakeQuant = await cpu.benchFakeQuant(values);
    const c = median(cpuRate);
    const g = median(gpuRate);
    result[`w${bits}a${bits}`] = {
      cpuWasmOneWorker: { samplesPerSec: c, gmacPerSec: (c * macs) / 1e9, fakeQuantValuesPerSec: cpuFakeQuant },
      webgpu: {
        samplesPerSec: g,
        gmacPerSec: (g * macs) / 1e9,
        fakeQuantValuesPerSec: median(gpuBench.map((b) => b.fakeQuantPerSecond)),
        // Double Rounding of every layer at the round's policy, submitted and waited for
        policySwitchMs: median(gpuBench.map((b) => b.policySwitchMs)),
        firstCallAtThisWidthMs: first.policySwitchMs,
        chunk: first.chunk,
      },
      gpuOverCpu: g / c,
    };
  }
  out.textContent = JSON.stringify(result, null, 2);
  document.body.dataset.status = 'done';
}

run().catch((e: unknown) => {
  out.textContent = `error: ${e instanceof Error ? e.message : String(e)}`;
  document.body.dataset.status = 'error';
});
