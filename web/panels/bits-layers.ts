// One row per quantizable layer: a weight-bits and an activation-bits slider with their values,
// the layer's share of the model's BOPs and, when the model stores them, its Hessian trace as a
// bar (how sensitive the loss is to that layer's weights: the layers to keep wide). The first
// layer has no activation slider: its input is the image plus Gaussian noise, which is never
// quantized (32-bit float in BOPs).
import { FLOAT_BITS, MAX_BITS, MIN_BITS, sliderStep, snapWidth } from '../bits/policy';
import type { LayerInfo, Policy, PolicyCost } from '../types';

export type BitsKind = 'weightBits' | 'actBits';

export interface LayerHandlers {
  /** A slider moved. */
  change(layer: number, kind: BitsKind, bits: number): void;
  /** A slider got focus (the histogram follows it). */
  focus(layer: number): void;
}

interface Row {
  /** The first layer's row has no actBits slider (its input stays float). */
  sliders: Partial<Record<BitsKind, HTMLInputElement>>;
  values: Partial<Record<BitsKind, HTMLOutputElement>>;
  share: HTMLTableCellElement;
  tr: HTMLTableRowElement;
}

/** What every trace bar is drawn against: the largest trace and the mean of all layers'. */
interface TraceScale {
  max: number;
  mean: number;
}

function traceScale(traces: number[] | null | undefined): TraceScale | null {
  if (!traces?.length) return null;
  // scaled to the largest trace; a negative one (Hutchinson's estimate of a trace near zero or
  // of a non-convex layer) shows its value with an empty bar
  return { max: Math.max(...traces, Number.MIN_VALUE), mean: traces.reduce((a, b) => a + b, 0) / traces.length };
}

/** The Hessian-trace cell: a bar scaled to the largest trace, the value, and whether the trace
 * is at or above the mean (a sensitive layer, in the supernet's and the ILPs' sense). */
function traceCell(t: number | undefined, scale: TraceScale | null): HTMLTableCellElement {
  const td = document.createElement('td');
  td.className = 'trace';
  if (!scale || t === undefined || !Number.isFinite(t)) {
    td.textContent = '–';
    td.title = 'This model file stores no Hessian traces';
    return td;
  }
  const { max, mean } = scale;
  const sensitive = t >= mean;
  const bar = document.createElement('span');
  bar.className = `trace-bar${sensitive ? ' sensitive' : ''}`;
  bar.style.width = `${(100 * Math.max(0, t)) / max}%`;
  const track = document.createElement('span');
  track.className = 'trace-track';
  track.append(bar);
  const value = document.createElement('span');
  value.className = 'trace-value';
  value.textContent = `${t.toPrecision(3)}${sensitive ? ' sensitive' : ''}`;
  td.dataset.trace = String(t);
  td.dataset.sensitive = String(sensitive);
  td.title = `Hessian trace ${t.toPrecision(4)} (mean of all layers ${mean.toPrecision(4)})`;
  td.append(track, value);
  return td;
}

/** A range input over the allowed widths: it stops on them (evenly spaced) or snaps to them. */
export function widthRange(input: HTMLInputElement, allowed: number[]): void {
  input.min = String(allowed[0] ?? MIN_BITS);
  input.max = String(allowed[allowed.length - 1] ?? MAX_BITS);
  input.step = String(sliderStep(allowed));
  input.dataset.allowed = allowed.join(',');
}

/** A range input's value as an allowed width. */
export function widthOf(input: HTMLInputElement): number {
  const allowed = (input.dataset.allowed ?? '').split(',').filter(Boolean).map(Number);
  return allowed.length ? snapWidth(Number(input.value), allowed) : Number(input.value);
}

function slider(layer: LayerInfo, index: number, kind: BitsKind, on: LayerHandlers, allowed: number[]): HTMLInputElement {
  const input = document.createElement('input');
  input.type = 'range';
  widthRange(input, allowed);
  input.id = `bits-${kind === 'weightBits' ? 'w' : 'a'}-${index}`;
  input.setAttribute('aria-label', `${layer.name} ${kind === 'weightBits' ? 'weight' : 'activation'} bits`);
  input.addEventListener('input', () => on.change(index, kind, widthOf(input)));
  input.addEventListener('focus', () => on.focus(index));
  return input;
}

export class BitsLayers {
  private rows: Row[] = [];

  constructor(private body: HTMLTableSectionElement, private on: LayerHandlers) {}

  /** Builds the rows for a model's layers, with their Hessian traces when known; the sliders
   * offer the `allowed` widths only. */
  setLayers(layers: LayerInfo[], traces: number[] | null | undefined, allowed: number[]): void {
    const scale = traceScale(traces);
    this.rows = layers.map((layer, i) => {
      const tr = document.createElement('tr');
      tr.dataset.layer = String(i);
      tr.dataset.macs = String(layer.macs);
      const name = document.createElement('th');
      name.scope = 'row';
      name.textContent = layer.name;
      const cell = (kind: BitsKind) => {
        const td = document.createElement('td');
        const input = slider(layer, i, kind, this.on, allowed);
        const out = document.createElement('output');
        out.htmlFor.add(input.id);
        td.append(input, out);
        return { td, input, out };
      };
      const w = cell('weightBits');
      const share = document.createElement('td');
      share.className = 'num';
      if (i === 0) {
        const input = document.createElement('td');
        input.id = 'bits-a-0';
        input.className = 'muted';
        input.dataset.bits = String(FLOAT_BITS);
        input.textContent = `${FLOAT_BITS}-bit float: the image + noise, not quantized`;
        tr.append(name, w.td, input, share, traceCell(traces?.[i], scale));
        return { tr, share, sliders: { weightBits: w.input }, values: { weightBits: w.out } };
      }
      const a = cell('actBits');
      tr.append(name, w.td, a.td, share, traceCell(traces?.[i], scale));
      return { tr, share, sliders: { weightBits: w.input, actBits: a.input }, values: { weightBits: w.out, actBits: a.out } };
    });
    this.body.replaceChildren(...this.rows.map((r) => r.tr));
  }

  /** Shows the policy that runs (null: a float model unquantized, sliders parked at 8 and
   * labelled "float"). */
  show(policy: Policy | null): void {
    this.rows.forEach((row, i) => {
      for (const kind of ['weightBits', 'actBits'] as const) {
        const slider = row.sliders[kind];
        const value = row.values[kind];
        if (!slider || !value) continue;
        const bits = policy ? policy[kind][i]! : MAX_BITS;
        // leave a slider being dragged alone: it already shows its value
        if (document.activeElement !== slider) slider.value = String(bits);
        value.value = policy ? `${bits} bit` : 'float';
        slider.setAttribute('aria-valuetext', policy ? `${bits} bits` : 'float (32 bits)');
      }
    });
  }

  /** Each layer's share of the total BOPs. */
  showCost(cost: PolicyCost): void {
    this.rows.forEach((row, i) => {
      const l = cost.layers[i];
      if (!l) return;
      row.tr.dataset.bops = String(l.bops);
      row.share.textContent = `${((100 * l.bops) / cost.bops).toFixed(1)} %`;
    });
  }
}
