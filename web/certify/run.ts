// A certification run as data: what was certified, with which settings, and the rows so far.
// The panels render it, storage keeps it, export writes it out.
import { DATASETS, type CertifiedImage, type DatasetName, type IncrementalImage, type Policy, type Sigma } from '../types';
import { DEFAULT_STATE, type CertifyState } from '../state';
import { policyName } from '../bits/policy';

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
  /** The certified model's bit policy; null (or absent in runs stored before policies): float. */
  policy?: Policy | null;
  /** IRS's n_χ when the run certified incrementally against the float model, else null. */
  nChi?: number | null;
  workers: number;
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

/** What a run certifies beyond the settings: the policy and whether incrementally. */
export interface RunModel {
  policy: Policy | null;
  nChi: number | null;
}

/** "w4a4 IRS n_χ=100", "w4a4", or "" for the float model. */
export function modelLabel(m: RunModel): string {
  if (!m.policy) return '';
  return m.nChi === null ? policyName(m.policy) : `${policyName(m.policy)} IRS n_χ=${m.nChi}`;
}

/** Identifies runs that give the same rows (same model, policy, data and settings). */
export function runKey(dataset: DatasetName, sigma: Sigma, s: RunSettings, m: RunModel): string {
  const model = m.policy ? `/${modelLabel(m)}` : ''; // float keys stay as before policies
  return `${dataset}/${sigma}/n0=${s.n0}/n=${s.n}/alpha=${s.alpha}/count=${s.count}/seed=${s.seed}${model}`;
}

/** The policy and IRS setting of a run (stored runs may predate them). */
export function runModel(run: CertifyRun): RunModel {
  return { policy: run.policy ?? null, nChi: run.nChi ?? null };
}

/** A short name for legends, e.g. "MNIST σ=0.25 w4a4 IRS n_χ=100, n=1000, seed 0 (100 images)". */
export function runLabel(run: CertifyRun): string {
  const s = run.settings;
  const extra = [
    s.n0 !== DEFAULT_STATE.n0 ? `, n0=${s.n0}` : '',
    s.alpha !== DEFAULT_STATE.alpha ? `, α=${s.alpha}` : '',
  ].join('');
  const model = modelLabel(runModel(run));
  return `${DATASETS[run.dataset].label} σ=${run.sigma}${model ? ` ${model}` : ''}, n=${s.n}${extra}, seed ${s.seed} (${s.count} images)`;
}

/** Inserts a row keeping index order (workers finish out of order). */
export function addRow(run: CertifyRun, row: RunRow): number {
  let at = run.rows.length;
  while (at > 0 && run.rows[at - 1]!.idx > row.idx) at--;
  run.rows.splice(at, 0, row);
  return at;
}
