// What the loaded model is, as HTML for the Model panel: its kind, the widths it was trained at
// with the measured accuracy of each on the full test set, its layers and how to reproduce it.
import { DATASETS, type DatasetName, type ModelInfo } from '../types';

const fmt = (n: number) => n.toLocaleString('en');
const pct = (x: number) => `${(100 * x).toFixed(2)} %`;

/** Metadata comes from a file: never let it become markup. */
function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function kindText(m: ModelInfo): string {
  const widths = m.bits.length > 1 ? `${m.bits.slice(0, -1).join(', ')} and ${m.bits.at(-1)}` : m.bits.join('');
  switch (m.kind) {
    case 'int8':
      if (m.supernet) {
        return (
          `an <b>int8 supernet</b> (Double Rounding's HASB): one stored int8 model on which mixed policies were trained, ` +
          `each layer at any of ${widths} bits, sampled by its Hessian trace; it runs at w8a8 as stored and at lower widths by a rounded shift`
        );
      }
      return (
        `an <b>int8 multi-bit model</b> (Double Rounding): one stored int8 model, trained jointly at ${widths} bits ` +
        'with learned step sizes (LSQ); it runs at w8a8 as stored and at lower widths by a rounded shift'
      );
    case 'export':
      return 'an <b>export</b> at one fixed bit policy';
    default:
      return 'a <b>float model</b>, quantized after training when you pick bit-widths';
  }
}

/** Accuracy keys in a sensible order: the trained widths as listed (widest first), then the rest. */
function accuracyKeys(m: ModelInfo): string[] {
  const trained = m.bits.map((b) => `w${b}a${b}`).filter((k) => k in m.accuracy);
  return [...trained, ...Object.keys(m.accuracy).filter((k) => !trained.includes(k))];
}

function accuracyTable(m: ModelInfo, testImages: number | undefined): string {
  const keys = accuracyKeys(m);
  if (keys.length === 0) return '';
  const label = (k: string) => (m.kind === 'int8' && k === 'w8a8' ? 'w8a8 (stored)' : k.includes(',') ? `mixed ${k}` : k);
  const rows = keys
    .map((k) => `<tr data-key="${esc(k)}" data-accuracy="${m.accuracy[k]}"><th scope="row">${esc(label(k))}</th><td>${pct(m.accuracy[k]!)}</td></tr>`)
    .join('');
  const set = testImages ? `full test set, ${fmt(testImages)} images` : 'full test set';
  return `
    <table id="model-accuracy" class="layers model-accuracy">
      <caption>Clean accuracy (${set}), measured after training</caption>
      <thead><tr><th>${m.kind === 'int8' ? (m.supernet ? 'policy' : 'trained width') : 'model'}</th><th>accuracy</th></tr></thead>
      <tbody>${rows}</tbody>
    </table>`;
}

export function modelInfoHtml(m: ModelInfo): string {
  const training = (m.training ?? {}) as { command?: unknown; seconds?: unknown; test_images?: unknown };
  const command = typeof training.command === 'string' ? training.command : null;
  const seconds = typeof training.seconds === 'number' ? training.seconds : null;
  const testImages = typeof training.test_images === 'number' ? training.test_images : undefined;
  const dataset = DATASETS[m.dataset as DatasetName]?.label ?? m.dataset;
  return `
    <p id="model-kind" data-kind="${esc(m.kind)}" data-bits="${m.bits.join(',')}"><b>${esc(m.arch)}</b> is ${kindText(m)}:
      ${fmt(m.macs)} multiply-accumulates per image, ${fmt(m.weights)} weights in ${m.layers.length} quantizable layers.
      Trained on ${esc(dataset)} with Gaussian noise σ = ${m.sigma}${seconds !== null ? ` in ${Math.max(1, Math.round(seconds / 60))} min` : ''}.</p>
    ${accuracyTable(m, testImages)}
    ${command ? `<p class="muted">Trained with <code id="model-command">bitsmooth ${esc(command)}</code></p>` : ''}
    <details><summary>Layers</summary>
      <table class="layers"><thead><tr><th>layer</th><th>kind</th><th>in→out</th><th>kernel/stride</th><th>output</th><th>weights</th><th>MACs</th></tr></thead>
      <tbody>${m.layers
        .map(
          (l) =>
            `<tr><td>${esc(l.name)}</td><td>${l.kind}</td><td>${l.in_channels}→${l.out_channels}</td><td>${l.kernel}/${l.stride}</td><td>${l.out_hw[0]}×${l.out_hw[1]}</td><td>${fmt(l.weights)}</td><td>${fmt(l.macs)}</td></tr>`,
        )
        .join('')}</tbody></table>
    </details>`;
}
