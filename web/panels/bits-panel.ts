// The "Bits" panel: run-time mixed precision. Presets, one slider for all layers and two per
// layer set the policy; totals (BOPs, weight size) follow at once, and after a short pause the
// policy goes to the store (the URL), where the page applies it and reclassifies the grid.
// The histogram shows the selected layer's integer weights at its bits beside the 8-bit master.
// A null policy is the stored model: w8a8 for an int8 model (its w8a8 preset is pressed), the
// float model for a float one (which alone has a Float preset).
import {
  allowedWidths,
  effectivePolicy,
  LAYERS,
  MAX_BITS,
  PRESET_BITS,
  policyFull,
  policyLabel,
  policyName,
  samePolicy,
  uniform,
} from '../bits/policy';
import type { Store } from '../state';
import type { LayerInfo, ModelInfo, ModelKind, Policy, PolicyCost, WeightHistogram } from '../types';
import { BitsCost, floatCost } from './bits-cost';
import { BitsHistogram } from './bits-histogram';
import { bitsIntro } from './bits-intro';
import { whatHtml } from './what';
import { BitsLayers, widthOf, widthRange, type BitsKind } from './bits-layers';

/** Slider moves within this many ms become one policy change (one reclassification). */
const DEBOUNCE_MS = 40;

/** The engine calls the panel makes itself (on the page's grid worker). */
export interface BitsEngine {
  policyCost(policy: Policy): Promise<PolicyCost>;
  weightHistogram(layer: number, bits: number): Promise<WeightHistogram>;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class BitsPanel {
  private presets: HTMLButtonElement[];
  private global: HTMLInputElement;
  private globalValue: HTMLOutputElement;
  private accuracy: HTMLElement;
  private layerSelect: HTMLSelectElement;
  private layers: BitsLayers;
  private cost: BitsCost;
  private histogram: BitsHistogram;
  private model: LayerInfo[] = [];
  /** What the loaded model is; decides what a null policy means. */
  private kind: ModelKind = 'int8';
  private intro: HTMLElement;
  /** The policy the controls show; the store catches up after DEBOUNCE_MS. */
  private draft: Policy | null;
  private timer: number | undefined;
  /** The policy the page last applied; undefined while it applies one (or none yet). */
  private lastApplied: Policy | null | undefined;
  /** Latest cost and histogram requests: older answers are dropped. */
  private costRequest = 0;
  private histRequest = 0;

  constructor(
    private root: HTMLElement,
    private store: Store,
    private engine: BitsEngine,
    private onError: (message: string) => void,
  ) {
    root.innerHTML = `
      <h2>Bits: run-time mixed precision</h2>
      ${whatHtml('bits')}
      <p id="bits-intro" class="muted">${bitsIntro(null)}</p>
      <div class="controls" role="group" aria-label="presets">
        <button type="button" data-preset="float" hidden>Float</button>
        ${PRESET_BITS.map((b) => `<button type="button" data-preset="${b}">w${b}a${b}</button>`).join('')}
        <label>All layers <input id="bits-global" type="range" min="2" max="8" step="1" aria-label="bits of all layers" />
          <output id="bits-global-value" for="bits-global"></output></label>
      </div>
      <div id="bits-cost" class="bits-cost" aria-live="polite"></div>
      <p id="bits-accuracy" class="accuracy" aria-live="polite"></p>
      <div class="table-scroll">
        <table id="bits-layers" class="bits-layers">
          <thead><tr><th>layer</th><th>weight bits</th><th>activation bits</th><th>share of BOPs</th><th><abbr title="Hessian trace of the loss with respect to the layer's weights: the larger, the more the layer's precision matters">Hessian trace</abbr></th></tr></thead>
          <tbody></tbody>
        </table>
      </div>
      <div class="controls">
        <label>Weight histogram of <select id="bits-hist-layer"></select></label>
      </div>
      <div id="bits-histogram" class="bits-histogram"></div>`;
    this.intro = root.querySelector('#bits-intro')!;
    this.presets = [...root.querySelectorAll<HTMLButtonElement>('[data-preset]')];
    this.global = root.querySelector('#bits-global')!;
    this.globalValue = root.querySelector('#bits-global-value')!;
    this.accuracy = root.querySelector('#bits-accuracy')!;
    this.layerSelect = root.querySelector('#bits-hist-layer')!;
    this.cost = new BitsCost(root.querySelector('#bits-cost')!);
    this.histogram = new BitsHistogram(root.querySelector('#bits-histogram')!);
    this.layers = new BitsLayers(root.querySelector('#bits-layers tbody')!, {
      change: (layer, kind, bits) => this.setLayer(layer, kind, bits),
      focus: (layer) => this.selectLayer(layer),
    });
    for (const b of this.presets) {
      b.addEventListener('click', () => {
        const p = b.dataset.preset!;
        const policy = p === 'float' ? null : uniform(Number(p));
        // the stored model is the null policy: the link stays without w=…&a=…
        this.edit(policy && samePolicy(policy, effectivePolicy(null, this.kind)) ? null : policy, 0);
      });
    }
    this.global.addEventListener('input', () => this.edit(uniform(widthOf(this.global))));
    // the histogram's layer is part of the link
    this.layerSelect.addEventListener('change', () => store.update({ layer: Number(this.layerSelect.value) }));
    this.draft = store.state.policy;
    store.subscribe((s, prev) => {
      if (s.layer !== prev.layer && this.layerSelect.value !== String(s.layer)) {
        this.layerSelect.value = String(s.layer);
      }
      if (s.layer !== prev.layer) void this.showHistogram();
      // a link or the back button changed the policy: the controls follow
      if (this.timer === undefined && !samePolicy(s.policy, this.draft)) {
        this.draft = s.policy;
        this.render();
      }
    });
    root.dataset.status = 'loading';
  }

  /** A model was loaded: one row per layer; the presets and intro follow its kind. */
  setModel(model: ModelInfo): void {
    this.model = model.layers;
    this.kind = model.kind;
    this.intro.textContent = bitsIntro(model);
    for (const b of this.presets) {
      const preset = b.dataset.preset!;
      if (preset === 'float') b.hidden = model.kind !== 'float';
      else b.textContent = `w${preset}a${preset}${samePolicy(uniform(Number(preset)), effectivePolicy(null, model.kind)) ? ' (stored)' : ''}`;
    }
    const allowed = allowedWidths(model);
    this.layers.setLayers(model.layers, model.hessianTraces, allowed);
    widthRange(this.global, allowed);
    this.layerSelect.replaceChildren(
      ...model.layers.map((l, i) => Object.assign(document.createElement('option'), { value: String(i), textContent: l.name })),
    );
    this.layerSelect.value = String(Math.min(this.store.state.layer, model.layers.length - 1));
    this.render();
  }

  /** The first `done` of `total` images are classified at `policy`, `correct` of them rightly:
   * the accuracy so far, while the rest follow (not yet `data-accuracy`, which is final). */
  interim(policy: Policy | null, correct: number, done: number, total: number): void {
    if (!samePolicy(policy, this.draft)) return;
    this.accuracy.textContent = `Accuracy at ${policyLabel(policy, this.kind)}: ${((100 * correct) / done).toFixed(1)} % so far (${done.toLocaleString('en')} of ${total.toLocaleString('en')} images)`;
  }

  /** The page applied `policy` and classified the grid with it. */
  applied(policy: Policy | null, accuracy: number): void {
    this.lastApplied = policy;
    this.accuracy.dataset.accuracy = String(accuracy);
    this.accuracy.textContent = `Accuracy at ${policyLabel(policy, this.kind)}: ${(100 * accuracy).toFixed(1)} % on the shipped test images`;
    // a mixed policy's label is its mean widths: the widths per layer are in the tooltip
    const full = policyFull(policy, this.kind);
    if (full) this.accuracy.title = full;
    else this.accuracy.removeAttribute('title');
    if (samePolicy(policy, this.draft) && this.timer === undefined) {
      this.root.dataset.policy = policyName(policy, this.kind);
      this.root.dataset.status = 'ready';
    }
  }

  /** The page is applying a policy (or failed to). */
  busy(error = false): void {
    this.lastApplied = undefined;
    this.root.dataset.status = error ? 'error' : 'busy';
  }

  private setLayer(layer: number, kind: BitsKind, bits: number): void {
    const from = effectivePolicy(this.draft, this.kind) ?? uniform(MAX_BITS);
    const next = { weightBits: [...from.weightBits], actBits: [...from.actBits] };
    next[kind][layer] = bits;
    this.selectLayer(layer);
    this.edit(next);
  }

  private selectLayer(layer: number): void {
    if (this.store.state.layer === layer) return;
    this.layerSelect.value = String(layer);
    this.store.update({ layer });
  }

  /** The visitor changed the policy: show it now, send it to the store after a pause. */
  /** Shows `policy` at once and applies it after `delay` ms (a slider dragged through several
   * widths applies only where it stops; a preset applies at once). */
  private edit(policy: Policy | null, delay = DEBOUNCE_MS): void {
    this.draft = policy;
    this.root.dataset.status = 'pending';
    this.render();
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => {
      this.timer = undefined;
      const unchanged = samePolicy(this.draft, this.store.state.policy);
      this.store.update({ policy: this.draft });
      // the page reapplies only a changed policy: one it already runs (a pressed preset pressed
      // again, a slider moved and back) is ready now
      if (unchanged && this.lastApplied !== undefined && samePolicy(this.draft, this.lastApplied)) {
        this.root.dataset.policy = policyName(this.draft, this.kind);
        this.root.dataset.status = 'ready';
      }
    }, delay);
  }

  private render(): void {
    // what runs: an int8 model's null policy is w8a8 and shows as such
    const p = effectivePolicy(this.draft, this.kind);
    const name = policyName(this.draft, this.kind);
    for (const b of this.presets) {
      const preset = b.dataset.preset === 'float' ? 'float' : `w${b.dataset.preset}a${b.dataset.preset}`;
      b.setAttribute('aria-pressed', String(preset === name));
    }
    const bits = p ? [...p.weightBits, ...p.actBits] : [];
    const same = bits.every((b) => b === bits[0]);
    // a mixed policy parks the All-layers thumb at the mean width and says "mixed": moving it
    // makes every layer that width
    const mean = bits.length ? Math.round(bits.reduce((a, b) => a + b, 0) / bits.length) : MAX_BITS;
    if (document.activeElement !== this.global) this.global.value = String(p && same ? bits[0] : mean);
    this.global.dataset.mixed = String(Boolean(p) && !same);
    this.global.setAttribute('aria-valuetext', !p ? 'float (32 bits)' : same ? `${bits[0]} bits` : `mixed: ${policyLabel(this.draft, this.kind)}`);
    this.globalValue.value = !p ? 'float' : same ? `${bits[0]} bit` : 'mixed';
    this.layers.show(p);
    void this.showCost();
    void this.showHistogram();
  }

  private async showCost(): Promise<void> {
    if (this.model.length !== LAYERS) return;
    const float = floatCost(this.model);
    const policy = effectivePolicy(this.draft, this.kind);
    const id = ++this.costRequest;
    try {
      const cost = policy ? await this.engine.policyCost(policy) : float;
      if (id !== this.costRequest) return;
      this.cost.show(cost, float);
      this.layers.showCost(cost);
    } catch (e) {
      this.onError(`Could not compute the cost of ${policyName(this.draft, this.kind)}: ${message(e)}`);
    }
  }

  private async showHistogram(): Promise<void> {
    const layer = Number(this.layerSelect.value);
    const info = this.model[layer];
    if (!info) return;
    const policy = effectivePolicy(this.draft, this.kind);
    const bits = policy ? policy.weightBits[layer]! : MAX_BITS;
    const id = ++this.histRequest;
    this.histogram.pending();
    try {
      const h = await this.engine.weightHistogram(layer, bits);
      if (id === this.histRequest) this.histogram.show(info.name, h);
    } catch (e) {
      if (id !== this.histRequest) return;
      this.histogram.pending(true);
      this.onError(`Could not draw the weight histogram of ${info.name}: ${message(e)}`);
    }
  }
}
