// Every kept certification run, whatever the current settings: what it certified, its ACR and
// certified accuracy at a few radii, its time; open one (its settings become the page's),
// delete one, export them all as JSON or import such a file.
import { acr, certifiedAccuracy } from '../certify/metrics';
import { modelPolicy, runLabel, runModel, type CertifyRun } from '../certify/run';

/** Radii of the list's certified-accuracy columns. */
const LIST_RADII = [0, 0.5, 1.0] as const;

export interface KeptRun {
  key: string;
  run: CertifyRun;
  restored: boolean;
}

export interface RunsHandlers {
  open(key: string): void;
  remove(key: string): void;
  exportAll(): void;
  importFile(file: File): void;
}

interface Row {
  tr: HTMLTableRowElement;
  cells: HTMLTableCellElement[];
  open: HTMLButtonElement;
  remove: HTMLButtonElement;
}

export class CertifyRunsList {
  private body: HTMLTableSectionElement;
  private count: HTMLElement;
  private exportButton: HTMLButtonElement;
  private rows = new Map<string, Row>();
  private ids = 0;

  constructor(root: HTMLElement, private on: RunsHandlers) {
    root.innerHTML = `
      <h3>Kept runs</h3>
      <p id="certify-runs-count" class="muted">Every run is kept in this browser until you delete it.</p>
      <div class="controls">
        <button id="certify-runs-export" type="button" disabled>Export all runs (JSON)</button>
        <label class="file-button">Import runs (JSON) <input id="certify-runs-import" type="file" accept="application/json,.json" /></label>
      </div>
      <div class="table-scroll">
        <table id="certify-runs" class="cert-table runs-table">
          <thead><tr><th>run</th><th>status</th><th>ACR</th>${LIST_RADII.map((r) => `<th>cert. acc. r=${r.toFixed(1)}</th>`).join('')}<th>seconds</th><th>started</th><th><span class="visually-hidden">actions</span></th></tr></thead>
          <tbody></tbody>
        </table>
      </div>`;
    this.body = root.querySelector('#certify-runs tbody')!;
    this.count = root.querySelector('#certify-runs-count')!;
    this.exportButton = root.querySelector('#certify-runs-export')!;
    this.exportButton.addEventListener('click', () => on.exportAll());
    const input = root.querySelector<HTMLInputElement>('#certify-runs-import')!;
    input.addEventListener('change', () => {
      const file = input.files?.[0];
      if (file) on.importFile(file);
      input.value = ''; // the same file can be imported again
    });
  }

  /** Shows `runs` (oldest first); rows are kept per key, so focus on a button stays. */
  show(runs: readonly KeptRun[]): void {
    const keys = new Set(runs.map((r) => r.key));
    for (const [key, row] of this.rows) {
      if (!keys.has(key)) {
        row.tr.remove();
        this.rows.delete(key);
      }
    }
    runs.forEach((k, i) => {
      let row = this.rows.get(k.key);
      if (!row) {
        row = this.row(k.key);
        this.rows.set(k.key, row);
      }
      this.fill(row, k);
      if (this.body.children[i] !== row.tr) this.body.insertBefore(row.tr, this.body.children[i] ?? null);
    });
    this.exportButton.disabled = runs.length === 0;
    this.count.textContent = runs.length
      ? `${runs.length} run${runs.length > 1 ? 's' : ''} kept in this browser (all datasets and settings; the plot shows those of the loaded model).`
      : 'No runs kept yet: every run is kept in this browser until you delete it.';
  }

  private row(key: string): Row {
    const tr = document.createElement('tr');
    tr.dataset.key = key;
    const cells = Array.from({ length: 5 + LIST_RADII.length }, () => document.createElement('td'));
    cells[0]!.className = 'run-name';
    // the buttons are described by the run's name (not named by it: "w4a4" stays the preset's name)
    cells[0]!.id = `certify-run-name-${++this.ids}`;
    const actions = document.createElement('td');
    const open = document.createElement('button');
    open.type = 'button';
    open.textContent = 'Open';
    open.addEventListener('click', () => this.on.open(key));
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.textContent = 'Delete';
    remove.className = 'delete-run';
    remove.addEventListener('click', () => this.on.remove(key));
    for (const b of [open, remove]) b.setAttribute('aria-describedby', cells[0]!.id);
    actions.append(open, ' ', remove);
    tr.append(...cells, actions);
    return { tr, cells, open, remove };
  }

  private fill(row: Row, { run, restored }: KeptRun): void {
    const rows = run.rows;
    const accuracy = certifiedAccuracy(rows, LIST_RADII);
    const label = `${runLabel(run)}${restored ? ' (restored)' : ''}`;
    const texts = [
      label,
      run.status,
      rows.length ? acr(rows).toFixed(3) : '—',
      ...accuracy.map((a) => (rows.length ? `${(100 * a).toFixed(1)} %` : '—')),
      // the time is comparable only with runs on the same backend: say when it was not the CPU
      `${run.elapsed.toFixed(1)}${run.ranOn?.startsWith('WebGPU') ? ` (${run.fallback ? 'WebGPU, then CPU' : 'WebGPU'})` : ''}`,
      new Date(run.started).toLocaleString('en'),
    ];
    texts.forEach((t, i) => {
      if (row.cells[i]!.textContent !== t) row.cells[i]!.textContent = t;
    });
    const full = modelPolicy(runModel(run));
    if (full) row.cells[0]!.title = full;
    row.remove.disabled = run.status === 'running';

  }
}
