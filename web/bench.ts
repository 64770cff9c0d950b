// Benchmark page: measures, in the browser, (1) the engine's noisy-sample throughput in one
// worker (the stored model, then w8a8/w4a4/w2a2 on the integer path, on its i16 operands and on
// the float path; ?simd=simd128 forces the SIMD128 build), (2) the time to switch the whole
// model to another bit policy, and (3) how a
// certification scales with workers; prints JSON into #out (scripts/bench-browser.mjs drives
// it headlessly and records the figures).
import { startEngine } from './engine';
import { CertifyPool, type CertifyCall } from './pool';
import type { CertifiedImage, DatasetName, Policy, Sigma } from './types';

const q = new URLSearchParams(location.search);
const dataset = (q.get('dataset') ?? 'mnist') as DatasetName;
const sigma = (q.get('sigma') ?? '0.25') as Sigma;
const batch = Number(q.get('batch') ?? 100);
const reps = Number(q.get('reps') ?? 5);
const out = document.querySelector('#out')!;

const uniform = (bits: number): Policy => ({ weightBits: Array(8).fill(bits), actBits: Array(8).fill(bits) });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Median seconds per call of `batch` noisy copies → inference → class counts. */
async function medianSeconds(engine: ReturnType<typeof startEngine>, images: number): Promise<number> {
  // warm-up: at least 3 calls and 1 s, so that V8's optimising tier has replaced the baseline
  // code (the peers' harness likewise warms up before its timed seconds)
  const warmEnd = performance.now() + 1000;
  for (let w = 0; w < 3 || performance.now() < warmEnd; w++) await engine.noisyCounts(0, batch, Number(sigma), 0);
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    const counts = await engine.noisyCounts(r % images, batch, Number(sigma), r + 1);
    times.push((performance.now() - t0) / 1000);
    if (counts.reduce((a, b) => a + b, 0) !== batch) throw new Error('counts do not add up');
  }
  return median(times);
}

/** Samples/s at uniform widths on the integer path (i8 operands where the relaxed build runs
 * and the activations fit 7 bits), on i16 operands, and on the float path it replaces. */
async function arithmetic(engine: ReturnType<typeof startEngine>, images: number) {
  const rows = [];
  for (const bits of [8, 4, 2]) {
    await engine.setPolicy(uniform(bits));
    const row: Record<string, number | string> = { policy: `w${bits}a${bits}` };
    for (const arith of ['integer', 'integer-i16', 'float'] as const) {
      const used = await engine.setArithmetic(arith);
      if (used !== (arith === 'float' ? 'float' : 'integer')) throw new Error(`asked for the ${arith} path, got ${used}`);
      if (arith === 'integer') row.operands = (await engine.engineBuild()).operands;
      row[arith] = batch / (await medianSeconds(engine, images));
    }
    rows.push(row);
  }
  await engine.setArithmetic('integer');
  await engine.setPolicy(null);
  return rows;
}

async function throughput() {
  const engine = startEngine();
  const loaded = await engine.load(dataset, sigma, document.baseURI);
  const seconds = await medianSeconds(engine, loaded.data.count);
  const samplesPerSec = batch / seconds;
  const byArithmetic = await arithmetic(engine, loaded.data.count);
  // policy switches, alternating w4a4 / w6a6; an RPC that does no work gives the overhead
  await engine.setPolicy(uniform(8));
  const switches = 40;
  let t0 = performance.now();
  for (let i = 0; i < switches; i++) await engine.setPolicy(uniform(i % 2 ? 6 : 4));
  const switchMs = (performance.now() - t0) / switches;
  t0 = performance.now();
  for (let i = 0; i < switches; i++) await engine.policyCost(uniform(4));
  const rpcMs = (performance.now() - t0) / switches;
  // the same switch timed inside the engine, against re-quantizing from a float copy
  const inEngine = await engine.benchPolicySwitch(300);
  return {
    macsPerImage: loaded.model.macs,
    batch,
    medianSeconds: seconds,
    samplesPerSec,
    gmacPerSec: (samplesPerSec * loaded.model.macs) / 1e9,
    policySwitchMs: switchMs,
    rpcRoundTripMs: rpcMs,
    policySwitchInEngineMs: inEngine.doubleRoundMs,
    requantizeFromFloatInEngineMs: inEngine.requantizeMs,
    samplesPerSecByArithmetic: byArithmetic,
    wasmSimd: (await engine.engineBuild()).simd,
  };
}

/** Wall time of certifying `images` images at n = 1,000 with `workers` workers. */
async function certifyWith(workers: number, images: number) {
  const pool = new CertifyPool(document.baseURI);
  const settings = { sigma: Number(sigma), n0: 100, n: 1000, alpha: 0.001, seed: 0, batch: 100 };
  const indices = Array.from({ length: images }, (_, i) => i);
  const target = { dataset, sigma, workers, policy: null };
  const call: CertifyCall<CertifiedImage> = (api, index, onProgress) =>
    api.certify(index, settings, onProgress);
  const ignore = { row() {}, progress() {} };
  await pool.certify(target, [0], 1100, call, ignore); // spawn + load + warm-up
  const t0 = performance.now();
  await pool.certify(target, indices, 1100, call, ignore);
  const seconds = (performance.now() - t0) / 1000;
  pool.cancel();
  return { workers, images, seconds, samplesPerSec: (images * 1100) / seconds };
}

async function run(): Promise<void> {
  const result: Record<string, unknown> = { dataset, sigma, hardwareConcurrency: navigator.hardwareConcurrency };
  result['oneWorker'] = await throughput();
  const images = Number(q.get('images') ?? 16);
  const scaling = [];
  for (let w = 1; w <= Math.min(navigator.hardwareConcurrency, 4); w++) scaling.push(await certifyWith(w, images));
  result['certifyScaling'] = scaling;
  out.textContent = JSON.stringify(result, null, 2);
  document.body.dataset.status = 'done';
}

run().catch((e: unknown) => {
  out.textContent = `error: ${e instanceof Error ? e.message : String(e)}`;
  document.body.dataset.status = 'error';
});
