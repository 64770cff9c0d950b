// Choose the dataset, the σ model and which int8 model (supernet or multi-bit); show what it is (kind, trained widths and their
// accuracy, layers, MACs, how it was trained).
import { DATASETS, SIGMAS, TRAININGS, type DatasetName, type Loaded, type Sigma, type Training } from '../types';
import { modelInfoHtml } from './model-info';
import type { Store } from '../state';
import { whatHtml } from './what';

export class ModelPanel {
  private dataset: HTMLSelectElement;
  private sigma: HTMLSelectElement;
  private training: HTMLSelectElement;
  private info: HTMLElement;

  constructor(root: HTMLElement, private store: Store) {
    root.innerHTML = `
      <h2>Model</h2>
      ${whatHtml('model')}
      <div class="controls">
        <label>Dataset
          <select id="dataset">${Object.entries(DATASETS)
            .map(([k, v]) => `<option value="${k}">${v.label}</option>`)
            .join('')}</select>
        </label>
        <label>Noise σ of the model
          <select id="sigma">${SIGMAS.map((s) => `<option value="${s}">σ = ${s}</option>`).join('')}</select>
        </label>
        <label>Int8 model
          <select id="training">${Object.entries(TRAININGS)
            .map(([k, v]) => `<option value="${k}">${v.label}</option>`)
            .join('')}</select>
        </label>
      </div>
      <div id="model-info" class="model-info"></div>`;
    this.dataset = root.querySelector('#dataset')!;
    this.sigma = root.querySelector('#sigma')!;
    this.training = root.querySelector('#training')!;
    this.info = root.querySelector('#model-info')!;
    this.dataset.addEventListener('change', () =>
      store.update({ dataset: this.dataset.value as DatasetName, page: 0, selected: 0 }),
    );
    this.sigma.addEventListener('change', () => store.update({ sigma: this.sigma.value as Sigma }));
    this.training.addEventListener('change', () => store.update({ training: this.training.value as Training }));
    this.render();
    store.subscribe(() => this.render());
  }

  render(): void {
    this.dataset.value = this.store.state.dataset;
    this.sigma.value = this.store.state.sigma;
    this.training.value = this.store.state.training;
  }

  show(loaded: Loaded | null): void {
    if (!loaded) {
      this.info.textContent = '';
      return;
    }
    this.info.innerHTML = modelInfoHtml(loaded.model);
  }
}
