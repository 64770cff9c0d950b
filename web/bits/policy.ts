// Bit policies as data: presets, names for legends, and the `w=…&a=…` link form. A null policy
// is the stored model: w8a8 for an int8 (multi-bit) model, the float model for a float one.
import type { ModelInfo, ModelKind, Policy } from '../types';

/** Quantizable layers of the shipped CNN (stem, two residual blocks of three, fc). */
export const LAYERS = 8;
export const MIN_BITS = 2;
export const MAX_BITS = 8;
/** What float weights and activations count as in BOPs and size (the 32-bit reference). */
export const FLOAT_BITS = 32;

export const PRESET_BITS = [8, 6, 4, 2] as const;

/** The widths a layer may take on this model, ascending: a supernet's trained widths (it
 * refuses the others), else every width 2..8 (Double Rounding derives any of them). */
export function allowedWidths(model: Pick<ModelInfo, 'kind' | 'bits' | 'supernet'>): number[] {
  if (model.kind === 'int8' && model.supernet && model.bits.length > 0) return [...model.bits].sort((a, b) => a - b);
  return Array.from({ length: MAX_BITS - MIN_BITS + 1 }, (_, i) => MIN_BITS + i);
}

/** The allowed width nearest to `bits` (a tie goes to the wider one). */
export function snapWidth(bits: number, allowed: number[]): number {
  let best = allowed[0]!;
  // ascending, so that of two equally near widths the later (wider) one stays
  for (const a of allowed) if (Math.abs(a - bits) <= Math.abs(best - bits)) best = a;
  return best;
}

/** `p` with every width moved to the nearest allowed one. */
export function snapPolicy(p: Policy, allowed: number[]): Policy {
  return { weightBits: p.weightBits.map((b) => snapWidth(b, allowed)), actBits: p.actBits.map((b) => snapWidth(b, allowed)) };
}

/** A range input's step over `allowed`: their common spacing when evenly spaced (8, 6, 4, 2
 * → 2, so the slider stops only on them), else 1 (the value is snapped on input). */
export function sliderStep(allowed: number[]): number {
  if (allowed.length < 2) return 1;
  const step = allowed[1]! - allowed[0]!;
  return allowed.every((b, i) => b === allowed[0]! + i * step) ? step : 1;
}

/** Every layer at `bits` for weights and activations. */
export function uniform(bits: number): Policy {
  return { weightBits: Array<number>(LAYERS).fill(bits), actBits: Array<number>(LAYERS).fill(bits) };
}

/** The policy a model runs at when none is set: w8a8 for an int8 model; null (no quantization)
 * for a float model, and for an export (its one policy is fixed in the file). */
export function storedPolicy(kind: ModelKind): Policy | null {
  return kind === 'int8' ? uniform(MAX_BITS) : null;
}

/** The policy that really runs: `p`, or the stored model's when `p` is null. */
export function effectivePolicy(p: Policy | null, kind: ModelKind): Policy | null {
  return p ?? storedPolicy(kind);
}

/** "w4a4" when uniform, else "w8,6,4,…a8,8,…" — short enough for a legend. Null is the stored
 * model: "w8a8" for an int8 model, "float" for a float one, "export" for an export. */
export function policyName(p: Policy | null, kind: ModelKind): string {
  const q = effectivePolicy(p, kind);
  if (!q) return kind === 'export' ? 'export' : 'float';
  const same = (xs: number[]) => xs.every((x) => x === xs[0]);
  const part = (xs: number[]) => (same(xs) ? String(xs[0]) : xs.join(','));
  return `w${part(q.weightBits)}a${part(q.actBits)}`;
}

/** Whether every layer has the same weight width and the same activation width. */
export function isUniform(p: Policy): boolean {
  const same = (xs: number[]) => xs.every((x) => x === xs[0]);
  return same(p.weightBits) && same(p.actBits);
}

/** Mean of a list of widths, one decimal: "5.5". */
function mean(xs: number[]): string {
  return (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(1);
}

/** For people, short: like policyName, but a mixed policy reads "mixed (avg w5.5 a7.4)" (plain
 * means over the layers); policyFull gives its widths. */
export function policyShort(p: Policy | null, kind: ModelKind): string {
  const q = effectivePolicy(p, kind);
  if (!q || isUniform(q)) return policyName(p, kind);
  return `mixed (avg w${mean(q.weightBits)} a${mean(q.actBits)})`;
}

/** Every layer's widths, for a tooltip: "w8,4,8,8,8,8,8,4 a8,8,8,4,8,8,8,8" ("" when uniform:
 * the short name says it all). */
export function policyFull(p: Policy | null, kind: ModelKind): string {
  const q = effectivePolicy(p, kind);
  if (!q || isUniform(q)) return '';
  return `w${q.weightBits.join(',')} a${q.actBits.join(',')}`;
}

/** Whether `p` runs the stored model itself (nothing derived from it to compare against). */
export function isStored(p: Policy | null, kind: ModelKind): boolean {
  return p === null || policyName(p, kind) === policyName(null, kind);
}

/** For people: like policyShort, and says when it is the stored model, e.g. "w8a8 (stored
 * int8)", "w4a4" or "mixed (avg w5.5 a7.4)". */
export function policyLabel(p: Policy | null, kind: ModelKind): string {
  if (!isStored(p, kind)) return policyShort(p, kind);
  if (kind === 'int8') return `${policyName(null, kind)} (stored int8)`;
  return kind === 'export' ? 'stored export' : 'float';
}

/** The same lists (null only equals null): what the store and the URL hold. */
export function samePolicy(a: Policy | null, b: Policy | null): boolean {
  if (!a || !b) return a === b;
  const eq = (x: number[], y: number[]) => x.length === y.length && x.every((v, i) => v === y[i]);
  return eq(a.weightBits, b.weightBits) && eq(a.actBits, b.actBits);
}

/** A list of LAYERS widths in MIN_BITS..=MAX_BITS from link text, or null. */
export function parseBits(text: string): number[] | null {
  const parts = text.split(',');
  if (parts.length !== LAYERS || !parts.every((t) => /^\d$/.test(t))) return null;
  const bits = parts.map(Number);
  return bits.every((b) => b >= MIN_BITS && b <= MAX_BITS) ? bits : null;
}
