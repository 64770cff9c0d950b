// What IRS saved: its own time against certifying the stored model (float, or an int8 model at
// w8a8) from scratch, summed over a run's rows.
import { isIncremental, type RunRow } from './run';

export interface IrsTimes {
  /** Seconds IRS took (replayed samples through the quantized model). */
  irs: number;
  /** Seconds the stored model's full CERTIFY took (cached certificates add nothing). */
  reference: number;
  /** Rows whose reference certificate came from a worker's cache. */
  cached: number;
  /** Rows certified on the incremental path (the rest were recertified with n_χ samples). */
  incremental: number;
}

/** Summed times of an IRS run's rows; null when no row is incremental. */
export function irsTimes(rows: readonly RunRow[]): IrsTimes | null {
  const irs = rows.filter(isIncremental);
  if (irs.length === 0) return null;
  return {
    irs: irs.reduce((t, r) => t + r.irsSeconds, 0),
    reference: irs.reduce((t, r) => t + r.referenceSeconds, 0),
    cached: irs.filter((r) => r.referenceCached).length,
    incremental: irs.filter((r) => r.path === 'incremental').length,
  };
}
