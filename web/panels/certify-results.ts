// The rows and summary of one certification run: a table (one row per image, in index
// order), ACR and certified accuracy at the reported radii, and CSV/JSON export.
import { DATASETS } from '../types';
import { acr, certifiedAccuracy, REPORT_RADII } from '../certify/metrics';
import { runCsv, runFileName, runJson } from '../certify/export';
import { isIncremental, modelPolicy, modelTitle, runModel, type CertifyRun } from '../certify/run';
import { policyName } from '../bits/policy';
import { irsTimes, referenceTime } from '../certify/irs-times';
import { download } from '../download';

/** What an IRS run's reference certificates came from: the float model or the stored w8a8 one. */
function referenceName(run: CertifyRun): string {
  const kind = runModel(run).kind;
  return kind === 'float' ? 'float model' : `stored ${policyName(null, kind)} model`;
}

export class CertifyResults {
  private info: HTMLElement;
  private summary: HTMLElement;
  private head: HTMLTableSectionElement;
  private body: HTMLTableSectionElement;
  private csv: HTMLButtonElement;
  private json: HTMLButtonElement;
  private run: CertifyRun | null = null;

  constructor(root: HTMLElement) {
    root.innerHTML = `
      <p id="certify-run-info" class="muted" aria-live="polite">No certification run yet.</p>
      <div id="certify-summary" class="cert-summary" aria-live="polite"></div>
      <div class="controls">
        <button id="certify-csv" type="button" disabled>Export CSV</button>
        <button id="certify-json" type="button" disabled>Export JSON</button>
      </div>
      <div class="table-scroll">
        <table id="certify-table" class="cert-table">
          <thead></thead>
          <tbody></tbody>
        </table>
      </div>`;
    this.info = root.querySelector('#certify-run-info')!;
    this.summary = root.querySelector('#certify-summary')!;
    this.head = root.querySelector('#certify-table thead')!;
    this.body = root.querySelector('#certify-table tbody')!;
    this.csv = root.querySelector('#certify-csv')!;
    this.json = root.querySelector('#certify-json')!;
    this.csv.addEventListener('click', () => this.export('csv'));
    this.json.addEventListener('click', () => this.export('json'));
  }

  /** Shows a run from scratch: a new one, or one restored from storage. */
  show(run: CertifyRun, restored: boolean): void {
    this.run = run;
    const columns = ['idx', 'label', 'prediction', 'radius', 'correct', 'nA / n', 'seconds', 'backend'];
    // an IRS run also shows how each image was certified and what the stored model's reference
    // cost ("float seconds" for a float model, "w8a8 seconds" for an int8 one)
    if (run.nChi) columns.push('path', 'ζ', `${policyName(null, runModel(run).kind)} seconds`);
    const tr = document.createElement('tr');
    const titles: Record<string, string> = {
      path: 'incremental: the stored model\'s p_A lowered by ζ; full: certified afresh from n_χ samples (p_A was close to 1)',
      ζ: 'upper bound on how often the policy and the stored model disagree (from the n_χ replayed samples)',
      backend: 'where the image was certified: the CPU workers (wasm) or WebGPU',
    };
    tr.append(...columns.map((c) => Object.assign(document.createElement('th'), { textContent: c, title: titles[c] ?? '' })));
    this.head.replaceChildren(tr);
    this.body.replaceChildren(...run.rows.map((_, i) => this.tableRow(run, i)));
    this.info.dataset.restored = String(restored);
    this.update();
  }

  /** Shows no run (the one shown was deleted). */
  clear(): void {
    this.run = null;
    this.info.textContent = 'No certification run yet.';
    this.info.dataset.restored = 'false';
    this.info.removeAttribute('title');
    this.summary.replaceChildren();
    this.summary.removeAttribute('data-acr');
    this.head.replaceChildren();
    this.body.replaceChildren();
    this.csv.disabled = this.json.disabled = true;
  }

  /** Row `at` of the shown run is new. */
  inserted(at: number): void {
    const run = this.run!;
    this.body.insertBefore(this.tableRow(run, at), this.body.children[at] ?? null);
  }

  /** Refreshes the run's status line, summary and export buttons. */
  update(): void {
    const run = this.run;
    if (!run) return;
    const restored = this.info.dataset.restored === 'true';
    const when = new Date(run.started).toLocaleString('en');
    const s = run.settings;
    const workers = run.ranOn ?? `${run.workers} worker${run.workers > 1 ? 's' : ''}`;
    const model = modelTitle(runModel(run));
    // a mixed policy's title is its mean widths: the widths per layer are in the tooltip
    const full = modelPolicy(runModel(run));
    if (full) this.info.title = full;
    else this.info.removeAttribute('title');
    this.info.textContent =
      `${DATASETS[run.dataset].label} σ=${run.sigma}${model ? ` ${model}` : ''}, n0=${s.n0}, n=${s.n}, α=${s.alpha}, seed ${s.seed}, ${workers}: ` +
      `${run.status}, ${run.rows.length} of ${s.count} requested images in ${run.elapsed.toFixed(1)} s` +
      (run.fallback ? ` The GPU failed after ${run.fallback.after} images (${run.fallback.reason}); the rest ran on the CPU workers.` : '') +
      (restored ? ` — restored from this browser's storage (run of ${when}).` : '.');
    this.info.dataset.backend = run.ranOn?.startsWith('WebGPU') ? 'webgpu' : 'cpu';
    this.info.dataset.fallback = String(Boolean(run.fallback));
    const rows = run.rows;
    this.csv.disabled = this.json.disabled = rows.length === 0;
    if (rows.length === 0) {
      this.summary.replaceChildren();
      this.summary.removeAttribute('data-acr');
      return;
    }
    const value = acr(rows);
    const accuracy = certifiedAccuracy(rows, REPORT_RADII);
    this.summary.dataset.acr = String(value);
    const times = irsTimes(rows);
    const timing = times
      ? `<p id="certify-irs-times" data-irs="${times.irs}" data-reference="${times.reference}" data-cached="${times.cached}">IRS ${times.irs.toFixed(2)} s vs full certification ${times.reference.toFixed(2)} s` +
        ` <span class="muted">(the ${referenceName(run)}'s CERTIFY${times.cached ? `; ${times.cached} reused from a worker's cache, counted with the time they took when first computed` : ''};` +
        ` ${times.incremental} of ${rows.length} images on the incremental path)</span></p>`
      : '';
    this.summary.innerHTML = `
      <p><b>ACR ${value.toFixed(3)}</b> <span class="muted">(average certified radius over ${rows.length} images; abstentions and mistakes count as 0)</span></p>${timing}
      <table class="cert-accuracy">
        <tr><th>radius r</th>${REPORT_RADII.map((r) => `<td>${r.toFixed(2)}</td>`).join('')}</tr>
        <tr><th>certified accuracy</th>${accuracy.map((a) => `<td>${(100 * a).toFixed(1)} %</td>`).join('')}</tr>
      </table>`;
  }

  private tableRow(run: CertifyRun, i: number): HTMLTableRowElement {
    const r = run.rows[i]!;
    const names = DATASETS[run.dataset].classes;
    const tr = document.createElement('tr');
    tr.dataset.idx = String(r.idx);
    tr.dataset.na = String(r.nA);
    if (!r.correct) tr.className = r.predict === null ? 'abstain' : 'wrong';
    const cells = [
      String(r.idx),
      names[r.label] ?? String(r.label),
      r.predict === null ? 'abstain' : (names[r.predict] ?? String(r.predict)),
      r.radius.toFixed(3),
      r.correct ? '✓' : '✗',
      `${r.nA.toLocaleString('en')} / ${r.n.toLocaleString('en')}`,
      r.time.toFixed(2),
      'backend' in r && r.backend === 'webgpu' ? 'WebGPU' : 'CPU',
    ];
    tr.dataset.backend = 'backend' in r && r.backend === 'webgpu' ? 'webgpu' : 'cpu';
    if (isIncremental(r)) {
      tr.dataset.path = r.path;
      cells.push(r.path, r.zeta === null ? '—' : r.zeta.toFixed(4), `${referenceTime(r).toFixed(2)}${r.referenceCached ? ' (cached)' : ''}`);
    }
    tr.append(
      ...cells.map((text) => {
        const td = document.createElement('td');
        td.textContent = text;
        return td;
      }),
    );
    return tr;
  }

  private export(kind: 'csv' | 'json'): void {
    const run = this.run;
    if (!run) return;
    if (kind === 'csv') download(`${runFileName(run)}.csv`, runCsv(run), 'text/csv');
    else download(`${runFileName(run)}.json`, runJson(run), 'application/json');
  }
}
