// A certification run as data: what was certified, with which settings, and the rows so far.
// The panels render it, storage keeps it, export writes it out.
import {
  DATASETS,
  type CertifiedImage,
  type DatasetName,
  type IncrementalImage,
  type ModelKind,
  type ModelVariant,
  type Policy,
  type Sigma,
} from '../types';
import { DEFAULT_STATE, type CertifyState } from '../state';
import { isStored, policyFull, policyLabel, policyName, policyShort } from '../bits/policy';

export type RunStatus = 'running' | 'completed' | 'cancelled' | 'error';

/** The settings that determine a run's rows (the worker count only changes its speed). */
export type RunSettings = Omit<CertifyState, 'workers'>;

/** A row of a full certification or of an incremental one. */
export type RunRow = CertifiedImage | IncrementalImage;

export function isIncremental(row: RunRow): row is IncrementalImage {
  return 'path' in row;
}

export interface CertifyRun {
  dataset: DatasetName;
  sigma: Sigma;
  settings: RunSettings;
  /** What the model file was; absent in runs stored before int8 models: float. */
  kind?: ModelKind;
  /** The certified model's bit policy; null (or absent in runs stored before policies): the
   * stored model (float for a float model, w8a8 for an int8 one). */
  policy?: Policy | null;
  /** IRS's n_χ when the run certified incrementally against the stored model, else null. */
  nChi?: number | null;
  /** 'float': the run certified the float model the shipped int8 model was trained from
   * (`models/float/`), for comparison; 'multibit': the multi-bit model (`models/multibit/`)
   * the page loaded instead of the supernet; null or absent: the supernet (or, for runs stored
   * before supernets, the model the page loaded then). */
  variant?: ModelVariant | null;
  workers: number;
  /** Where it ran, e.g. "WebGPU · SwiftShader (fallback adapter)" or "CPU · 4 workers"; absent
   * in runs kept before WebGPU (the CPU workers). Each row also says where it was certified. */
  ranOn?: string;
  /** Set when the GPU failed mid-run and the CPU workers finished the run. */
  fallback?: { after: number; reason: string };
  /** Rows in index order. */
  rows: RunRow[];
  status: RunStatus;
  /** Wall-clock seconds from the start to the latest row (or the end). */
  elapsed: number;
  /** When the run started, ISO 8601. */
  started: string;
}

export function runSettings(s: CertifyState): RunSettings {
  return { n0: s.n0, n: s.n, alpha: s.alpha, count: s.count, seed: s.seed };
}

/** What a run certifies beyond the settings: the model file (the loaded one, or the float one it
 * was trained from) and its kind, the policy and whether incrementally. */
export interface RunModel {
  kind: ModelKind;
  policy: Policy | null;
  nChi: number | null;
  variant: ModelVariant | null;
}

/** The float model an int8 model was trained from, certified unquantized for comparison. */
export const FLOAT_ORIGIN: RunModel = { kind: 'float', policy: null, nChi: null, variant: 'float' };

/** Label and title of FLOAT_ORIGIN's runs: never "" like the runs of a float model loaded as the
 * page's model (stored before int8 models), so neither their keys nor their legends collide. */
const FLOAT_ORIGIN_LABEL = 'float-before-int8';
const FLOAT_ORIGIN_TITLE = 'float (before int8 training)';

/** Short and file-name safe: "w4a4 IRS n_χ=100", "w4a4", "w8a8" (an int8 model as stored),
 * "float-before-int8" (the float model an int8 model was trained from), or "" for an
 * unquantized float model loaded as the page's model (as runs were named before policies). */
export function modelLabel(m: RunModel): string {
  if (m.variant === 'float') return FLOAT_ORIGIN_LABEL;
  if (m.kind === 'float' && !m.policy) return '';
  const name = `${m.variant === 'multibit' ? 'multibit-' : ''}${policyName(m.policy, m.kind)}`;
  return m.nChi === null ? name : `${name} IRS n_χ=${m.nChi}`;
}

/** For legends and the run's status line: like modelLabel, but a mixed policy reads "mixed (avg
 * w5.5 a7.4)" (modelPolicy gives its widths), and it says when it is the stored model, e.g.
 * "w8a8 (stored int8)", or the float model it was trained from, "float (before int8 training)". */
export function modelTitle(m: RunModel): string {
  if (m.variant === 'float') return FLOAT_ORIGIN_TITLE;
  if (m.kind === 'float' && !m.policy) return '';
  const of = m.variant === 'multibit' ? ' of the multi-bit model' : '';
  if (m.nChi === null && isStored(m.policy, m.kind)) return `${policyLabel(m.policy, m.kind)}${of}`;
  const name = `${policyShort(m.policy, m.kind)}${of}`;
  return m.nChi === null ? name : `${name} IRS n_χ=${m.nChi}`;
}

/** A mixed policy's widths per layer (for a tooltip), "" otherwise. */
export function modelPolicy(m: RunModel): string {
  return m.variant === 'float' ? '' : policyFull(m.policy, m.kind);
}

/** Identifies runs that give the same rows (same model file kind, policy, data and settings).
 * A float model's keys stay as they were before int8 models (and its unquantized runs' as before
 * policies); another kind's keys name it, and an int8 model's null policy and w8a8 share one;
 * the float model an int8 model was trained from ends in its own label, "/float-before-int8". */
export function runKey(dataset: DatasetName, sigma: Sigma, s: RunSettings, m: RunModel): string {
  const kind = m.kind === 'float' ? '' : `/${m.kind}`;
  const label = modelLabel(m);
  return `${dataset}/${sigma}${kind}/n0=${s.n0}/n=${s.n}/alpha=${s.alpha}/count=${s.count}/seed=${s.seed}${label ? `/${label}` : ''}`;
}

/** The kind, policy, IRS setting and model file of a run (stored runs may predate them). */
export function runModel(run: CertifyRun): RunModel {
  return { kind: run.kind ?? 'float', policy: run.policy ?? null, nChi: run.nChi ?? null, variant: run.variant ?? null };
}

/** How many images a run covers: those it certified once it ended ("13 of 100 images,
 * cancelled" when it stopped early), those it asks for while it runs. */
function imagesOf(run: CertifyRun): string {
  const asked = run.settings.count;
  if (run.status === 'running') return `${asked} images`;
  if (run.status === 'completed') return `${run.rows.length} images`;
  return `${run.rows.length} of ${asked} images, ${run.status === 'error' ? 'failed' : run.status}`;
}

/** A short name for legends, e.g. "MNIST σ=0.25 w4a4 IRS n_χ=100, n=1000, seed 0 (100 images)",
 * "MNIST σ=0.25 w8a8 (stored int8), n=1000, seed 0 (13 of 100 images, cancelled)" or "MNIST
 * σ=0.25 float (before int8 training), n=1000, seed 0 (100 images)". */
export function runLabel(run: CertifyRun): string {
  const s = run.settings;
  const extra = [
    s.n0 !== DEFAULT_STATE.n0 ? `, n0=${s.n0}` : '',
    s.alpha !== DEFAULT_STATE.alpha ? `, α=${s.alpha}` : '',
  ].join('');
  const model = modelTitle(runModel(run));
  return `${DATASETS[run.dataset].label} σ=${run.sigma}${model ? ` ${model}` : ''}, n=${s.n}${extra}, seed ${s.seed} (${imagesOf(run)})`;
}

/** Inserts a row keeping index order (workers finish out of order). */
export function addRow(run: CertifyRun, row: RunRow): number {
  let at = run.rows.length;
  while (at > 0 && run.rows[at - 1]!.idx > row.idx) at--;
  run.rows.splice(at, 0, row);
  return at;
}
