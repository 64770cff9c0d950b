// Benchmark page: measures the engine's noisy-sample throughput in a worker and prints JSON
// into #out (scripts/bench-browser.mjs drives it headlessly and records the figures).
import { startEngine } from './engine';

const q = new URLSearchParams(location.search);
const dataset = q.get('dataset') ?? 'mnist';
const sigma = q.get('sigma') ?? '0.25';
const batch = Number(q.get('batch') ?? 100);
const reps = Number(q.get('reps') ?? 5);
const out = document.querySelector('#out')!;

async function run(): Promise<void> {
  const engine = startEngine();
  const loaded = await engine.load(dataset, sigma, document.baseURI);
  await engine.noisyCounts(0, batch, Number(sigma), 0); // warm-up
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    const counts = await engine.noisyCounts(r % loaded.data.count, batch, Number(sigma), r + 1);
    times.push((performance.now() - t0) / 1000);
    if (counts.reduce((a, b) => a + b, 0) !== batch) throw new Error('counts do not add up');
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  const samplesPerSec = batch / median;
  const result = {
    dataset,
    sigma,
    batch,
    reps,
    macsPerImage: loaded.model.macs,
    medianSeconds: median,
    samplesPerSec,
    gmacPerSec: (samplesPerSec * loaded.model.macs) / 1e9,
    userAgent: navigator.userAgent,
    hardwareConcurrency: navigator.hardwareConcurrency,
  };
  out.textContent = JSON.stringify(result, null, 2);
  document.body.dataset.status = 'done';
}

run().catch((e: unknown) => {
  out.textContent = `error: ${e instanceof Error ? e.message : String(e)}`;
  document.body.dataset.status = 'error';
});
