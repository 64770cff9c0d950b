// Totals of a policy: BOPs and weight size, each against the standard reference of 32-bit float
// weights and activations (whatever the loaded model stores), as text and as data attributes
// the tests read.
import { FLOAT_BITS } from '../bits/policy';
import type { LayerInfo, PolicyCost } from '../types';

/** The cost of the model in 32-bit float, as the engine counts a float model: 32-bit weights
 * and activations. Known without asking the engine, so the reference shows at once. */
export function floatCost(layers: LayerInfo[]): PolicyCost {
  const per = layers.map((l) => ({
    macs: l.macs,
    weights: l.weights,
    weightBits: FLOAT_BITS,
    actBits: FLOAT_BITS,
    bops: l.macs * FLOAT_BITS * FLOAT_BITS,
    sizeBytes: (l.weights * FLOAT_BITS) / 8,
  }));
  return {
    policy: null,
    bops: per.reduce((t, l) => t + l.bops, 0),
    sizeBytes: per.reduce((t, l) => t + l.sizeBytes, 0),
    layers: per,
  };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en');
const times = (float: number, value: number) => {
  const r = float / value;
  return r === 1 ? 'same as 32-bit float' : `${r >= 10 ? r.toFixed(0) : r.toFixed(1)}× smaller than 32-bit float`;
};

export class BitsCost {
  private bops: HTMLElement;
  private size: HTMLElement;

  constructor(root: HTMLElement) {
    root.innerHTML = `
      <p><b>BOPs</b> <span id="bits-bops"></span></p>
      <p><b>Weights</b> <span id="bits-size"></span></p>`;
    this.bops = root.querySelector('#bits-bops')!;
    this.size = root.querySelector('#bits-size')!;
  }

  show(cost: PolicyCost, float: PolicyCost): void {
    this.bops.dataset.bops = String(cost.bops);
    this.bops.dataset.floatBops = String(float.bops);
    this.bops.textContent = `${fmt(cost.bops)} bit operations per image (${times(float.bops, cost.bops)})`;
    this.size.dataset.bytes = String(cost.sizeBytes);
    this.size.dataset.floatBytes = String(float.sizeBytes);
    this.size.textContent = `${fmt(cost.sizeBytes)} bytes (${times(float.sizeBytes, cost.sizeBytes)})`;
  }
}
