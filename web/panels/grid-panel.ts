// The grid of test images with the model's prediction for each; wrong ones are marked.
// Tiles are buttons: click or Enter selects an image for the panels that work on one image.
import { DATASETS, type Classification, type DatasetName } from '../types';
import type { Store } from '../state';
import { download } from '../download';
import { grayCanvas } from './gray-canvas';

export const PAGE_SIZE = 100;

export class GridPanel {
  private summary: HTMLElement;
  private grid: HTMLElement;
  private pager: HTMLElement;
  private filter: HTMLSelectElement;
  private result: Classification | null = null;
  private pixels: Uint8Array | null = null;

  constructor(root: HTMLElement, private store: Store) {
    root.innerHTML = `
      <h2>Predictions on the shipped test images</h2>
      <p id="accuracy" class="accuracy" aria-live="polite">Loading…</p>
      <div class="controls">
        <label>Show
          <select id="filter"><option value="all">all images</option><option value="wrong">mistakes only</option></select>
        </label>
        <span id="pager" class="pager"></span>
        <button id="export-csv" type="button">Export CSV</button>
      </div>
      <div id="grid" class="grid" role="list"></div>`;
    this.summary = root.querySelector('#accuracy')!;
    this.grid = root.querySelector('#grid')!;
    this.pager = root.querySelector('#pager')!;
    this.filter = root.querySelector('#filter')!;
    this.filter.addEventListener('change', () =>
      store.update({ filter: this.filter.value as 'all' | 'wrong', page: 0 }),
    );
    root.querySelector('#export-csv')!.addEventListener('click', () => this.exportCsv());
    store.subscribe((s, prev) => {
      if (s.page !== prev.page || s.filter !== prev.filter || s.selected !== prev.selected) this.render();
    });
  }

  /** New results (or null while loading). */
  show(result: Classification | null, pixels: Uint8Array | null): void {
    this.result = result;
    this.pixels = pixels;
    if (!result) {
      this.summary.textContent = 'Classifying…';
      this.summary.removeAttribute('data-accuracy');
      this.grid.replaceChildren();
      return;
    }
    const n = result.predictions.length;
    const acc = n ? result.correct / n : 0;
    this.summary.textContent = `Accuracy: ${(100 * acc).toFixed(1)} % (${result.correct.toLocaleString('en')} of ${n.toLocaleString('en')} test images correct)`;
    this.summary.dataset.accuracy = String(acc);
    this.render();
  }

  private visible(): number[] {
    if (!this.result) return [];
    const r = this.result;
    const all = r.predictions.map((_, i) => i);
    return this.store.state.filter === 'wrong' ? all.filter((i) => r.predictions[i] !== r.labels[i]) : all;
  }

  private render(): void {
    this.filter.value = this.store.state.filter;
    const r = this.result;
    const pixels = this.pixels;
    if (!r || !pixels) return;
    const items = this.visible();
    const pages = Math.max(1, Math.ceil(items.length / PAGE_SIZE));
    const page = Math.min(this.store.state.page, pages - 1);
    // a page past the last (a link, or fewer mistakes at a new policy): the link follows what
    // is shown; deferred so that the store's listeners of this change finish first
    if (page !== this.store.state.page) queueMicrotask(() => this.store.update({ page }));
    this.renderPager(page, pages, items.length);
    const names = DATASETS[this.store.state.dataset as DatasetName].classes;
    const tiles = items.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE).map((i) => {
      const wrong = r.predictions[i] !== r.labels[i];
      const tile = document.createElement('button');
      tile.type = 'button';
      tile.className = `tile${wrong ? ' wrong' : ''}${i === this.store.state.selected ? ' selected' : ''}`;
      tile.setAttribute('role', 'listitem');
      tile.dataset.index = String(i);
      const pred = names[r.predictions[i]!]!;
      const truth = names[r.labels[i]!]!;
      tile.title = `image ${i}: predicted ${pred}, label ${truth}`;
      tile.setAttribute('aria-label', tile.title);
      tile.append(grayCanvas(pixels, i));
      const caption = document.createElement('span');
      caption.className = 'caption';
      caption.textContent = wrong ? `✗ ${pred}` : pred;
      tile.append(caption);
      if (wrong) {
        const label = document.createElement('span');
        label.className = 'truth';
        label.textContent = `is ${truth}`;
        tile.append(label);
      }
      tile.addEventListener('click', () => this.store.update({ selected: i }));
      return tile;
    });
    this.grid.replaceChildren(...tiles);
    if (tiles.length === 0) this.grid.textContent = 'No mistakes on these images.';
  }

  private renderPager(page: number, pages: number, count: number): void {
    const prev = document.createElement('button');
    prev.type = 'button';
    prev.textContent = '‹ Previous';
    prev.disabled = page === 0;
    prev.addEventListener('click', () => this.store.update({ page: page - 1 }));
    const next = document.createElement('button');
    next.type = 'button';
    next.textContent = 'Next ›';
    next.disabled = page >= pages - 1;
    next.addEventListener('click', () => this.store.update({ page: page + 1 }));
    const label = document.createElement('span');
    label.textContent = ` page ${page + 1} of ${pages} (${count} images) `;
    this.pager.replaceChildren(prev, label, next);
  }

  private exportCsv(): void {
    const r = this.result;
    if (!r) return;
    const rows = ['idx,label,predict,correct', ...r.predictions.map((p, i) => `${i},${r.labels[i]},${p},${p === r.labels[i] ? 1 : 0}`)];
    const { dataset, sigma } = this.store.state;
    download(`bitsmooth-${dataset}-sigma${sigma}-predictions.csv`, rows.join('\n') + '\n', 'text/csv');
  }
}
