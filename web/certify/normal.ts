// The standard normal quantile Φ⁻¹, for the radius bounds the page explains (the engine computes
// the certificates themselves). Acklam's rational approximation: relative error below 1.2·10⁻⁹.

const A = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
const B = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
const C = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
const D = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
const P_LOW = 0.02425;

/** Horner's rule: coefficients from the highest power down. */
function poly(cs: readonly number[], x: number): number {
  return cs.reduce((acc, c) => acc * x + c, 0);
}

/** Φ⁻¹(p) for p ∈ (0, 1); ±Infinity at 0 and 1, NaN outside. */
export function inverseNormalCdf(p: number): number {
  if (!(p >= 0 && p <= 1)) return NaN;
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  if (p < P_LOW) {
    const q = Math.sqrt(-2 * Math.log(p));
    return poly(C, q) / (poly(D, q) * q + 1);
  }
  if (p > 1 - P_LOW) return -inverseNormalCdf(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (poly(A, r) * q) / (poly(B, r) * r + 1);
}

/** The largest radius a certificate from `n` samples can give at failure probability α: all n
 * draws agreeing bound p_A by α^(1/n) (the one-sided Clopper–Pearson bound), so r ≤
 * σ·Φ⁻¹(α^(1/n)). IRS on n_χ samples is capped the same way: on its incremental path ζ is at
 * least 1 − α^(1/n_χ) even with no disagreement, on its full path it certifies from n_χ draws. */
export function maxRadius(sigma: number, alpha: number, n: number): number {
  return sigma * inverseNormalCdf(alpha ** (1 / n));
}
