// IRS controls of the Certify panel: shown only for a policy other than the stored model, whose
// certification can reuse the stored model's (Ugare et al., 2024) — the float model's for a float
// model, the w8a8 one's for an int8 model. Both settings live in the store (the URL).
import { nChiOf, parseSetting, type State, type Store } from '../state';
import { isStored, policyName, policyShort } from '../bits/policy';
import type { ModelKind } from '../types';
import { maxRadius } from '../certify/normal';

/** The reference IRS certifies in full: what runs without a policy. */
function storedModel(kind: ModelKind): string {
  if (kind === 'int8') return `the stored int8 model at ${policyName(null, kind)}`;
  return kind === 'float' ? 'the float model' : 'the stored model';
}

export class CertifyIrsControls {
  private checkbox: HTMLInputElement;
  private nChi: HTMLInputElement;
  private note: HTMLElement;
  /** What limits an IRS radius, and what "path" and ζ mean. */
  private cap: HTMLElement;
  /** The loaded model's kind; null until one is loaded (IRS stays hidden). */
  private kind: ModelKind | null = null;

  /** `onValidity` runs when the n_χ field turns valid or invalid. */
  constructor(private root: HTMLElement, private store: Store, private onValidity: () => void) {
    root.innerHTML = `
      <div class="controls">
        <label><input id="certify-irs" type="checkbox" /> certify incrementally (IRS)</label>
        <label title="noisy samples replayed through the quantized model (default 10 % of n)">n_χ
          <input id="cert-nchi" type="number" min="1" step="1" aria-description="noisy samples replayed through the quantized model; default 10 % of n" />
        </label>
      </div>
      <p id="certify-irs-note" class="muted"></p>
      <p id="certify-irs-cap" class="muted"></p>`;
    this.checkbox = root.querySelector('#certify-irs')!;
    this.nChi = root.querySelector('#cert-nchi')!;
    this.note = root.querySelector('#certify-irs-note')!;
    this.cap = root.querySelector('#certify-irs-cap')!;
    this.checkbox.addEventListener('change', () => store.update({ irs: this.checkbox.checked }));
    this.nChi.addEventListener('change', () => this.readNChi());
    this.render(store.state);
    store.subscribe((s) => this.render(s));
  }

  /** A model was loaded (`kind`), or none is (null). */
  setKind(kind: ModelKind | null): void {
    this.kind = kind;
    this.render(this.store.state);
  }

  get valid(): boolean {
    return this.nChi.getAttribute('aria-invalid') !== 'true';
  }

  /** Whether the next run certifies incrementally. */
  active(s: State): boolean {
    return this.offered(s) && s.irs;
  }

  /** IRS needs a policy derived from the stored model, to compare with it. */
  private offered(s: State): boolean {
    return this.kind !== null && !isStored(s.policy, this.kind);
  }

  private readNChi(): void {
    const wasValid = this.valid;
    const text = this.nChi.value.trim();
    // an empty field means the default, 10 % of n
    const value = text === '' ? null : parseSetting('n', text);
    if (text !== '' && value === null) {
      this.nChi.setAttribute('aria-invalid', 'true');
    } else {
      this.nChi.removeAttribute('aria-invalid');
      this.store.update({ nChi: value });
    }
    if (wasValid !== this.valid) this.onValidity();
  }

  private render(s: State): void {
    const kind = this.kind;
    this.root.hidden = !this.offered(s);
    this.checkbox.checked = s.irs;
    this.nChi.disabled = !s.irs;
    if (this.valid && document.activeElement !== this.nChi) this.nChi.value = String(nChiOf(s));
    this.note.textContent =
      kind && this.offered(s)
        ? `The model runs at ${policyShort(s.policy, kind)}. IRS certifies ${storedModel(kind)} ` +
          'with n samples (once per image and settings, then cached) and bounds how often the ' +
          `${policyShort(s.policy, kind)} model disagrees with it on n_χ replayed samples.`
        : '';
    this.renderCap(s);
  }

  /** IRS results are easy to misread: its radius is capped by n_χ, not only by quantization. */
  private renderCap(s: State): void {
    const sigma = Number(s.sigma);
    const nChi = nChiOf(s);
    const irsCap = maxRadius(sigma, s.alpha, nChi);
    const fullCap = maxRadius(sigma, s.alpha, s.n);
    this.cap.dataset.cap = String(irsCap);
    this.cap.textContent =
      `With n_χ = ${nChi.toLocaleString('en')} samples IRS can certify at most r = σ·Φ⁻¹(α^(1/n_χ)) = ${irsCap.toFixed(3)} ` +
      `per image (full certification with n = ${s.n.toLocaleString('en')}: ${fullCap.toFixed(3)}), so part of a lower IRS ACR ` +
      'comes from this cap, not from quantization. Path "incremental": the stored model\'s bound p_A is lowered by ζ, an ' +
      'upper bound on how often the two models disagree on the replayed samples; path "full": p_A was so close to 1 that ' +
      'IRS certifies the policy afresh from n_χ samples.';
  }
}
