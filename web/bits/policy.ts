// Bit policies as data: presets, names for legends, and the `w=…&a=…` link form.
import type { Policy } from '../types';

/** Quantizable layers of the shipped CNN (stem, two residual blocks of three, fc). */
export const LAYERS = 8;
export const MIN_BITS = 2;
export const MAX_BITS = 8;
/** What float weights and activations count as in BOPs and size. */
export const FLOAT_BITS = 32;

export const PRESET_BITS = [8, 6, 4, 2] as const;

/** Every layer at `bits` for weights and activations. */
export function uniform(bits: number): Policy {
  return { weightBits: Array<number>(LAYERS).fill(bits), actBits: Array<number>(LAYERS).fill(bits) };
}

/** "float", "w4a4" when uniform, else "w8,6,4,…a8,8,…" — short enough for a legend. */
export function policyName(p: Policy | null): string {
  if (!p) return 'float';
  const same = (xs: number[]) => xs.every((x) => x === xs[0]);
  const part = (xs: number[]) => (same(xs) ? String(xs[0]) : xs.join(','));
  return `w${part(p.weightBits)}a${part(p.actBits)}`;
}

export function samePolicy(a: Policy | null, b: Policy | null): boolean {
  return policyName(a) === policyName(b);
}

/** A list of LAYERS widths in MIN_BITS..=MAX_BITS from link text, or null. */
export function parseBits(text: string): number[] | null {
  const parts = text.split(',');
  if (parts.length !== LAYERS || !parts.every((t) => /^\d$/.test(t))) return null;
  const bits = parts.map(Number);
  return bits.every((b) => b >= MIN_BITS && b <= MAX_BITS) ? bits : null;
}
