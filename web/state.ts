// The one piece of UI state a visitor changes. It lives in the URL hash so that links are
// shareable and a reload restores the view; parsing validates every field and reports what
// it had to ignore.
import { DATASETS, SIGMAS, TRAININGS, type BackendChoice, type DatasetName, type Policy, type Sigma, type Training } from './types';
import { LAYERS, parseBits } from './bits/policy';

export type Filter = 'all' | 'wrong';

/** Settings of a certification run (CERTIFY's n0, n, α; which images; the noise seed; how
 * many workers share it). σ is the model's. */
export interface CertifyState {
  /** Selection samples per image, 1..=10⁷. */
  n0: number;
  /** Estimation samples per image, 1..=10⁷. */
  n: number;
  /** Failure probability α ∈ (0, 1). */
  alpha: number;
  /** Certify the first `count` shipped test images, 1..=10,000. */
  count: number;
  /** Seed of the noise, 0..=2³²−1: the same seed gives the same counts. */
  seed: number;
  /** Worker pool size, 1..=navigator.hardwareConcurrency. */
  workers: number;
}
export type CertifyKey = keyof CertifyState;

export interface State extends CertifyState {
  dataset: DatasetName;
  sigma: Sigma;
  /** Which int8 model of the dataset and σ: the supernet or the multi-bit model. */
  training: Training;
  /** Page of the prediction grid (0-based). */
  page: number;
  filter: Filter;
  /** Selected test image (index into the shipped subset). */
  selected: number;
  /** Bit widths per layer; null = the stored model (w8a8 for an int8 model, float for a
   * float one). */
  policy: Policy | null;
  /** Certify a policy incrementally (IRS) against the stored model. */
  irs: boolean;
  /** IRS's replayed samples n_χ; null = 10 % of n. */
  nChi: number | null;
  /** The layer (0..LAYERS−1, forward order) whose weight histogram the Bits panel shows. */
  layer: number;
  /** Where CERTIFY runs: WebGPU when the browser has it ('auto'), or forced. */
  backend: BackendChoice;
}

export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'cpu', 'gpu'];

export const MAX_WORKERS = Math.max(1, navigator.hardwareConcurrency || 1);

export const DEFAULT_STATE: State = {
  dataset: 'mnist',
  sigma: '0.25',
  training: 'supernet',
  page: 0,
  filter: 'all',
  selected: 0,
  n0: 100,
  n: 1000,
  alpha: 0.001,
  count: 100,
  seed: 0,
  workers: Math.min(MAX_WORKERS, 4),
  policy: null,
  irs: false,
  nChi: null,
  layer: 0,
  backend: 'auto',
};

/** IRS's n_χ when the visitor did not choose one: 10 % of n, at least 1. */
export function nChiOf(s: Pick<State, 'n' | 'nChi'>): number {
  return s.nChi ?? Math.max(1, Math.round(s.n / 10));
}

const MAX_INDEX = 100_000;

/** Inclusive ranges of the whole-number settings (the engine's limits for n0 and n). */
export const WHOLE_RANGES: Record<Exclude<CertifyKey, 'alpha'>, [number, number]> = {
  n0: [1, 10_000_000],
  n: [1, 10_000_000],
  count: [1, 10_000],
  seed: [0, 4_294_967_295],
  workers: [1, MAX_WORKERS],
};

/** What a setting may be, for messages: "a whole number from 1 to 10,000,000". */
export function settingRange(key: CertifyKey): string {
  if (key === 'alpha') return 'a number between 0 and 1, exclusive';
  const [min, max] = WHOLE_RANGES[key];
  return `a whole number from ${min.toLocaleString('en')} to ${max.toLocaleString('en')}`;
}

/** Decimal or scientific notation ("1000", "1e3", "0.001", "1E-3"); nothing else reads as a
 * number (no hex, no empty text, no "Infinity"). */
const NUMBER = /^[+]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A certification setting from text (link or input): its value, or why it is not valid.
 * `1e3` is 1000; `workers` above the device's cores is clamped to them, with a note. */
export function readSetting(key: CertifyKey, text: string): { value: number; note?: string } | { error: string } {
  const v = NUMBER.test(text) ? Number(text) : NaN;
  const range = settingRange(key);
  if (key === 'alpha') return Number.isFinite(v) && v > 0 && v < 1 ? { value: v } : { error: range };
  const [min, max] = WHOLE_RANGES[key];
  if (!Number.isInteger(v) || v < min) return { error: range };
  if (key === 'workers' && v > max) {
    return { value: max, note: `this device allows at most ${max} worker${max > 1 ? 's' : ''}; using ${max}` };
  }
  return v <= max ? { value: v } : { error: range };
}

/** A certification setting from text, or null when it is not valid (see readSetting). */
export function parseSetting(key: CertifyKey, text: string): number | null {
  const r = readSetting(key, text);
  return 'value' in r ? r.value : null;
}

function parseIndex(v: string): number | null {
  if (!/^\d{1,6}$/.test(v)) return null;
  const n = Number(v);
  return n <= MAX_INDEX ? n : null;
}

/** The shipped σ that `text` names numerically ("0.50" and ".5" are "0.5", "1" is "1.0"). */
function parseSigma(text: string): Sigma | null {
  if (!NUMBER.test(text)) return null;
  return SIGMAS.find((s) => Number(s) === Number(text)) ?? null;
}

/** Parses `#dataset=…&sigma=…`; returns the state, the parameters that were ignored and notes
 * on the ones that were adjusted (e.g. more workers than the device has). */
export function parseHash(hash: string): { state: State; ignored: string[]; adjusted: string[] } {
  const state: State = { ...DEFAULT_STATE };
  const ignored: string[] = [];
  const adjusted: string[] = [];
  const bits: { w?: string; a?: string } = {};
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(hash.replace(/^#/, ''));
  } catch {
    return { state, ignored: [hash], adjusted };
  }
  for (const [key, value] of params) {
    switch (key) {
      case 'dataset':
        if (value in DATASETS) state.dataset = value as DatasetName;
        else ignored.push(`${key}=${value}`);
        break;
      case 'sigma': {
        const sigma = parseSigma(value);
        if (sigma) state.sigma = sigma;
        else ignored.push(`${key}=${value}`);
        break;
      }
      case 'model':
        if (value in TRAININGS) state.training = value as Training;
        else ignored.push(`${key}=${value}`);
        break;
      case 'page':
      case 'selected': {
        const n = parseIndex(value);
        if (n === null) ignored.push(`${key}=${value}`);
        else state[key] = n;
        break;
      }
      case 'filter':
        if (value === 'all' || value === 'wrong') state.filter = value;
        else ignored.push(`${key}=${value}`);
        break;
      case 'n0':
      case 'n':
      case 'alpha':
      case 'count':
      case 'seed':
      case 'workers': {
        const r = readSetting(key, value);
        if ('error' in r) {
          ignored.push(`${key}=${value}`);
        } else {
          state[key] = r.value;
          if (r.note) adjusted.push(`${key}=${value}: ${r.note}`);
        }
        break;
      }
      case 'w':
      case 'a':
        bits[key] = value;
        break;
      case 'layer': {
        const n = parseIndex(value);
        if (n === null || n >= LAYERS) ignored.push(`${key}=${value}`);
        else state.layer = n;
        break;
      }
      case 'irs':
        if (value === '0' || value === '1') state.irs = value === '1';
        else ignored.push(`${key}=${value}`);
        break;
      case 'backend':
        if ((BACKEND_CHOICES as readonly string[]).includes(value)) state.backend = value as BackendChoice;
        else ignored.push(`${key}=${value}`);
        break;
      case 'nchi': {
        const v = parseSetting('n', value);
        if (v === null) ignored.push(`${key}=${value}`);
        else state.nChi = v;
        break;
      }
      default:
        ignored.push(`${key}=${value}`);
    }
  }
  // a policy needs both lists; anything less falls back to the stored model
  if (bits.w !== undefined || bits.a !== undefined) {
    const weightBits = parseBits(bits.w ?? '');
    const actBits = parseBits(bits.a ?? '');
    if (weightBits && actBits) state.policy = { weightBits, actBits };
    else ignored.push(`w=${bits.w ?? ''}&a=${bits.a ?? ''} (a policy is 8 widths in 2..8 for each of w and a)`);
  }
  return { state, ignored, adjusted };
}

export function toHash(s: State): string {
  const p = new URLSearchParams({
    dataset: s.dataset,
    sigma: s.sigma,
    page: String(s.page),
    filter: s.filter,
    selected: String(s.selected),
    n0: String(s.n0),
    n: String(s.n),
    alpha: String(s.alpha),
    count: String(s.count),
    seed: String(s.seed),
    workers: String(s.workers),
  });
  if (s.policy) {
    p.set('w', s.policy.weightBits.join(','));
    p.set('a', s.policy.actBits.join(','));
  }
  if (s.irs) p.set('irs', '1');
  if (s.nChi !== null) p.set('nchi', String(s.nChi));
  if (s.layer !== 0) p.set('layer', String(s.layer));
  if (s.training !== DEFAULT_STATE.training) p.set('model', s.training);
  if (s.backend !== DEFAULT_STATE.backend) p.set('backend', s.backend);
  // commas are fine in a fragment and keep the bit lists readable
  return `#${p.toString().replace(/%2C/g, ',')}`;
}

type Listener = (state: State, previous: State) => void;

/** A tiny observable store; panels subscribe and render from the state. */
export class Store {
  private listeners: Listener[] = [];
  constructor(public state: State) {}

  subscribe(fn: Listener): void {
    this.listeners.push(fn);
  }

  update(patch: Partial<State>): void {
    const previous = this.state;
    this.state = { ...previous, ...patch };
    history.replaceState(null, '', toHash(this.state));
    for (const fn of this.listeners) fn(this.state, previous);
  }
}
