// Cohen et al.'s summary statistics of a certification run (the same definitions as
// crate/src/smoothing/metrics.rs).
import type { CertificationRow } from '../types';

/** Radii at which certified accuracy is reported. */
export const REPORT_RADII = [0, 0.25, 0.5, 0.75, 1.0] as const;

/** The radius a row earns: its certified radius if the prediction is correct; 0 for an
 * abstention or a wrong prediction. */
function earned(row: CertificationRow): number {
  return row.correct && row.predict !== null ? row.radius : 0;
}

/** Average certified radius over all rows (abstentions and mistakes count as 0). */
export function acr(rows: readonly CertificationRow[]): number {
  if (rows.length === 0) return 0;
  return rows.reduce((sum, r) => sum + earned(r), 0) / rows.length;
}

/** Certified accuracy at each radius in `radii`: the fraction of rows predicted correctly with
 * a certified radius ≥ r (at r = 0: accuracy of the smoothed classifier, abstentions wrong). */
export function certifiedAccuracy(rows: readonly CertificationRow[], radii: readonly number[]): number[] {
  if (rows.length === 0) return radii.map(() => 0);
  const certified = rows.filter((r) => r.correct && r.predict !== null).map((r) => r.radius);
  certified.sort((a, b) => a - b);
  return radii.map((r) => {
    // first certified radius ≥ r (binary search)
    let lo = 0;
    let hi = certified.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (certified[mid]! < r) lo = mid + 1;
      else hi = mid;
    }
    return (certified.length - lo) / rows.length;
  });
}
