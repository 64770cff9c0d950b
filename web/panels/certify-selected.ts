// One image certified on its own: the smoothed prediction (or abstention), radius, p_A, the
// class counts of the n noisy draws, and a few of those noisy copies, so that a visitor sees
// what the noise level σ does to an image.
import { DATASETS, type CertifiedImage, type DatasetName } from '../types';
import { grayCanvas } from './gray-canvas';

type SelectedStatus = 'idle' | 'running' | 'done' | 'cancelled' | 'error';

export class SelectedCertifyView {
  private heading: HTMLElement;
  private noisy: HTMLElement;
  private result: HTMLElement;
  private counts: HTMLElement;

  constructor(private root: HTMLElement) {
    root.innerHTML = `
      <p id="selected-heading" aria-live="polite" class="muted">Select an image in the grid, then certify it alone to see its noisy copies and class counts.</p>
      <div id="selected-noisy" class="noisy" aria-label="noisy copies"></div>
      <div id="selected-result" class="selected-result" aria-live="polite"></div>
      <ol id="selected-counts" class="counts" aria-label="class counts"></ol>`;
    this.heading = root.querySelector('#selected-heading')!;
    this.noisy = root.querySelector('#selected-noisy')!;
    this.result = root.querySelector('#selected-result')!;
    this.counts = root.querySelector('#selected-counts')!;
    root.dataset.status = 'idle';
  }

  begin(index: number, sigma: string, seed: number): void {
    this.root.dataset.status = 'running';
    this.heading.textContent = `Image ${index} under Gaussian noise σ = ${sigma} (seed ${seed}): the first noisy copies CERTIFY draws.`;
    this.noisy.replaceChildren();
    this.result.replaceChildren();
    this.counts.replaceChildren();
  }

  /** Noisy copies, 28×28 bytes each. */
  showNoisy(pixels: Uint8Array, count: number): void {
    this.noisy.replaceChildren(...Array.from({ length: count }, (_, i) => grayCanvas(pixels, i)));
  }

  showResult(row: CertifiedImage, dataset: DatasetName): void {
    const names = DATASETS[dataset].classes;
    const name = (c: number) => names[c] ?? String(c);
    const verdict =
      row.predict === null
        ? `abstains (the top class ${name(row.cHat)} is not likely enough: p_A ≥ ${row.pA.toFixed(4)} < 0.5)`
        : `predicts ${name(row.predict)} ${row.correct ? '(correct)' : `(wrong: the label is ${name(row.label)})`}`;
    this.result.dataset.radius = String(row.radius);
    const p = document.createElement('p');
    p.innerHTML = `The smoothed classifier <b></b>. Certified radius <b id="selected-radius">${row.radius.toFixed(3)}</b>
      (ℓ₂, with probability ≥ 1 − α); p_A ≥ ${row.pA.toFixed(4)} from n_A = ${row.nA.toLocaleString('en')} of n = ${row.n.toLocaleString('en')}; ${row.time.toFixed(2)} s
      on ${row.backend === 'webgpu' ? 'WebGPU' : 'the CPU'}.`;
    this.result.dataset.backend = row.backend ?? 'cpu';
    p.querySelector('b')!.textContent = verdict;
    this.result.replaceChildren(p);
    const max = Math.max(1, ...row.counts);
    this.counts.replaceChildren(
      ...row.counts.map((c, k) => {
        const li = document.createElement('li');
        if (k === row.cHat) li.className = 'top';
        const label = document.createElement('span');
        label.textContent = name(k);
        const track = document.createElement('span');
        track.className = 'track';
        const bar = document.createElement('span');
        bar.className = 'bar';
        bar.style.width = `${(100 * c) / max}%`;
        track.append(bar);
        const value = document.createElement('span');
        value.textContent = c.toLocaleString('en');
        li.append(label, track, value);
        return li;
      }),
    );
  }

  end(status: SelectedStatus): void {
    this.root.dataset.status = status;
  }
}
