// Page shell: one store (state in the URL), one engine worker for the grid, a pool of
// workers for certification, and panels that render from them.
import './style.css';
import { startEngine, spawnEngine } from './engine';
import { MAX_WORKERS, parseHash, Store, toHash } from './state';
import { GridClassifier } from './bits/grid-classifier';
import { allowedWidths, policyLabel, samePolicy, snapPolicy } from './bits/policy';
import { TRAININGS, type ModelKind } from './types';
import { StatusPanel } from './panels/status';
import { ModelPanel } from './panels/model-panel';
import { GridPanel, PAGE_SIZE } from './panels/grid-panel';
import { CertifyPanel } from './panels/certify-panel';
import { BitsPanel } from './panels/bits-panel';
import { CertifyPool } from './pool';
import { SearchPanel } from './panels/search-panel';
import { SearchRunner } from './search/runner';
import { DrawPanel } from './panels/draw-panel';
import { GuidePanel } from './panels/guide-panel';

const { state, ignored, adjusted } = parseHash(location.hash);
const store = new Store(state);
const engine = startEngine();
// the grid is classified on the main engine and helpers, one per further core (up to 4 in all)
const gridClassifier = new GridClassifier([
  engine,
  ...Array.from({ length: Math.min(MAX_WORKERS, 4) - 1 }, (_, i) => spawnEngine(`bitsmooth-grid-${i + 1}`).api),
]);

const status = new StatusPanel(document.querySelector<HTMLElement>('#status')!);
const modelPanel = new ModelPanel(document.querySelector<HTMLElement>('#model-panel')!, store);
const bits = new BitsPanel(document.querySelector<HTMLElement>('#bits-panel')!, store, engine, (m) => status.error(m));
const grid = new GridPanel(document.querySelector<HTMLElement>('#grid-panel')!, store);
const certifyPool = new CertifyPool(document.baseURI);
const certify = new CertifyPanel(document.querySelector<HTMLElement>('#certify-panel')!, store, certifyPool, status);
// What a GPU failure looks like, on demand (the end-to-end tests; also handy from the console):
// the GPU worker's device is destroyed as a driver reset would, mid-run.
(window as Window & { bitsmooth?: { loseGpu(): Promise<boolean> } }).bitsmooth = {
  loseGpu: () => certifyPool.loseGpu(),
};
const search = new SearchPanel(
  document.querySelector<HTMLElement>('#search-panel')!,
  store,
  new SearchRunner(document.baseURI),
);
const draw = new DrawPanel(document.querySelector<HTMLElement>('#draw-panel')!, store, engine);
new GuidePanel(document.querySelector<HTMLElement>('#guide')!, document.querySelector<HTMLElement>('#tutorials')!);
const linkNotes = [
  ...(ignored.length ? [`Ignored invalid link parameters: ${ignored.join(', ')}. Showing defaults for them.`] : []),
  ...adjusted.map((a) => `Adjusted ${a}.`),
];
if (linkNotes.length) status.notice(linkNotes.join(' '));
history.replaceState(null, '', toHash(store.state));

let job = 0;
/** Stops the job in progress (a newer one, or the status bar's cancel button). */
let stopJob = new AbortController();
/** The model the panels show (`dataset/sigma`) and its subset's pixels, kept while only the
 * policy changes. */
let shown = '';
let pixels: Uint8Array | null = null;
/** The shown model's kind (what a null policy means), once one is loaded. */
let kind: ModelKind | null = null;
/** Images in the shown model's test subset; null while loading. */
let subsetSize: number | null = null;

/** A selected image beyond the shipped subset (from a link) falls back to the first one. */
function checkSelected(): void {
  const selected = store.state.selected;
  if (subsetSize === null || selected < subsetSize) return;
  status.notice(
    `Ignored selected=${selected}: only ${subsetSize.toLocaleString('en')} test images ship (0–${subsetSize - 1}); selected image 0.`,
    true,
  );
  store.update({ selected: 0 });
}

/** Loads the chosen model (the worker skips what it holds), applies the policy and classifies
 * the shipped subset; a newer request cancels this one. `reload`: the model changed. */
async function refresh(reload: boolean): Promise<void> {
  const id = ++job;
  stopJob.abort();
  const stop = (stopJob = new AbortController());
  document.body.dataset.status = 'busy';
  bits.busy();
  draw.busy();
  if (reload) {
    shown = '';
    kind = null;
    subsetSize = null;
    grid.show(null, null);
  }
  const { dataset, sigma, policy, training } = store.state;
  const variant = TRAININGS[training].variant;
  const modelKey = `${dataset}/${sigma}/${training}`;
  const label = reload || !kind ? `Loading ${dataset} σ = ${sigma}…` : `Applying ${policyLabel(policy, kind)}…`;
  status.begin(label, () => stop.abort());
  try {
    const loaded = await engine.load(dataset, sigma, document.baseURI, variant);
    if (id !== job) return;
    const count = loaded.data.count;
    if (shown !== modelKey) {
      modelPanel.show(loaded);
      bits.setModel(loaded.model);
      certify.setModel(loaded.model.kind, count);
      search.setModel(loaded.model);
      pixels = await engine.images(0, count);
      if (id !== job) return;
      shown = modelKey;
      kind = loaded.model.kind;
      subsetSize = count;
      checkSelected();
    }
    // a supernet runs only at the widths it was trained at: a link's other widths move to the nearest
    const allowed = allowedWidths(loaded.model);
    const snapped = policy && snapPolicy(policy, allowed);
    if (policy && snapped && !samePolicy(policy, snapped)) {
      status.notice(
        `This model was trained at ${allowed.join(', ')} bits only: ${policyLabel(policy, loaded.model.kind)} became ${policyLabel(snapped, loaded.model.kind)}.`,
        true,
      );
      store.update({ policy: snapped });
      return;
    }
    await gridClassifier.prepare(dataset, sigma, document.baseURI, policy, variant);
    if (id !== job) return;
    const { page, filter } = store.state;
    const visible = filter === 'all' ? { start: page * PAGE_SIZE, count: PAGE_SIZE } : { start: 0, count: 0 };
    const result = await gridClassifier.run(count, visible, stop.signal, (done, total, correct) => {
      if (id !== job) return;
      status.progress(done, total, 'Classifying');
      // the accuracy on the images done so far, refined as the rest follow
      if (done < total) bits.interim(policy, correct, done, total);
    });
    if (id !== job) return;
    grid.show(result, pixels);
    bits.applied(policy, result.correct / count);
    draw.applied();
    status.end(`Classified ${count.toLocaleString('en')} images.`);
    document.body.dataset.status = 'ready';
  } catch (e) {
    if (id !== job) return;
    const message = e instanceof Error ? e.message : String(e);
    if (message.includes('cancelled')) {
      status.end('Cancelled.');
    } else {
      status.error(`Could not run the model: ${message}`);
      status.end('Failed.');
    }
    bits.busy(true);
    document.body.dataset.status = 'error';
  }
}

store.subscribe((s, prev) => {
  const reload = s.dataset !== prev.dataset || s.sigma !== prev.sigma || s.training !== prev.training;
  if (reload || !samePolicy(s.policy, prev.policy)) void refresh(reload);
  else if (s.selected !== prev.selected) checkSelected();
});
window.addEventListener('hashchange', () => {
  const parsed = parseHash(location.hash);
  store.update(parsed.state);
});

document.querySelector('#backend')!.textContent = 'Engine: CPU (WebAssembly, in Web Workers)';
void refresh(true);
