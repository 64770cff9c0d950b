// The "Certify" panel: runs randomized-smoothing certification (Cohen et al.'s CERTIFY) on
// the first images of the test subset, or on the selected image alone, over a pool of
// workers; shows progress with an ETA, the rows, ACR, certified accuracy and its curve; keeps
// runs across reloads. Settings live in the store (the URL); runs are plain data.
import type { CertifyCall, CertifyPool, PoolTarget } from '../pool';
import { nChiOf, type State, type Store } from '../state';
import type { CertifiedImage, CertifySettings, ModelKind } from '../types';
import {
  addRow,
  runKey,
  runLabel,
  runModel,
  runSettings,
  type CertifyRun,
  type RunModel,
  type RunRow,
  type RunStatus,
} from '../certify/run';
import { loadRun, saveRun } from '../certify/storage';
import { CertifySettingsForm } from './certify-settings';
import { CertifyResults } from './certify-results';
import { CertifyPlot, type Curve } from './certify-plot';
import { SelectedCertifyView } from './certify-selected';
import { CertifyProgress } from './certify-progress';
import { CertifyIrsControls } from './certify-irs';
import type { StatusPanel } from './status';

/** Noisy copies per forward pass: large enough to amortise calls, small enough for progress. */
const BATCH = 100;
const NOISY_COPIES = 8;
const SAVE_EVERY_MS = 1000;

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class CertifyPanel {
  private form: CertifySettingsForm;
  private irs: CertifyIrsControls;
  private results: CertifyResults;
  private plot: CertifyPlot;
  private selectedView: SelectedCertifyView;
  private runButton: HTMLButtonElement;
  private selectedButton: HTMLButtonElement;
  private cancelButton: HTMLButtonElement;
  private progress: CertifyProgress;
  /** The run on display, and every run of this session by key (the plot's series). */
  private run: CertifyRun | null = null;
  private curves = new Map<string, Curve>();
  private datasetSize: number | null = null;
  /** The loaded model's kind (runs are kept per kind); null until the page has loaded it. */
  private kind: ModelKind | null = null;
  private running = false;
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
      <p class="muted">CERTIFY (Cohen et al., 2019) adds Gaussian noise of the model's σ to each image: n0 noisy
        copies pick the top class, n fresh copies bound its probability p_A from below with confidence 1 − α, and
        the prediction provably cannot change within the ℓ₂ radius σ·Φ⁻¹(p_A). If p_A &lt; ½ it abstains.</p>
      <div id="certify-settings"></div>
      <div id="certify-irs-controls"></div>
      <div class="controls">
        <button id="certify-run" type="button">Certify</button>
        <button id="certify-selected" type="button">Certify the selected image</button>
        <button id="certify-cancel" type="button" disabled>Cancel</button>
      </div>
      <div id="certify-status" class="status-row"></div>
      <div id="certify-selected-view" class="selected-view"></div>
      <div id="certify-plot" class="cert-plot" role="img" aria-label="certified accuracy against radius, one line per run"></div>
      <div id="certify-results"></div>`;
    this.form = new CertifySettingsForm(root.querySelector('#certify-settings')!, store, () => this.renderButtons());
    this.irs = new CertifyIrsControls(root.querySelector('#certify-irs-controls')!, store, () => this.renderButtons());
    this.results = new CertifyResults(root.querySelector('#certify-results')!);
    this.plot = new CertifyPlot(root.querySelector('#certify-plot')!);
    this.selectedView = new SelectedCertifyView(root.querySelector('#certify-selected-view')!);
    this.runButton = root.querySelector('#certify-run')!;
    this.selectedButton = root.querySelector('#certify-selected')!;
    this.cancelButton = root.querySelector('#certify-cancel')!;
    this.progress = new CertifyProgress(root.querySelector('#certify-status')!);
    this.runButton.addEventListener('click', () => void this.certifyFirst());
    this.selectedButton.addEventListener('click', () => void this.certifySelected());
    this.cancelButton.addEventListener('click', () => this.cancel());
    root.dataset.status = 'idle';
    store.subscribe((s, prev) => this.stateChanged(s, prev));
    this.renderButtons();
    this.restore();
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

  /** Shows the stored run for the current settings, unless a run is going on or shown. */
  private restore(): void {
    const m = this.model(this.store.state);
    if (this.running || !m) return;
    const s = this.store.state;
    const key = runKey(s.dataset, s.sigma, runSettings(s), m);
    if (this.run && runKey(this.run.dataset, this.run.sigma, this.run.settings, runModel(this.run)) === key) return;
    const stored = loadRun(key);
    if (!stored) return;
    if (stored.status === 'running') stored.status = 'cancelled'; // the page was closed mid-run
    this.run = stored;
    this.curves.set(key, { label: `${runLabel(stored)} (restored)`, rows: stored.rows });
    this.results.show(stored, true);
    this.root.dataset.status = stored.status;
    this.redraw();
  }

  private target(s: State): PoolTarget {
    return { dataset: s.dataset, sigma: s.sigma, policy: s.policy, workers: s.workers };
  }

  /** What the next run certifies: the loaded model at the current policy, incrementally if
   * asked; null while no model is loaded. */
  private model(s: State): RunModel | null {
    if (!this.kind) return null;
    return { kind: this.kind, policy: s.policy, nChi: this.irs.active(s) ? nChiOf(s) : null };
  }

  /** How each image is certified, and how many samples it draws (for the progress bar). */
  private call(s: State, m: RunModel): { perImage: number; call: CertifyCall<RunRow> } {
    const settings = this.engineSettings(s);
    const nChi = m.nChi;
    if (nChi === null) {
      return { perImage: s.n0 + s.n, call: (api, index, onProgress) => api.certify(index, settings, onProgress) };
    }
    // an uncached reference certificate (the stored model's) draws n0 + n, then IRS replays n_χ
    // (plus n0 on the full path)
    return {
      perImage: s.n0 + s.n + nChi,
      call: (api, index, onProgress) => api.certifyIncremental(index, { ...settings, nChi }, onProgress),
    };
  }

  private engineSettings(s: State): CertifySettings {
    return { sigma: Number(s.sigma), n0: s.n0, n: s.n, alpha: s.alpha, seed: s.seed, batch: BATCH };
  }

  /** Certifies the first `count` test images. */
  private async certifyFirst(): Promise<void> {
    const s = this.store.state;
    const total = Math.min(s.count, this.datasetSize ?? s.count);
    const model = this.model(s);
    if (!model) return; // the buttons are disabled until the model is loaded
    const run: CertifyRun = {
      dataset: s.dataset,
      sigma: s.sigma,
      settings: runSettings(s),
      ...model,
      workers: s.workers,
      rows: [],
      status: 'running',
      elapsed: 0,
      started: new Date().toISOString(),
    };
    const key = runKey(run.dataset, run.sigma, run.settings, model);
    this.run = run;
    this.curves.delete(key); // a rerun replaces its series, at the end of the legend
    this.curves.set(key, { label: runLabel(run), rows: run.rows });
    this.results.show(run, false);
    this.begin(total);
    this.root.dataset.status = 'running';
    const indices = Array.from({ length: total }, (_, i) => i);
    const { perImage, call } = this.call(s, model);
    try {
      const end = await this.pool.certify(this.target(s), indices, perImage, call, {
        row: (row) => {
          const at = addRow(run, row);
          run.elapsed = this.progress.elapsed();
          this.results.inserted(at);
          this.queueRedraw();
          if (performance.now() - this.lastSave > SAVE_EVERY_MS) this.save(run);
        },
        progress: (p) => this.progress.update(p),
      });
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
    this.begin(1);
    let status: RunStatus = 'completed';
    try {
      const noisy = await this.pool.noisyImages(this.target(s), index, NOISY_COPIES, settings.sigma, s.seed);
      if (noisy === null) {
        status = 'cancelled';
      } else {
        this.selectedView.showNoisy(noisy, NOISY_COPIES);
        const rows: CertifiedImage[] = [];
        const call: CertifyCall<CertifiedImage> = (api, i, onProgress) => api.certify(i, settings, onProgress);
        status = await this.pool.certify(this.target(s), [index], s.n0 + s.n, call, {
          row: (row) => rows.push(row),
          progress: (p) => this.progress.update(p),
        });
        if (rows[0]) this.selectedView.showResult(rows[0], s.dataset);
      }
    } catch (e) {
      status = 'error';
      this.status.error(`Could not certify image ${index}: ${message(e)}`);
    }
    this.finish(status);
    this.selectedView.end(status === 'completed' ? 'done' : status);
  }

  private begin(total: number): void {
    const focused = document.activeElement;
    this.running = true;
    this.renderButtons();
    // the pressed button is now disabled: keep keyboard focus on the one that acts next
    if (focused === this.runButton || focused === this.selectedButton) this.cancelButton.focus();
    this.progress.start(total);
  }

  private finish(status: RunStatus): void {
    const focused = document.activeElement;
    this.running = false;
    this.renderButtons();
    if (focused === this.cancelButton) this.runButton.focus();
    this.progress.end(status);
  }

  private renderButtons(): void {
    const invalid = !this.form.valid || (this.irs.active(this.store.state) && !this.irs.valid);
    const blocked = this.running || invalid || this.kind === null;
    this.runButton.disabled = blocked;
    this.selectedButton.disabled = blocked;
    this.selectedButton.textContent = `Certify the selected image (#${this.store.state.selected})`;
    this.cancelButton.disabled = !this.running;
  }

  private save(run: CertifyRun): void {
    this.lastSave = performance.now();
    saveRun(run);
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

  private redraw(): void {
    this.results.update();
    this.plot.show([...this.curves.values()]);
  }
}
