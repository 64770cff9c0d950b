// What IRS saved: its own time against certifying the stored model (float, or an int8 model at
// w8a8) from scratch, summed over a run's rows. A reference certificate reused from a worker's
// cache counts with the time it took when first computed (the page remembers it: see
// ReferenceTimes), so a rerun compares like with like.
import { isIncremental, type RunRow } from './run';
import type { IncrementalImage } from '../types';

export interface IrsTimes {
  /** Seconds IRS took (replayed samples through the quantized model). */
  irs: number;
  /** Seconds the stored model's full CERTIFY took, cached certificates at their first time. */
  reference: number;
  /** Rows whose reference certificate came from a worker's cache. */
  cached: number;
  /** Rows certified on the incremental path (the rest were recertified with n_χ samples). */
  incremental: number;
}

/** Seconds the row's reference certificate took to compute (in this call, or when first
 * computed if it came from the cache). */
export function referenceTime(r: IncrementalImage): number {
  return r.referenceCached ? r.reference.time : r.referenceSeconds;
}

/** Summed times of an IRS run's rows; null when no row is incremental. */
export function irsTimes(rows: readonly RunRow[]): IrsTimes | null {
  const irs = rows.filter(isIncremental);
  if (irs.length === 0) return null;
  return {
    irs: irs.reduce((t, r) => t + r.irsSeconds, 0),
    reference: irs.reduce((t, r) => t + referenceTime(r), 0),
    cached: irs.filter((r) => r.referenceCached).length,
    incremental: irs.filter((r) => r.path === 'incremental').length,
  };
}

/** Remembers how long each reference certificate took when a worker computed it, and gives a
 * row that reused it from the cache that time (as its `reference.time`). Keys: the pool's
 * affinity keys (model, settings, image). */
export class ReferenceTimes {
  private seconds = new Map<string, number>();

  /** Records or fills in `row`'s reference time. */
  attribute(key: string, row: IncrementalImage): void {
    if (!row.referenceCached) {
      this.seconds.set(key, row.referenceSeconds);
      return;
    }
    const first = this.seconds.get(key);
    if (first !== undefined) row.reference = { ...row.reference, time: first };
  }
}
