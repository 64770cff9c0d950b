// Keeps every certification run in IndexedDB (keyed by runKey: a rerun with the same settings
// replaces its earlier run, whose rows it reproduces) so that a reload lists them all again.
// Runs kept by earlier versions in localStorage are read too. Storage is best effort: when it is
// unavailable, runs simply are not kept across reloads.
import { runKey, runModel, type CertifyRun } from './run';
import { DATASETS, SIGMAS } from '../types';

const DB_NAME = 'bitsmooth';
const STORE = 'runs';
const LEGACY_PREFIX = 'bitsmooth:certify:';
const LEGACY_INDEX = `${LEGACY_PREFIX}index`;

/** The key a run is kept under. */
export function storageKey(run: CertifyRun): string {
  return runKey(run.dataset, run.sigma, run.settings, runModel(run));
}

let db: Promise<IDBDatabase | null> | null = null;

function open(): Promise<IDBDatabase | null> {
  db ??= new Promise((resolve) => {
    try {
      const req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => resolve(null);
      req.onblocked = () => resolve(null);
    } catch {
      resolve(null);
    }
  });
  return db;
}

/**
 * Runs `fn` in one transaction; resolves with its request's result once the transaction has
 * committed (undefined on failure), so that a reload right after a save or a delete keeps it.
 */
async function request<T>(mode: IDBTransactionMode, fn: (store: IDBObjectStore) => IDBRequest<T>): Promise<T | undefined> {
  const d = await open();
  if (!d) return undefined;
  return new Promise((resolve) => {
    try {
      const tx = d.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => resolve(undefined);
      tx.onabort = () => resolve(undefined);
    } catch {
      resolve(undefined);
    }
  });
}

/** Keeps (or replaces) `run`. */
export async function saveRun(run: CertifyRun): Promise<void> {
  // a plain copy: the panel keeps mutating the live run while IndexedDB clones it
  await request('readwrite', (s) => s.put(JSON.parse(JSON.stringify(run)) as CertifyRun, storageKey(run)));
}

/** Forgets the run kept under `key`. */
export async function deleteRun(key: string): Promise<void> {
  await request('readwrite', (s) => s.delete(key));
  try {
    localStorage.removeItem(LEGACY_PREFIX + key);
  } catch {
    // storage disabled: nothing was kept there
  }
}

/** Every kept run (unreadable entries skipped), oldest first as far as known. */
export async function loadRuns(): Promise<CertifyRun[]> {
  const [keys, values] = await Promise.all([
    request('readonly', (s) => s.getAllKeys()),
    request('readonly', (s) => s.getAll()),
  ]);
  const runs = new Map<string, CertifyRun>();
  for (const run of legacyRuns()) runs.set(storageKey(run), run);
  (values ?? []).forEach((v, i) => {
    if (isRun(v)) runs.set(String(keys?.[i] ?? storageKey(v)), v);
  });
  return [...runs.values()].sort((a, b) => (a.started ?? '').localeCompare(b.started ?? ''));
}

/** Runs an earlier version kept in localStorage. */
function legacyRuns(): CertifyRun[] {
  try {
    const index: unknown = JSON.parse(localStorage.getItem(LEGACY_INDEX) ?? '[]');
    if (!Array.isArray(index)) return [];
    return index.flatMap((k) => {
      if (typeof k !== 'string') return [];
      const v: unknown = JSON.parse(localStorage.getItem(k) ?? 'null');
      return isRun(v) ? [v] : [];
    });
  } catch {
    return [];
  }
}

/** Enough of a shape check that an older, edited or imported entry cannot break the panel. */
export function isRun(v: unknown): v is CertifyRun {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Partial<CertifyRun>;
  return (
    typeof r.dataset === 'string' &&
    r.dataset in DATASETS &&
    typeof r.sigma === 'string' &&
    (SIGMAS as readonly string[]).includes(r.sigma) &&
    typeof r.settings === 'object' &&
    r.settings !== null &&
    Array.isArray(r.rows) &&
    r.rows.every((row) => typeof row?.idx === 'number' && typeof row.radius === 'number' && typeof row.nA === 'number') &&
    typeof r.elapsed === 'number'
  );
}
