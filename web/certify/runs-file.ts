// Every kept run as one JSON file, and back: export writes the runs exactly as the page keeps
// them, so that importing the file and exporting again gives the same file.
import { isRun } from './storage';
import type { CertifyRun } from './run';

const FORMAT = 'bitsmooth-certify-runs';
const VERSION = 1;

/** `{ format, version, runs }`, the runs in the order given. */
export function runsJson(runs: readonly CertifyRun[]): string {
  return JSON.stringify({ format: FORMAT, version: VERSION, runs }, null, 2);
}

/** The runs of a file written by runsJson; entries that are not runs are counted in `skipped`.
 * Throws an Error that says what is wrong with a file of another kind. */
export function parseRunsJson(text: string): { runs: CertifyRun[]; skipped: number } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error('the file is not JSON');
  }
  const file = v as { format?: unknown; version?: unknown; runs?: unknown };
  if (typeof v !== 'object' || v === null || file.format !== FORMAT || !Array.isArray(file.runs)) {
    throw new Error(`the file is not a list of runs exported by this page ("Export all runs": format "${FORMAT}")`);
  }
  if (file.version !== VERSION) throw new Error(`the file has version ${String(file.version)}; this page reads version ${VERSION}`);
  const runs = file.runs.filter(isRun);
  return { runs, skipped: file.runs.length - runs.length };
}
