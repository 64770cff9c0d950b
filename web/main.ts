// Page shell: one store (state in the URL), one engine worker for the grid, a pool of
// workers for certification, and panels that render from them. Later panels (bits, search,
// draw-your-own) mount into their own sections.
import './style.css';
import { startEngine, Comlink } from './engine';
import { parseHash, Store, toHash } from './state';
import { StatusPanel } from './panels/status';
import { ModelPanel } from './panels/model-panel';
import { GridPanel } from './panels/grid-panel';
import { CertifyPanel } from './panels/certify-panel';
import { CertifyPool } from './pool';

const { state, ignored } = parseHash(location.hash);
const store = new Store(state);
const engine = startEngine();

const status = new StatusPanel(document.querySelector<HTMLElement>('#status')!);
const modelPanel = new ModelPanel(document.querySelector<HTMLElement>('#model-panel')!, store);
const grid = new GridPanel(document.querySelector<HTMLElement>('#grid-panel')!, store);
const certify = new CertifyPanel(
  document.querySelector<HTMLElement>('#certify-panel')!,
  store,
  new CertifyPool(document.baseURI),
  status,
);
if (ignored.length) status.notice(`Ignored invalid link parameters: ${ignored.join(', ')}. Showing defaults for them.`);
history.replaceState(null, '', toHash(store.state));

let job = 0;

/** Loads the chosen model and classifies the shipped subset; a newer request cancels this one. */
async function refresh(): Promise<void> {
  const id = ++job;
  await engine.cancel(id - 1);
  document.body.dataset.status = 'busy';
  grid.show(null, null);
  const { dataset, sigma } = store.state;
  status.begin(`Loading ${dataset} σ = ${sigma}…`, () => void engine.cancel(id));
  try {
    const loaded = await engine.load(dataset, sigma, document.baseURI);
    if (id !== job) return;
    modelPanel.show(loaded);
    const count = loaded.data.count;
    certify.setDatasetSize(count);
    const pixels = await engine.images(0, count);
    const result = await engine.classify(
      id,
      count,
      Comlink.proxy((done: number, total: number) => {
        if (id === job) status.progress(done, total, 'Classifying');
      }),
    );
    if (id !== job) return;
    grid.show(result, pixels);
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
    document.body.dataset.status = 'error';
  }
}

store.subscribe((s, prev) => {
  if (s.dataset !== prev.dataset || s.sigma !== prev.sigma) void refresh();
});
window.addEventListener('hashchange', () => {
  const parsed = parseHash(location.hash);
  store.update(parsed.state);
});

document.querySelector('#backend')!.textContent = 'Engine: CPU (WebAssembly, in Web Workers)';
void refresh();
