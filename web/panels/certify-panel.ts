// The "Certify" panel: runs randomized-smoothing certification (Cohen et al.'s CERTIFY) on
// the first images of the test subset, or on the selected image alone, over a pool of
// workers; shows progress with an ETA, the rows, ACR, certified accuracy and its curve; keeps
// every run across reloads (the plot overlays those of the loaded dataset and σ). For an int8 model it also certifies, for comparison, the float model it
// was trained from. Settings live in the store (the URL); runs are plain data.
import type { Affinity, CertifyCall, CertifyPool, PoolTarget } from '../pool';
import { nChiOf, type State, type Store } from '../state';
import { TRAININGS, type CertifiedImage, type CertifySettings, type IncrementalImage, type ModelKind } from '../types';
import {
  addRow,
  FLOAT_ORIGIN,
  runKey,
  isIncremental,
  runLabel,
  runModel,
  runSettings,
  type CertifyRun,
  type RunModel,
  type RunRow,
  type RunStatus,
} from '../certify/run';
import { deleteRun, loadRuns, saveRun, storageKey } from '../certify/storage';
import { parseRunsJson, runsJson } from '../certify/runs-file';
import { download } from '../download';
import { CertifyRunsList } from './certify-runs';
import { whatHtml } from './what';
import { ReferenceTimes } from '../certify/irs-times';
import { CertifySettingsForm } from './certify-settings';
import { CertifyResults } from './certify-results';
import { CertifyPlot, type Curve } from './certify-plot';
import { SelectedCertifyView } from './certify-selected';
import { CertifyProgress } from './certify-progress';
import { CertifyIrsControls } from './certify-irs';
import { CertifyBackend, cpuBackend, type ResolvedBackend } from './certify-backend';
import type { StatusPanel } from './status';

/** Noisy copies per forward pass: large enough to amortise calls, small enough for progress. */
const BATCH = 100;
const NOISY_COPIES = 8;
const SAVE_EVERY_MS = 1000;
const FLOAT_HINT =
  'For comparison: certify, with the same settings, the float model this int8 model was trained from ' +
  '(unquantized, so the bit policy and IRS do not apply); its curve overlays the int8 runs.';

/** A run the panel knows: made on this page, or `restored` from the browser's storage. */
interface Kept {
  run: CertifyRun;
  restored: boolean;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class CertifyPanel {
  private form: CertifySettingsForm;
  private irs: CertifyIrsControls;
  private backend: CertifyBackend;
  private results: CertifyResults;
  private list: CertifyRunsList;
  private plot: CertifyPlot;
  private selectedView: SelectedCertifyView;
  private runButton: HTMLButtonElement;
  private floatButton: HTMLButtonElement;
  private selectedButton: HTMLButtonElement;
  private cancelButton: HTMLButtonElement;
  private progress: CertifyProgress;
  /** The run on display, and every known run by key (storage key), oldest first. */
  private run: CertifyRun | null = null;
  private runs = new Map<string, Kept>();
  private referenceTimes = new ReferenceTimes();
  private datasetSize: number | null = null;
  /** The loaded model's kind (runs are kept per kind); null until the page has loaded it. */
  private kind: ModelKind | null = null;
  private running = false;
  /** The run key (model, policy, settings) the panel last restored runs for. */
  private restoredFor: string | null = null;
  /** The button that started the running job: focus returns to it when the job ends. */
  private startedBy: HTMLButtonElement | null = null;
  private lastSave = 0;
  private redrawQueued = false;

  constructor(
    private root: HTMLElement,
    private store: Store,
    private pool: CertifyPool,
    private status: StatusPanel,
  ) {
    root.innerHTML = `
      <h2>Certify: randomized smoothing</h2>
      ${whatHtml('certify')}
      <p class="muted">CERTIFY (Cohen et al., 2019) adds Gaussian noise of the model's σ to each image: n0 noisy
        copies pick the top class, n fresh copies bound its probability p_A from below with confidence 1 − α, and
        the prediction provably cannot change within the ℓ₂ radius σ·Φ⁻¹(p_A). If p_A &lt; ½ it abstains.</p>
      <div id="certify-settings"></div>
      <div id="certify-irs-controls"></div>
      <div id="certify-backend-controls"></div>
      <div class="controls">
        <button id="certify-run" type="button">Certify</button>
        <button id="certify-float" type="button"
          title="${FLOAT_HINT}" aria-description="${FLOAT_HINT}">Certify the float model</button>
        <button id="certify-selected" type="button">Certify the selected image</button>
        <button id="certify-cancel" type="button" disabled>Cancel</button>
      </div>
      <div id="certify-status" class="status-row"></div>
      <div id="certify-selected-view" class="selected-view"></div>
      <div id="certify-plot" class="cert-plot" role="img" aria-label="certified accuracy against radius, one line per run"></div>
      <div id="certify-results"></div>
      <div id="certify-runs-list" class="runs-list"></div>`;
    this.form = new CertifySettingsForm(root.querySelector('#certify-settings')!, store, () => this.renderButtons());
    this.irs = new CertifyIrsControls(root.querySelector('#certify-irs-controls')!, store, () => this.renderButtons());
    this.backend = new CertifyBackend(root.querySelector('#certify-backend-controls')!, store, pool);
    this.results = new CertifyResults(root.querySelector('#certify-results')!);
    this.list = new CertifyRunsList(root.querySelector('#certify-runs-list')!, {
      open: (key) => this.openRun(key),
      remove: (key) => void this.removeRun(key),
      exportAll: () => this.exportRuns(),
      importFile: (file) => void this.importRuns(file),
    });
    this.plot = new CertifyPlot(root.querySelector('#certify-plot')!);
    this.selectedView = new SelectedCertifyView(root.querySelector('#certify-selected-view')!);
    this.runButton = root.querySelector('#certify-run')!;
    this.floatButton = root.querySelector('#certify-float')!;
    this.selectedButton = root.querySelector('#certify-selected')!;
    this.cancelButton = root.querySelector('#certify-cancel')!;
    this.progress = new CertifyProgress(root.querySelector('#certify-status')!);
    this.runButton.addEventListener('click', () => void this.certifyFirst(this.runButton));
    this.floatButton.addEventListener('click', () => void this.certifyFirst(this.floatButton));
    this.selectedButton.addEventListener('click', () => void this.certifySelected());
    this.cancelButton.addEventListener('click', () => this.cancel());
    root.dataset.status = 'idle';
    store.subscribe((s, prev) => this.stateChanged(s, prev));
    this.renderButtons();
    this.restore();
    void this.loadKept();
  }

  /** Adds the runs kept in this browser (those of this page win) and shows the one for the
   * settings, if any. */
  private async loadKept(): Promise<void> {
    const kept = await loadRuns();
    const known = new Map(this.runs);
    this.runs.clear();
    for (const run of kept) {
      if (run.status === 'running') run.status = 'cancelled'; // the page was closed mid-run
      this.runs.set(storageKey(run), { run, restored: true });
    }
    for (const [key, k] of known) {
      this.runs.delete(key);
      this.runs.set(key, k);
    }
    this.restoredFor = null;
    this.restore();
    this.redraw();
  }

  /** The page loaded a model of `kind` and a test subset of `count` images (caps how many can
   * be certified); runs can start, and the stored one for the settings shows. */
  setModel(kind: ModelKind, count: number): void {
    this.datasetSize = count;
    this.kind = kind;
    this.form.setDatasetSize(count);
    this.irs.setKind(kind);
    this.renderButtons();
    this.restore();
  }

  /** Stops a running certification; rows received so far stay. */
  cancel(): void {
    this.pool.cancel();
  }

  private stateChanged(s: State, prev: State): void {
    if (s.dataset !== prev.dataset || s.sigma !== prev.sigma) {
      this.datasetSize = null; // until the new model and subset are loaded
      this.kind = null;
      this.irs.setKind(null);
      this.cancel();
    }
    this.renderButtons();
    this.restore();
  }

  /** When the model, policy or settings changed: shows the kept run for them, unless a run is
   * going on or shown. For an int8 model without one, the kept run of the float model it was
   * trained from with the same settings shows. */
  private restore(): void {
    const m = this.model(this.store.state);
    if (this.running || !m) return;
    const s = this.store.state;
    const key = runKey(s.dataset, s.sigma, runSettings(s), m);
    // a float run on show stays until something that selects runs changes (not, e.g., the image)
    if (key === this.restoredFor) return;
    this.restoredFor = key;
    const floatKey = this.kind === 'int8' ? runKey(s.dataset, s.sigma, runSettings(s), FLOAT_ORIGIN) : null;
    const show = this.runs.get(key) ?? (floatKey ? this.runs.get(floatKey) : undefined);
    if (show && show.run !== this.run) {
      this.run = show.run;
      this.results.show(show.run, show.restored);
      this.root.dataset.status = show.run.status;
    }
    this.redraw();
  }

  /** The pool's workers: the page's model at its policy, or the float model it was trained from. */
  private target(s: State, m?: RunModel, where?: ResolvedBackend): PoolTarget {
    const backend = where?.backend ?? 'cpu';
    if (m?.variant === 'float') return { dataset: s.dataset, sigma: s.sigma, policy: null, variant: m.variant, workers: s.workers, backend };
    const variant = TRAININGS[s.training].variant;
    if (variant) return { dataset: s.dataset, sigma: s.sigma, policy: s.policy, variant, workers: s.workers, backend };
    return { dataset: s.dataset, sigma: s.sigma, policy: s.policy, workers: s.workers, backend };
  }

  /** Where a run goes: CERTIFY as the backend control says, IRS on the CPU workers; null (and
   * the reason shown) when the chosen backend is unavailable. */
  private async where(s: State, m: RunModel): Promise<ResolvedBackend | null> {
    const cpu = cpuBackend(s.workers);
    if (m.nChi !== null) return cpu;
    try {
      return await this.backend.resolve(s);
    } catch (e) {
      this.status.error(message(e));
      return null;
    }
  }

  /** What the next run certifies: the loaded model at the current policy, incrementally if
   * asked; null while no model is loaded. */
  private model(s: State): RunModel | null {
    if (!this.kind) return null;
    return { kind: this.kind, policy: s.policy, nChi: this.irs.active(s) ? nChiOf(s) : null, variant: TRAININGS[s.training].variant ?? null };
  }

  /** How each image is certified, how many samples it draws (for the progress bar) and, for
   * IRS, which worker caches each image's reference certificate. */
  private call(
    s: State,
    m: RunModel,
  ): { perImage: number; call: CertifyCall<RunRow>; affinity?: Affinity<RunRow>; gpuCall?: CertifyCall<RunRow> } {
    const settings = this.engineSettings(s);
    const nChi = m.nChi;
    if (nChi === null) {
      return {
        perImage: s.n0 + s.n,
        call: (api, index, onProgress) => api.certify(index, settings, onProgress),
        gpuCall: (api, index, onProgress) => api.certifyGpu(index, settings, onProgress),
      };
    }
    // the engine caches the stored model's certificate per image, seed and CERTIFY settings
    const prefix = `${s.dataset}/${s.sigma}/${s.training}/n0=${s.n0}/n=${s.n}/alpha=${s.alpha}/seed=${s.seed}/`;
    const affinity: Affinity<RunRow> = {
      key: (index) => prefix + index,
      computed: (row) => isIncremental(row) && !row.referenceCached,
    };
    // an uncached reference certificate (the stored model's) draws n0 + n, then IRS replays n_χ
    // (plus n0 on the full path); a cached one counts with the time it first took
    return {
      perImage: s.n0 + s.n + nChi,
      call: async (api, index, onProgress) => {
        const row: IncrementalImage = await api.certifyIncremental(index, { ...settings, nChi }, onProgress);
        this.referenceTimes.attribute(affinity.key(index), row);
        return row;
      },
      affinity,
    };
  }

  private engineSettings(s: State): CertifySettings {
    return { sigma: Number(s.sigma), n0: s.n0, n: s.n, alpha: s.alpha, seed: s.seed, batch: BATCH };
  }

  /** Certifies the first `count` test images: the page's model (`button` is the Certify
   * button) or the float model it was trained from (the float button). */
  private async certifyFirst(button: HTMLButtonElement): Promise<void> {
    const s = this.store.state;
    const total = Math.min(s.count, this.datasetSize ?? s.count);
    const pageModel = this.model(s);
    if (!pageModel) return; // the buttons are disabled until the model is loaded
    const model = button === this.floatButton ? FLOAT_ORIGIN : pageModel;
    const where = await this.where(s, model);
    if (!where) return;
    // the page's settings own the panel now: no stored run replaces this one until they change
    this.restoredFor = runKey(s.dataset, s.sigma, runSettings(s), pageModel);
    const run: CertifyRun = {
      dataset: s.dataset,
      sigma: s.sigma,
      settings: runSettings(s),
      ...model,
      workers: s.workers,
      ranOn: where.description,
      rows: [],
      status: 'running',
      elapsed: 0,
      started: new Date().toISOString(),
    };
    const key = storageKey(run);
    this.run = run;
    this.runs.delete(key); // a rerun replaces its run and series, at the end of the legend
    this.runs.set(key, { run, restored: false });
    this.results.show(run, false);
    this.begin(total, button);
    this.root.dataset.status = 'running';
    const indices = Array.from({ length: total }, (_, i) => i);
    const { perImage, call, affinity, gpuCall } = this.call(s, model);
    try {
      const end = await this.pool.certify(this.target(s, model, where), indices, perImage, call, {
        row: (row) => {
          const at = addRow(run, row);
          run.elapsed = this.progress.elapsed();
          this.results.inserted(at);
          this.queueRedraw();
          if (performance.now() - this.lastSave > SAVE_EVERY_MS) this.save(run);
        },
        progress: (p) => this.progress.update(p),
        fallback: (reason) => {
          run.fallback = { after: run.rows.length, reason };
          run.ranOn = `${where.description}, then ${cpuBackend(s.workers).description}`;
          this.status.notice(`WebGPU failed after ${run.rows.length} images (${reason}); the run continues on the CPU workers.`);
          this.results.update();
          this.save(run);
        },
      }, affinity, gpuCall);
      run.status = end;
    } catch (e) {
      run.status = 'error';
      this.status.error(`Certification failed: ${message(e)}`);
    }
    run.elapsed = this.progress.elapsed();
    this.save(run);
    this.redraw();
    this.finish(run.status);
    this.root.dataset.status = run.status;
  }

  /** Certifies the selected image alone and shows its noisy copies and counts. */
  private async certifySelected(): Promise<void> {
    const s = this.store.state;
    const index = s.selected;
    const settings = this.engineSettings(s);
    this.selectedView.begin(index, s.sigma, s.seed);
    this.begin(1, this.selectedButton);
    let status: RunStatus = 'completed';
    try {
      const noisy = await this.pool.noisyImages(this.target(s), index, NOISY_COPIES, settings.sigma, s.seed);
      if (noisy === null) {
        status = 'cancelled';
      } else {
        this.selectedView.showNoisy(noisy, NOISY_COPIES);
        const rows: CertifiedImage[] = [];
        const call: CertifyCall<CertifiedImage> = (api, i, onProgress) => api.certify(i, settings, onProgress);
        const gpuCall: CertifyCall<CertifiedImage> = (api, i, onProgress) => api.certifyGpu(i, settings, onProgress);
        const where = await this.backend.resolve(s);
        status = await this.pool.certify(this.target(s, undefined, where), [index], s.n0 + s.n, call, {
          row: (row) => rows.push(row),
          progress: (p) => this.progress.update(p),
          fallback: (reason) => this.status.notice(`WebGPU failed (${reason}); certifying on the CPU workers instead.`),
        }, undefined, gpuCall);
        if (rows[0]) this.selectedView.showResult(rows[0], s.dataset);
      }
    } catch (e) {
      status = 'error';
      this.status.error(`Could not certify image ${index}: ${message(e)}`);
    }
    this.finish(status);
    this.selectedView.end(status === 'completed' ? 'done' : status);
  }

  /** `button` started the job. */
  private begin(total: number, button: HTMLButtonElement): void {
    const focused = document.activeElement;
    this.running = true;
    this.startedBy = button;
    this.renderButtons();
    // the pressed button is now disabled: keep keyboard focus on the one that acts next
    if (focused === button) this.cancelButton.focus();
    this.progress.start(total);
  }

  private finish(status: RunStatus): void {
    const focused = document.activeElement;
    this.running = false;
    this.renderButtons();
    if (focused === this.cancelButton) {
      // back to the button that started the job, unless it went away meanwhile
      const back = this.startedBy && !this.startedBy.hidden && !this.startedBy.disabled ? this.startedBy : this.runButton;
      back.focus();
    }
    this.startedBy = null;
    this.progress.end(status);
  }

  private renderButtons(): void {
    const invalid = !this.form.valid || (this.irs.active(this.store.state) && !this.irs.valid);
    const blocked = this.running || invalid || this.kind === null;
    this.runButton.disabled = blocked;
    // only an int8 model was trained from a float model (a float model is its own float run);
    // the float run ignores the policy and IRS, so an invalid n_χ does not block it
    if (this.kind !== null) this.floatButton.hidden = this.kind !== 'int8'; // kept while loading
    this.floatButton.disabled = this.running || !this.form.valid || this.kind !== 'int8';
    this.selectedButton.disabled = blocked;
    this.selectedButton.textContent = `Certify the selected image (#${this.store.state.selected})`;
    this.cancelButton.disabled = !this.running;
  }

  private save(run: CertifyRun): void {
    this.lastSave = performance.now();
    void saveRun(run);
  }

  /** Summary and plot change with every row: draw at most once per frame. */
  private queueRedraw(): void {
    if (this.redrawQueued) return;
    this.redrawQueued = true;
    requestAnimationFrame(() => {
      this.redrawQueued = false;
      this.redraw();
    });
  }

  /** Makes a kept run's settings the page's and shows it. */
  private openRun(key: string): void {
    const kept = this.runs.get(key);
    if (!kept || this.running) return;
    const { run } = kept;
    const m = runModel(run);
    // the page's int8 model of the run: the multi-bit one or the supernet
    const training = m.variant === 'multibit' ? 'multibit' : 'supernet';
    const s = this.store.state;
    const sameModel = run.dataset === s.dataset && run.sigma === s.sigma && (m.variant === 'float' || training === s.training);
    this.store.update({
      dataset: run.dataset,
      sigma: run.sigma,
      ...run.settings,
      // the float model an int8 model was trained from ignores the policy: keep the page's
      ...(m.variant === 'float' ? {} : { policy: m.policy, irs: m.nChi !== null, nChi: m.nChi, training }),
    });
    if (!sameModel) return; // the model loads; then restore() shows the run for the settings
    this.run = run;
    this.results.show(run, kept.restored);
    this.root.dataset.status = run.status;
    this.redraw();
  }

  private async removeRun(key: string): Promise<void> {
    const kept = this.runs.get(key);
    if (!kept || kept.run.status === 'running') return;
    // forgotten in storage first: the row goes once a reload can no longer bring it back
    await deleteRun(key);
    if (this.runs.get(key) !== kept) return; // replaced meanwhile by a rerun or an import
    this.runs.delete(key);
    if (this.run === kept.run) {
      this.run = null;
      this.results.clear();
      this.root.dataset.status = 'idle';
    }
    this.redraw();
  }

  private exportRuns(): void {
    download('bitsmooth-certify-runs.json', runsJson([...this.runs.values()].map((k) => k.run)), 'application/json');
  }

  private async importRuns(file: File): Promise<void> {
    try {
      const { runs, skipped } = parseRunsJson(await file.text());
      for (const run of runs) {
        if (run.status === 'running') run.status = 'cancelled';
        const key = storageKey(run);
        if (this.runs.get(key)?.run.status === 'running') continue; // never replace the running run
        this.runs.delete(key);
        this.runs.set(key, { run, restored: true });
        await saveRun(run);
      }
      this.restoredFor = null;
      this.restore();
      this.redraw();
      this.status.notice(
        `Imported ${runs.length} run${runs.length === 1 ? '' : 's'} from ${file.name}${skipped ? `; skipped ${skipped} unreadable entr${skipped === 1 ? 'y' : 'ies'}` : ''}.`,
      );
    } catch (e) {
      this.status.error(`Could not import ${file.name}: ${message(e)}`);
    }
  }

  /** The summary, the plot of every known run of the loaded dataset and σ, and the list of all. */
  private redraw(): void {
    this.results.update();
    this.list.show([...this.runs].map(([key, k]) => ({ key, run: k.run, restored: k.restored })));
    const { dataset, sigma } = this.store.state;
    const curves: Curve[] = [];
    for (const { run, restored } of this.runs.values()) {
      if (run.dataset !== dataset || run.sigma !== sigma) continue;
      curves.push({ label: `${runLabel(run)}${restored ? ' (restored)' : ''}`, rows: run.rows });
    }
    this.plot.show(curves);
  }
}
