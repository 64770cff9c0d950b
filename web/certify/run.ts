// A certification run as data: what was certified, with which settings, and the rows so far.
// The panels render it, storage keeps it, export writes it out.
import { DATASETS, type CertifiedImage, type DatasetName, type Sigma } from '../types';
import { DEFAULT_STATE, type CertifyState } from '../state';

export type RunStatus = 'running' | 'completed' | 'cancelled' | 'error';

/** The settings that determine a run's rows (the worker count only changes its speed). */
export type RunSettings = Omit<CertifyState, 'workers'>;

export interface CertifyRun {
  dataset: DatasetName;
  sigma: Sigma;
  settings: RunSettings;
  workers: number;
  /** Rows in index order. */
  rows: CertifiedImage[];
  status: RunStatus;
  /** Wall-clock seconds from the start to the latest row (or the end). */
  elapsed: number;
  /** When the run started, ISO 8601. */
  started: string;
}

export function runSettings(s: CertifyState): RunSettings {
  return { n0: s.n0, n: s.n, alpha: s.alpha, count: s.count, seed: s.seed };
}

/** Identifies runs that give the same rows (same model, data and settings). */
export function runKey(dataset: DatasetName, sigma: Sigma, s: RunSettings): string {
  return `${dataset}/${sigma}/n0=${s.n0}/n=${s.n}/alpha=${s.alpha}/count=${s.count}/seed=${s.seed}`;
}

/** A short name for legends, e.g. "MNIST σ=0.25, n=1000, seed 0 (100 images)". */
export function runLabel(run: CertifyRun): string {
  const s = run.settings;
  const extra = [
    s.n0 !== DEFAULT_STATE.n0 ? `, n0=${s.n0}` : '',
    s.alpha !== DEFAULT_STATE.alpha ? `, α=${s.alpha}` : '',
  ].join('');
  return `${DATASETS[run.dataset].label} σ=${run.sigma}, n=${s.n}${extra}, seed ${s.seed} (${s.count} images)`;
}

/** Inserts a row keeping index order (workers finish out of order). */
export function addRow(run: CertifyRun, row: CertifiedImage): number {
  let at = run.rows.length;
  while (at > 0 && run.rows[at - 1]!.idx > row.idx) at--;
  run.rows.splice(at, 0, row);
  return at;
}
