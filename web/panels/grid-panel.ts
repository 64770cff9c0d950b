// The grid of test images with the model's prediction for each; wrong ones are marked.
// The grid is a listbox with one Tab stop (a roving tabindex): arrow keys, Home and End move
// the selection, click, Enter or Space select; the selection is announced. Tiles and pager stay
// in place across a selection or a page turn, so keyboard focus stays where the visitor was.
import { DATASETS, type Classification, type DatasetName } from '../types';
import type { Store } from '../state';
import { download } from '../download';
import { grayCanvas } from './gray-canvas';
import { whatHtml } from './what';

export const PAGE_SIZE = 100;

export class GridPanel {
  private summary: HTMLElement;
  private grid: HTMLElement;
  private announce: HTMLElement;
  private prev: HTMLButtonElement;
  private next: HTMLButtonElement;
  private pageLabel: HTMLElement;
  private filter: HTMLSelectElement;
  private result: Classification | null = null;
  private pixels: Uint8Array | null = null;
  /** Tiles of the page on show, by image index. */
  private tiles = new Map<number, HTMLElement>();

  constructor(root: HTMLElement, private store: Store) {
    root.innerHTML = `
      <h2>Predictions on the shipped test images</h2>
      ${whatHtml('grid')}
      <p id="accuracy" class="accuracy" aria-live="polite">Loading…</p>
      <div class="controls">
        <label>Show
          <select id="filter"><option value="all">all images</option><option value="wrong">mistakes only</option></select>
        </label>
        <span id="pager" class="pager">
          <button id="page-prev" type="button">‹ Previous</button>
          <span id="page-label"></span>
          <button id="page-next" type="button">Next ›</button>
        </span>
        <button id="export-csv" type="button">Export CSV</button>
      </div>
      <p class="muted grid-help" id="grid-help">Tab to the grid, then use the arrow keys (Home, End) to select an image.</p>
      <div id="grid" class="grid" role="listbox" aria-label="shipped test images and their predictions" aria-describedby="grid-help"></div>
      <p id="grid-announce" class="visually-hidden" aria-live="polite"></p>`;
    this.summary = root.querySelector('#accuracy')!;
    this.grid = root.querySelector('#grid')!;
    this.announce = root.querySelector('#grid-announce')!;
    this.prev = root.querySelector('#page-prev')!;
    this.next = root.querySelector('#page-next')!;
    this.pageLabel = root.querySelector('#page-label')!;
    this.filter = root.querySelector('#filter')!;
    this.filter.addEventListener('change', () =>
      store.update({ filter: this.filter.value as 'all' | 'wrong', page: 0 }),
    );
    this.prev.addEventListener('click', () => this.turn(-1));
    this.next.addEventListener('click', () => this.turn(1));
    this.grid.addEventListener('keydown', (e) => this.key(e));
    this.grid.addEventListener('click', (e) => {
      const tile = (e.target as Element).closest<HTMLElement>('.tile');
      if (tile) this.select(Number(tile.dataset.index), true);
    });
    root.querySelector('#export-csv')!.addEventListener('click', () => this.exportCsv());
    store.subscribe((s, prev) => {
      if (s.page !== prev.page || s.filter !== prev.filter) this.render();
      else if (s.selected !== prev.selected) this.markSelected();
    });
  }

  /** New results (or null while loading). */
  show(result: Classification | null, pixels: Uint8Array | null): void {
    this.result = result;
    this.pixels = pixels;
    if (!result) {
      this.summary.textContent = 'Classifying…';
      this.summary.removeAttribute('data-accuracy');
      this.tiles.clear();
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

  /** "image 3: predicted 7, label 7". */
  private describe(i: number): string {
    const r = this.result!;
    const names = DATASETS[this.store.state.dataset as DatasetName].classes;
    return `image ${i}: predicted ${names[r.predictions[i]!]!}, label ${names[r.labels[i]!]!}`;
  }

  private render(): void {
    this.filter.value = this.store.state.filter;
    const r = this.result;
    const pixels = this.pixels;
    if (!r || !pixels) return;
    const focusedTile = this.grid.contains(document.activeElement);
    const items = this.visible();
    const pages = Math.max(1, Math.ceil(items.length / PAGE_SIZE));
    const page = Math.min(this.store.state.page, pages - 1);
    // a page past the last (a link, or fewer mistakes at a new policy): the link follows what
    // is shown; deferred so that the store's listeners of this change finish first
    if (page !== this.store.state.page) queueMicrotask(() => this.store.update({ page }));
    this.renderPager(page, pages, items.length);
    const names = DATASETS[this.store.state.dataset as DatasetName].classes;
    this.tiles.clear();
    const tiles = items.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE).map((i) => {
      const wrong = r.predictions[i] !== r.labels[i];
      const tile = document.createElement('div');
      tile.className = `tile${wrong ? ' wrong' : ''}`;
      tile.setAttribute('role', 'option');
      tile.tabIndex = -1;
      tile.dataset.index = String(i);
      tile.title = this.describe(i);
      tile.setAttribute('aria-label', tile.title);
      tile.append(grayCanvas(pixels, i));
      const caption = document.createElement('span');
      caption.className = 'caption';
      const pred = names[r.predictions[i]!]!;
      caption.textContent = wrong ? `✗ ${pred}` : pred;
      tile.append(caption);
      if (wrong) {
        const label = document.createElement('span');
        label.className = 'truth';
        label.textContent = `is ${names[r.labels[i]!]!}`;
        tile.append(label);
      }
      this.tiles.set(i, tile);
      return tile;
    });
    this.grid.replaceChildren(...tiles);
    if (tiles.length === 0) this.grid.textContent = 'No mistakes on these images.';
    this.markSelected();
    // the tile that had focus went with the page: focus its successor in the roving order
    if (focusedTile) this.rovingTile()?.focus();
  }

  /** The selected tile if it is on this page, else the first: the grid's one Tab stop. */
  private rovingTile(): HTMLElement | undefined {
    return this.tiles.get(this.store.state.selected) ?? this.tiles.values().next().value;
  }

  /** Marks the selection (aria-selected, the Tab stop) without rebuilding the tiles. */
  private markSelected(): void {
    const selected = this.store.state.selected;
    for (const [i, tile] of this.tiles) {
      const on = i === selected;
      tile.classList.toggle('selected', on);
      tile.setAttribute('aria-selected', String(on));
      tile.tabIndex = -1;
    }
    const roving = this.rovingTile();
    if (roving) roving.tabIndex = 0;
  }

  /** Selects image `i` (on this page) and keeps focus on its tile. */
  private select(i: number, focus: boolean): void {
    const tile = this.tiles.get(i);
    if (!tile) return;
    if (this.store.state.selected !== i) this.store.update({ selected: i });
    if (focus) tile.focus();
    this.announce.textContent = `Image ${i} selected: ${this.describe(i).replace(/^image \d+: /, '')}.`;
  }

  private key(e: KeyboardEvent): void {
    const order = [...this.tiles.keys()];
    if (order.length === 0) return;
    const current = Number((document.activeElement as HTMLElement | null)?.dataset.index ?? order[0]);
    const at = Math.max(0, order.indexOf(current));
    const first = this.tiles.get(order[0]!)!;
    // columns of the responsive grid: the tiles on the first row
    const columns = Math.max(1, order.filter((i) => this.tiles.get(i)!.offsetTop === first.offsetTop).length);
    const moves: Record<string, number> = {
      ArrowRight: at + 1,
      ArrowLeft: at - 1,
      ArrowDown: at + columns,
      ArrowUp: at - columns,
      Home: 0,
      End: order.length - 1,
    };
    if (e.key in moves) {
      e.preventDefault();
      const to = moves[e.key]!;
      if (to >= 0 && to < order.length) this.select(order[to]!, true);
    } else if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      this.select(current, true);
    }
  }

  /** Turns the page, keeping focus on the pager: on the button pressed, or on the other one
   * when the pressed one is now disabled (first or last page). */
  private turn(by: number): void {
    const pressed = by > 0 ? this.next : this.prev;
    const hadFocus = document.activeElement === pressed;
    this.store.update({ page: Math.max(0, this.store.state.page + by) });
    if (hadFocus && pressed.disabled) (by > 0 ? this.prev : this.next).focus();
  }

  private renderPager(page: number, pages: number, count: number): void {
    this.prev.disabled = page === 0;
    this.next.disabled = page >= pages - 1;
    this.pageLabel.textContent = ` page ${page + 1} of ${pages} (${count} images) `;
  }

  private exportCsv(): void {
    const r = this.result;
    if (!r) return;
    const rows = ['idx,label,predict,correct', ...r.predictions.map((p, i) => `${i},${r.labels[i]},${p},${p === r.labels[i] ? 1 : 0}`)];
    const { dataset, sigma } = this.store.state;
    download(`bitsmooth-${dataset}-sigma${sigma}-predictions.csv`, rows.join('\n') + '\n', 'text/csv');
  }
}
