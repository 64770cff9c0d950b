// The Web Worker that hosts the wasm engine: the page talks to it only through EngineApi
// (Comlink RPC), so the UI thread never blocks on computation.
import * as Comlink from 'comlink';
import type { Engine, GpuSession } from '../pkg/bitsmooth.js';
import { buildOfWorker } from './wasm-build';
import { detectGpu } from './gpu/detect';
import {
  calibrationUrl,
  dataUrl,
  modelUrl,
  type Arithmetic,
  type EngineBuild,
  type CertifiedDrawing,
  type CertifiedImage,
  type Classification,
  type DatasetInfo,
  type DrawingPrediction,
  type GpuBenchResult,
  type GpuInfo,
  type EngineApi,
  type IncrementalImage,
  type Loaded,
  type ModelInfo,
  type Policy,
  type PolicyCost,
  type PolicySwitchTiming,
  type Progress,
  type SearchOutcome,
  type SpaceInfo,
  type WeightHistogram,
} from './types';

const PROGRESS_MS = 100; // a certification reports after every batch; the page needs far fewer

type Wasm = typeof import('../pkg/bitsmooth.js');

/** The build the page chose for its workers (web/wasm-build.ts); both have the same API. */
async function loadWasm(): Promise<Wasm> {
  const wasm: Wasm =
    buildOfWorker(self.name) === 'relaxed-simd'
      ? await import('../pkg-relaxed/bitsmooth.js')
      : await import('../pkg/bitsmooth.js');
  await wasm.default();
  return wasm;
}
const ready = loadWasm();
let engine: Engine | null = null;
/** This worker's WebGPU device and executor, once `gpuInit` found them. */
let gpu: GpuSession | null = null;
let gpuFound: Promise<GpuInfo> | null = null;
const bytesCache = new Map<string, Promise<Uint8Array>>();
let loadedKey = '';
let loaded: Loaded | null = null;
/** The shipped training images of the loaded model's dataset (calibration and search). */
let trainingUrl = '';

/** Fetches a static asset once per worker (the browser's HTTP cache covers reloads). */
function fetchBytes(url: string): Promise<Uint8Array> {
  let p = bytesCache.get(url);
  if (!p) {
    p = fetch(url).then(async (r) => {
      if (!r.ok) throw new Error(`could not fetch ${url}: HTTP ${r.status}`);
      return new Uint8Array(await r.arrayBuffer());
    });
    p.catch(() => bytesCache.delete(url));
    bytesCache.set(url, p);
  }
  return p;
}

function getGpu(): GpuSession {
  if (!gpu) throw new Error('WebGPU is not ready in this worker: call gpuInit first (and check that it is available)');
  return gpu;
}

async function getEngine(): Promise<Engine> {
  const wasm = await ready;
  engine ??= new wasm.Engine();
  return engine;
}

/** Sends at most one progress report per PROGRESS_MS: the engine calls after every batch. */
function throttle(onProgress: Progress): Progress {
  let last = 0;
  return (done, total) => {
    const now = performance.now();
    if (now - last < PROGRESS_MS) return;
    last = now;
    onProgress(done, total);
  };
}

/** IRS reports each phase (the float reference, then the replay) from 0: keep the count rising
 * so the page's progress bar never runs backwards. */
function cumulative(onProgress: Progress): Progress {
  let offset = 0;
  let last = 0;
  let lastTotal = 0;
  return (done, total) => {
    if (done < last) offset += lastTotal;
    last = done;
    lastTotal = total;
    onProgress(offset + done, offset + total);
  };
}

const api: EngineApi = {
  async load(dataset, sigma, base, variant) {
    const key = `${dataset}/${sigma}/${variant ?? 'shipped'}`;
    if (loaded && key === loadedKey) return loaded;
    const e = await getEngine();
    const mUrl = new URL(modelUrl(dataset, sigma, variant), base).href;
    const dUrl = new URL(dataUrl(dataset), base).href;
    trainingUrl = new URL(calibrationUrl(dataset), base).href;
    const [m, d] = await Promise.all([fetchBytes(mUrl), fetchBytes(dUrl)]);
    const model = e.loadModel(m) as ModelInfo;
    const data = e.loadDataset(d) as DatasetInfo;
    // only a float model needs calibration images (its activation ranges); an int8 model has
    // learned activation scales per bit-width
    if (model.kind === 'float') e.loadCalibration(await fetchBytes(trainingUrl));
    loaded = { model, data, modelUrl: mUrl, dataUrl: dUrl };
    loadedKey = key;
    return loaded;
  },

  async classify(start, count) {
    const e = await getEngine();
    return e.classify(start, count) as Classification;
  },

  async images(start, count) {
    const e = await getEngine();
    return e.images(start, count);
  },

  async noisyCounts(index, copies, sigma, seed) {
    const e = await getEngine();
    return e.noisyCounts(index, copies, sigma, seed);
  },

  async setArithmetic(arithmetic) {
    const e = await getEngine();
    e.setExecutor(arithmetic === 'float' ? 'fast-float' : arithmetic === 'integer-i16' ? 'fast-i16' : 'fast');
    return e.arithmetic() as Arithmetic;
  },

  async engineBuild() {
    const wasm = await ready;
    const e = await getEngine();
    return { simd: wasm.wasmSimd() as EngineBuild['simd'], operands: e.operands() as EngineBuild['operands'] };
  },

  async certify(index, settings, onProgress) {
    const e = await getEngine();
    const row = e.certify(index, settings, throttle(onProgress)) as CertifiedImage;
    return { ...row, backend: 'cpu' };
  },

  async gpuInit() {
    const wasm = await ready;
    gpuFound ??= detectGpu(async () => {
      gpu = await wasm.GpuSession.create();
    });
    return gpuFound;
  },

  async certifyGpu(index, settings, onProgress) {
    const e = await getEngine();
    const row = (await getGpu().certify(e, index, settings, throttle(onProgress))) as CertifiedImage;
    return { ...row, backend: 'webgpu' };
  },

  async noisyCountsGpu(index, copies, sigma, seed) {
    const e = await getEngine();
    return (await getGpu().noisyCounts(e, index, copies, sigma, seed)) as Uint32Array;
  },

  async benchGpu(index, samples, values) {
    const e = await getEngine();
    return (await getGpu().bench(e, index, samples, values)) as GpuBenchResult;
  },

  async loseGpu() {
    getGpu().loseDevice();
  },

  async certifyIncremental(index, settings, onProgress) {
    const e = await getEngine();
    return e.certifyIncremental(index, settings, cumulative(throttle(onProgress))) as IncrementalImage;
  },

  async setPolicy(policy: Policy | null) {
    const e = await getEngine();
    return e.setPolicy(policy) as PolicyCost;
  },

  async policyCost(policy) {
    const e = await getEngine();
    return e.policyCost(policy) as PolicyCost;
  },

  async weightHistogram(layer, bits) {
    const e = await getEngine();
    return e.weightHistogram(layer, bits) as WeightHistogram;
  },

  async benchPolicySwitch(reps) {
    const e = await getEngine();
    return e.benchPolicySwitch(reps) as PolicySwitchTiming;
  },

  async benchFakeQuant(values) {
    const e = await getEngine();
    return e.benchFakeQuant(values);
  },

  async searchSpace(pinFirstLast) {
    const e = await getEngine();
    return e.searchSpace(pinFirstLast) as SpaceInfo;
  },

  async search(settings, onReport) {
    const e = await getEngine();
    if (!loaded) throw new Error('no model loaded: load one first');
    // validation images are drawn from the training images the site ships
    e.loadCalibration(await fetchBytes(trainingUrl));
    return e.search(settings, onReport) as SearchOutcome;
  },

  async noisyImages(index, count, sigma, seed) {
    const e = await getEngine();
    return e.noisyImages(index, count, sigma, seed);
  },

  async classifyDrawing(pixels) {
    const e = await getEngine();
    return e.classifyDrawing(pixels) as DrawingPrediction;
  },

  async certifyDrawing(pixels, settings, onProgress) {
    const e = await getEngine();
    return e.certifyDrawing(pixels, settings, throttle(onProgress)) as CertifiedDrawing;
  },

  async noisyDrawing(pixels, count, sigma, seed) {
    const e = await getEngine();
    return e.noisyDrawing(pixels, count, sigma, seed);
  },
};

Comlink.expose(api);
