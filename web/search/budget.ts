// The budget slider's arithmetic: a fraction of the all-8-bit BOPs, what it buys, and which
// settings a search accepts (the engine checks them again; these give the message first).
import type { SearchMethod, SpaceInfo } from '../types';

/** BOPs of a budget fraction, as the engine rounds it (down). */
export function budgetBops(space: SpaceInfo, fraction: number): number {
  return Math.floor(space.maxBops * fraction);
}

/** The smallest fraction every policy of the space can meet (all unpinned layers at the
 * lowest width). */
export function minFraction(space: SpaceInfo): number {
  return space.minBops / space.maxBops;
}

/** The highest trained uniform width whose BOPs fit the budget, or null if none does. */
export function uniformWidth(space: SpaceInfo, bops: number): number | null {
  let best: number | null = null;
  space.bits.forEach((b, k) => {
    if (space.uniformBops[k]! <= bops && (best === null || b > best)) best = b;
  });
  return best;
}

/** Why a budget fraction is not usable, or null when it is. */
export function budgetError(space: SpaceInfo, fraction: number): string | null {
  const lo = minFraction(space);
  if (!Number.isFinite(fraction) || fraction <= 0 || fraction > 1 || budgetBops(space, fraction) < space.minBops) {
    return `The budget must be between ${lo.toFixed(3)} (every searchable layer at ${Math.min(...space.bits)} bits) and 1 (all 8 bits) of the 8-bit BOPs.`;
  }
  return null;
}

/** Whether a method runs episodes (the others evaluate a fixed set of policies). */
export function usesEpisodes(method: SearchMethod): boolean {
  return method === 'arq' || method === 'haq' || method === 'random';
}

/** Why a whole-number setting is not valid, or null. */
export function wholeError(name: string, value: number, min: number, max: number): string | null {
  return Number.isInteger(value) && value >= min && value <= max
    ? null
    : `${name} must be a whole number from ${min.toLocaleString('en')} to ${max.toLocaleString('en')}.`;
}
