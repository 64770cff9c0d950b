// One row per quantizable layer: a weight-bits and an activation-bits slider with their values,
// and the layer's share of the model's BOPs. The first layer has no activation slider: its
// input is the image plus Gaussian noise, which is never quantized (32-bit float in BOPs).
import { FLOAT_BITS, MAX_BITS, MIN_BITS } from '../bits/policy';
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

function slider(layer: LayerInfo, index: number, kind: BitsKind, on: LayerHandlers): HTMLInputElement {
  const input = document.createElement('input');
  input.type = 'range';
  input.min = String(MIN_BITS);
  input.max = String(MAX_BITS);
  input.step = '1';
  input.id = `bits-${kind === 'weightBits' ? 'w' : 'a'}-${index}`;
  input.setAttribute('aria-label', `${layer.name} ${kind === 'weightBits' ? 'weight' : 'activation'} bits`);
  input.addEventListener('input', () => on.change(index, kind, Number(input.value)));
  input.addEventListener('focus', () => on.focus(index));
  return input;
}

export class BitsLayers {
  private rows: Row[] = [];

  constructor(private body: HTMLTableSectionElement, private on: LayerHandlers) {}

  /** Builds the rows for a model's layers. */
  setLayers(layers: LayerInfo[]): void {
    this.rows = layers.map((layer, i) => {
      const tr = document.createElement('tr');
      tr.dataset.layer = String(i);
      tr.dataset.macs = String(layer.macs);
      const name = document.createElement('th');
      name.scope = 'row';
      name.textContent = layer.name;
      const cell = (kind: BitsKind) => {
        const td = document.createElement('td');
        const input = slider(layer, i, kind, this.on);
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
        tr.append(name, w.td, input, share);
        return { tr, share, sliders: { weightBits: w.input }, values: { weightBits: w.out } };
      }
      const a = cell('actBits');
      tr.append(name, w.td, a.td, share);
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
