// Keeps the latest certification runs in localStorage (keyed by dataset, σ and settings) so
// that a reload shows them again. Storage is best effort: when it is full or disabled, runs
// simply are not kept.
import { runKey, runModel, type CertifyRun } from './run';

const PREFIX = 'bitsmooth:certify:';
const INDEX = `${PREFIX}index`; // keys, most recent last
const KEEP = 8;

function readIndex(): string[] {
  try {
    const v: unknown = JSON.parse(localStorage.getItem(INDEX) ?? '[]');
    return Array.isArray(v) ? v.filter((k): k is string => typeof k === 'string') : [];
  } catch {
    return [];
  }
}

export function saveRun(run: CertifyRun): void {
  const key = PREFIX + runKey(run.dataset, run.sigma, run.settings, runModel(run));
  const index = readIndex().filter((k) => k !== key);
  index.push(key);
  try {
    for (const old of index.splice(0, Math.max(0, index.length - KEEP))) localStorage.removeItem(old);
    localStorage.setItem(key, JSON.stringify(run));
    localStorage.setItem(INDEX, JSON.stringify(index));
  } catch {
    // quota exceeded or storage disabled: the run stays on screen, only not across reloads
  }
}

/** The stored run for `key` (see runKey), or null if there is none or it is unreadable. */
export function loadRun(key: string): CertifyRun | null {
  try {
    const v: unknown = JSON.parse(localStorage.getItem(PREFIX + key) ?? 'null');
    return isRun(v) ? v : null;
  } catch {
    return null;
  }
}

/** Enough of a shape check that an older or edited entry cannot break the panel. */
function isRun(v: unknown): v is CertifyRun {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Partial<CertifyRun>;
  return (
    typeof r.dataset === 'string' &&
    typeof r.sigma === 'string' &&
    typeof r.settings === 'object' &&
    Array.isArray(r.rows) &&
    r.rows.every((row) => typeof row?.idx === 'number' && typeof row.radius === 'number' && typeof row.nA === 'number') &&
    typeof r.elapsed === 'number'
  );
}
