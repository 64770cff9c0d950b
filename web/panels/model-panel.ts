// Choose the dataset and the σ model; show what the model is (layers, MACs, how it was trained).
import { DATASETS, SIGMAS, type DatasetName, type Loaded, type Sigma } from '../types';
import type { Store } from '../state';

export class ModelPanel {
  private dataset: HTMLSelectElement;
  private sigma: HTMLSelectElement;
  private info: HTMLElement;

  constructor(root: HTMLElement, private store: Store) {
    root.innerHTML = `
      <h2>Model</h2>
      <div class="controls">
        <label>Dataset
          <select id="dataset">${Object.entries(DATASETS)
            .map(([k, v]) => `<option value="${k}">${v.label}</option>`)
            .join('')}</select>
        </label>
        <label>Noise σ of the model
          <select id="sigma">${SIGMAS.map((s) => `<option value="${s}">σ = ${s}</option>`).join('')}</select>
        </label>
      </div>
      <div id="model-info" class="model-info"></div>`;
    this.dataset = root.querySelector('#dataset')!;
    this.sigma = root.querySelector('#sigma')!;
    this.info = root.querySelector('#model-info')!;
    this.dataset.addEventListener('change', () =>
      store.update({ dataset: this.dataset.value as DatasetName, page: 0, selected: 0 }),
    );
    this.sigma.addEventListener('change', () => store.update({ sigma: this.sigma.value as Sigma }));
    this.render();
    store.subscribe(() => this.render());
  }

  render(): void {
    this.dataset.value = this.store.state.dataset;
    this.sigma.value = this.store.state.sigma;
  }

  show(loaded: Loaded | null): void {
    if (!loaded) {
      this.info.textContent = '';
      return;
    }
    const m = loaded.model;
    const fmt = (n: number) => n.toLocaleString('en');
    const trainAcc = m.accuracy['float'];
    const training = (m.training ?? {}) as { command?: string; seconds?: number };
    this.info.innerHTML = `
      <p><b>${m.arch}</b>: ${fmt(m.macs)} multiply-accumulates per image, ${fmt(m.weights)} weights in
      ${m.layers.length} quantizable layers. Trained on ${DATASETS[m.dataset as DatasetName]?.label ?? m.dataset}
      with Gaussian noise σ = ${m.sigma}${trainAcc !== undefined ? `; clean accuracy on the full test set ${(100 * trainAcc).toFixed(2)} %` : ''}.</p>
      <details><summary>Layers</summary>
        <table class="layers"><thead><tr><th>layer</th><th>kind</th><th>in→out</th><th>kernel/stride</th><th>output</th><th>weights</th><th>MACs</th></tr></thead>
        <tbody>${m.layers
          .map(
            (l) =>
              `<tr><td>${l.name}</td><td>${l.kind}</td><td>${l.in_channels}→${l.out_channels}</td><td>${l.kernel}/${l.stride}</td><td>${l.out_hw[0]}×${l.out_hw[1]}</td><td>${fmt(l.weights)}</td><td>${fmt(l.macs)}</td></tr>`,
          )
          .join('')}</tbody></table>
        ${training.command ? `<p class="muted">Reproduce: <code>bitsmooth ${training.command}</code></p>` : ''}
      </details>`;
  }
}
