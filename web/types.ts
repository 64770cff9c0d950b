// Shapes of the values the engine (crate/src/wasm/) returns, and the worker API.

export interface LayerInfo {
  name: string;
  kind: 'conv' | 'linear';
  in_channels: number;
  out_channels: number;
  kernel: number;
  stride: number;
  padding: number;
  in_hw: [number, number];
  out_hw: [number, number];
  weights: number;
  macs: number;
}

/** What a model file holds (crate/src/checkpoint.rs): `float` weights (quantized after
 * training when a policy is set), an `int8` multi-bit model (Double Rounding: one stored int8
 * model trained jointly at several widths with LSQ; it runs at w8a8 unless told otherwise), or
 * an `export` at one fixed policy. */
export type ModelKind = 'float' | 'int8' | 'export';

export interface ModelInfo {
  arch: string;
  kind: ModelKind;
  /** Bit-widths an int8 model was trained at, e.g. [8, 6, 4, 2]; empty for a float model. */
  bits: number[];
  dataset: string;
  sigma: number;
  macs: number;
  weights: number;
  layers: LayerInfo[];
  /** Clean accuracy on the full test set: `float` for a float model, `w8a8`, `w6a6`, … (one
   * per trained width) for an int8 model. */
  accuracy: Record<string, number>;
  training: Record<string, unknown> | null;
  /** A HASB supernet: mixed policies over `bits` were trained (else multi-bit: uniform ones). */
  supernet?: boolean;
  /** Hessian trace of the loss per quantizable layer, forward order, when the file stores them. */
  hessianTraces?: number[] | null;
}

export interface DatasetInfo {
  count: number;
  rows: number;
  cols: number;
  classes: number;
}

export interface Classification {
  start: number;
  predictions: number[];
  labels: number[];
  correct: number;
}

export interface Loaded {
  model: ModelInfo;
  data: DatasetInfo;
  modelUrl: string;
  dataUrl: string;
}

export type Progress = (done: number, total: number) => void;

/** Progress of classifying the test subset: images done, of total, and correct among them. */
export type ClassifyProgress = (done: number, total: number, correct: number) => void;

/** Settings of one CERTIFY call, as the engine takes them (crate/src/wasm.rs). */
export interface CertifySettings {
  /** Noise level σ > 0 (the model's own). */
  sigma: number;
  /** Selection samples (the guess ĉ_A), whole number in 1..=10⁷. */
  n0: number;
  /** Estimation samples (the bound p_A), whole number in 1..=10⁷. */
  n: number;
  /** Failure probability α ∈ (0, 1). */
  alpha: number;
  /** Seed of the counter-based noise, 0..=2³²−1. */
  seed: number;
  /** Noisy copies per forward pass, 1..=10,000 (does not change the counts). */
  batch: number;
}

/** Cohen et al.'s row of one certified image (plus nA n). */
export interface CertificationRow {
  idx: number;
  label: number;
  /** The smoothed classifier's class; null when it abstains. */
  predict: number | null;
  /** Certified ℓ₂ radius in [0, 1]-pixel units (0 when abstaining). */
  radius: number;
  correct: boolean;
  /** Seconds the certification took in its worker. */
  time: number;
  nA: number;
  n: number;
}

/** One CERTIFY'd image: its row and the statistics behind it. */
/** Where a row was computed: the CPU workers (wasm) or WebGPU. */
export type Backend = 'cpu' | 'webgpu';

/** The visitor's choice: WebGPU when the browser offers an adapter and a device ('auto'), or
 * forced. */
export type BackendChoice = 'auto' | 'cpu' | 'gpu';

/** What a worker found of WebGPU. */
export interface GpuInfo {
  available: boolean;
  /** e.g. "WebGPU · SwiftShader (fallback adapter)"; empty when unavailable. */
  description: string;
  /** Why WebGPU cannot be used (unavailable only). */
  reason: string;
}

/** Timings of the GPU benchmark (bench.html). */
export interface GpuBenchResult {
  samplesPerSecond: number;
  fakeQuantPerSecond: number;
  policySwitchMs: number;
  chunk: number;
}

export interface CertifiedImage extends CertificationRow {
  /** Where it was certified (absent in rows kept before WebGPU: the CPU). */
  backend?: Backend;
  /** Lower confidence bound of the top class's probability. */
  pA: number;
  /** The guess from the n0 selection draws (kept when abstaining). */
  cHat: number;
  /** Class counts of the n estimation draws. */
  counts: number[];
  sigma: number;
  seed: number;
}

/** Settings of one IRS call: CERTIFY's (for the stored model's reference certificate) plus the
 * replayed samples. */
export interface IncrementalSettings extends CertifySettings {
  /** Noisy samples n_χ replayed through the quantized model, whole number ≥ 1. */
  nChi: number;
}

/** One image certified incrementally (Ugare et al., 2024): the policy's row, how it was
 * obtained, and the certificate of the stored model (w8a8 for an int8 model, the float model
 * for a float one) it started from. */
export interface IncrementalImage extends CertificationRow {
  /** 'incremental': the stored model's p_A minus ζ; 'full': recertified from scratch with n_χ draws. */
  path: 'incremental' | 'full';
  /** Upper bound on the disagreement rate of f and fᵖ (null on the full path). */
  zeta: number | null;
  disagreements: number | null;
  nChi: number;
  reference: CertificationRow;
  /** Seconds spent certifying the stored model in this call (0 when cached). */
  referenceSeconds: number;
  referenceCached: boolean;
  irsSeconds: number;
}

/** Bit widths (2..=8) per quantizable layer, in forward order. */
export interface Policy {
  weightBits: number[];
  actBits: number[];
}

/** Cost of one layer at a policy; a float model counts as 32 bits. */
export interface LayerCost {
  macs: number;
  weights: number;
  weightBits: number;
  actBits: number;
  /** MACs × weight bits × activation bits. */
  bops: number;
  sizeBytes: number;
}

export interface PolicyCost {
  policy: Policy | null;
  bops: number;
  sizeBytes: number;
  layers: LayerCost[];
}

/** Integer weights of one layer: counts[v + 2^(bits−1)] weights have value v at `bits`;
 * counts8 the same for the stored 8-bit master. */
export interface WeightHistogram {
  bits: number;
  counts: number[];
  counts8: number[];
}

/** What the worker offers the page (see web/worker.ts). */
/** The arithmetic of the CPU engine (see `EngineApi.setArithmetic`). */
export type Arithmetic = 'integer' | 'float' | 'candle';

/** Which engine build a worker runs and the operands of its integer path. */
export interface EngineBuild {
  /** 'relaxed-simd' where the browser validates it (web/wasm-build.ts), else 'simd128'. */
  simd: 'relaxed-simd' | 'simd128' | 'scalar';
  /** 'i8' (relaxed dot products: activations of at most 7 bits in the relaxed build),
   * 'i16', or '' where the float path runs. */
  operands: 'i8' | 'i16' | '';
}

export interface EngineApi {
  /** Fetches (once) and loads the model, test subset and calibration images (only a float
   * model needs them) for a dataset and σ; asset paths resolve against `base` (the page's URL:
   * a worker's own URL is elsewhere). Loading another model resets the policy to the stored
   * model. `variant` 'float': the float model the shipped int8 model was trained from
   * (`models/float/`) instead of the shipped one. */
  load(dataset: string, sigma: string, base: string, variant?: ModelVariant): Promise<Loaded>;
  /** Classifies images start..start+count at the current policy (one engine call: the page
   * splits the shipped images into chunks over its workers, web/bits/grid-classifier.ts). */
  classify(start: number, count: number): Promise<Classification>;
  /** Pixels of images start..start+count (0..255, 28×28 each). */
  images(start: number, count: number): Promise<Uint8Array>;
  /** Seeded noisy-sample throughput: class counts of `copies` noisy copies of one image. */
  noisyCounts(index: number, copies: number, sigma: number, seed: number): Promise<Uint32Array>;
  /** Which arithmetic classifies noisy copies: 'integer' (the integer kernels of a quantized
   * policy, the default), 'integer-i16' (the same on i16 operands even where the relaxed
   * build would take i8) or 'float' (the float path even then); for benchmarks, kept across
   * policy changes. Returns the arithmetic now in use ('float' for a float model). */
  setArithmetic(arithmetic: 'integer' | 'integer-i16' | 'float'): Promise<Arithmetic>;
  /** The engine build this worker loaded and the operands its integer path now uses. */
  engineBuild(): Promise<EngineBuild>;
  /** CERTIFY for one image; `onProgress(samples done, samples total)` at most every ~100 ms.
   * Synchronous inside the worker: stop it by terminating the worker. */
  certify(index: number, settings: CertifySettings, onProgress: Progress): Promise<CertifiedImage>;
  /** `count` (≤ 64) of the noisy copies CERTIFY's estimation draws see, 0..255, 28×28 each. */
  noisyImages(index: number, count: number, sigma: number, seed: number): Promise<Uint8Array>;
  /** Switches to a bit policy (null: the stored model — w8a8 for an int8 model, whose cost
   * then names that policy; float for a float model) and returns its cost; a bad policy
   * rejects and changes nothing. */
  setPolicy(policy: Policy | null): Promise<PolicyCost>;
  /** The cost of a policy without switching to it. */
  policyCost(policy: Policy): Promise<PolicyCost>;
  weightHistogram(layer: number, bits: number): Promise<WeightHistogram>;
  /** Benchmark (bench.html): mean ms per whole-model policy switch inside the engine, by
   * Double Rounding from the int8 masters and by re-quantizing a float copy. */
  benchPolicySwitch(reps: number): Promise<PolicySwitchTiming>;
  /** Benchmark (bench-gpu.html): activation values fake-quantized per second on the CPU. */
  benchFakeQuant(values: number): Promise<number>;
  /** IRS for one image against the stored model (w8a8 for int8, float for a float model; needs
   * a policy); like `certify` otherwise. */
  certifyIncremental(index: number, settings: IncrementalSettings, onProgress: Progress): Promise<IncrementalImage>;
  /** The loaded model's search space and costs (for the budget slider). */
  searchSpace(pinFirstLast: boolean): Promise<SpaceInfo>;
  /** One mixed-precision search on validation images drawn from the shipped training images
   * (`data/{dataset}-calibration.bsds`); `onReport` after each step. Synchronous inside the
   * worker: stop it by terminating the worker. */
  search(settings: SearchSettings, onReport: (r: SearchReport) => void): Promise<SearchOutcome>;
  /** A drawn 28×28 image (0..255) classified at the current policy and as stored. */
  classifyDrawing(pixels: Uint8Array): Promise<DrawingPrediction>;
  /** CERTIFY for a drawn image at the current policy (its noise is its own: seed and an index
   * no test image has). */
  certifyDrawing(pixels: Uint8Array, settings: CertifySettings, onProgress: Progress): Promise<CertifiedDrawing>;
  /** `count` (≤ 64) of the noisy copies `certifyDrawing` sees, 0..255, 28×28 each. */
  noisyDrawing(pixels: Uint8Array, count: number, sigma: number, seed: number): Promise<Uint8Array>;
  /** Looks for WebGPU in this worker (an adapter, then a device); once per worker. */
  gpuInit(): Promise<GpuInfo>;
  /** CERTIFY for one image on WebGPU (after a successful `gpuInit`): the noise drawn and the
   * network run on the GPU, only class counts read back; the same result as `certify`. Rejects
   * when the GPU fails (e.g. the device is lost). */
  certifyGpu(index: number, settings: CertifySettings, onProgress: Progress): Promise<CertifiedImage>;
  /** Class counts of noisy copies, on WebGPU (like `noisyCounts`). */
  noisyCountsGpu(index: number, copies: number, sigma: number, seed: number): Promise<Uint32Array>;
  /** Benchmark (bench.html): WebGPU throughput at the current model and policy. */
  benchGpu(index: number, samples: number, values: number): Promise<GpuBenchResult>;
  /** Destroys this worker's GPU device, as a lost GPU would (tests the CPU fallback). */
  loseGpu(): Promise<void>;
}

/** One model's answer for a drawing. */
export interface DrawingAnswer {
  prediction: number;
  probabilities: number[];
}

export interface DrawingPrediction {
  /** At the current policy. */
  current: DrawingAnswer;
  /** As stored (w8a8 for an int8 model, float otherwise). */
  stored: DrawingAnswer;
}

export interface CertifiedDrawing {
  /** The smoothed classifier's class; null when it abstains. */
  prediction: number | null;
  radius: number;
  pA: number;
  cHat: number;
  counts: number[];
  n: number;
  sigma: number;
  seed: number;
}

export const SEARCH_METHODS = ['haq', 'arq', 'hawq', 'ilp', 'uniform', 'random'] as const;
export type SearchMethod = (typeof SEARCH_METHODS)[number];

/** Settings of one search (crate/src/wasm/search.rs). */
export interface SearchSettings {
  method: SearchMethod;
  /** Fraction in (0, 1] of the all-8-bit BOPs. */
  budget: number;
  /** Episodes of the agent (arq, haq) or samples (random), 1..=10,000. */
  episodes: number;
  seed: number;
  /** Validation images drawn from the shipped training images. */
  valSize: number;
  /** What uniform, random and the ILPs score with; ARQ is ACR, HAQ accuracy. */
  reward?: 'accuracy' | 'acr';
  /** ARQ: samples n per image of the stored model's certification. */
  n: number;
  /** ARQ: replayed samples n_χ per image and policy. */
  nChi: number;
  pinFirstLast: boolean;
}

/** One evaluated policy: one width per layer for weights and activations together. */
export interface Evaluated {
  widths: number[];
  bops: number;
  sizeBytes: number;
  reward: number;
  episode: number;
}

export type SearchReport =
  | { phase: 'reference' | 'hessian'; done: number; total: number }
  | { phase: 'search'; episode: number; episodes: number; reward: number; bestReward: number; evaluated: Evaluated | null };

export interface SearchOutcome {
  method: string;
  best: Evaluated;
  trace: Evaluated[];
  cancelled: boolean;
  rewardName: string;
  budget: number;
  maxBops: number;
  referenceAcr: number | null;
  /** hawq/ilp: whether the Hessian traces were stored in the model or estimated here. */
  hessian: 'stored' | 'estimated' | null;
  valSize: number;
  seed: number;
  seconds: number;
}

export interface SpaceInfo {
  bits: number[];
  maxBops: number;
  minBops: number;
  /** BOPs with every unpinned layer at bits[k]. */
  uniformBops: number[];
  layers: number;
}

/** `benchPolicySwitch`'s result. */
export interface PolicySwitchTiming {
  doubleRoundMs: number;
  requantizeMs: number;
  reps: number;
}

export const DATASETS = {
  mnist: { label: 'MNIST', classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] },
  fashion: {
    label: 'Fashion-MNIST',
    classes: ['T-shirt', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Boot'],
  },
} as const;
export type DatasetName = keyof typeof DATASETS;
export const SIGMAS = ['0.25', '0.5', '1.0'] as const;
export type Sigma = (typeof SIGMAS)[number];

/** Which file of a dataset and σ: absent, the shipped int8 supernet; 'multibit', the int8
 * multi-bit model shipped before it (uniform widths trained; better at w2a2); 'float', the
 * float model both were trained from, shipped for comparison. */
export type ModelVariant = 'float' | 'multibit';

/** The int8 model the page runs: the supernet (default) or the multi-bit model. */
export const TRAININGS = {
  supernet: { label: 'supernet (mixed widths)', variant: undefined },
  multibit: { label: 'multi-bit (uniform widths)', variant: 'multibit' },
} as const satisfies Record<string, { label: string; variant: ModelVariant | undefined }>;
export type Training = keyof typeof TRAININGS;

/** Static asset paths of the shipped models and test subsets. */
export function modelUrl(dataset: string, sigma: string, variant?: ModelVariant): string {
  return `models/${variant ? `${variant}/` : ''}${dataset}-sigma${sigma}.safetensors`;
}
export function dataUrl(dataset: string): string {
  return `data/${dataset}-test.bsds`;
}
export function calibrationUrl(dataset: string): string {
  return `data/${dataset}-calibration.bsds`;
}
