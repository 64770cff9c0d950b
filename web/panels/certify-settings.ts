// The certification settings form: one input per setting, validated with the same rules as a
// link (web/state.ts), written to the store when valid, and a warning when a run will be long.
import { MAX_WORKERS, readSetting, settingRange, WHOLE_RANGES, type CertifyKey, type State, type Store } from '../state';

interface Field {
  key: CertifyKey;
  label: string;
  hint: string;
}

const FIELDS: Field[] = [
  { key: 'n0', label: 'n0', hint: 'selection samples per image (pick the class)' },
  { key: 'n', label: 'n', hint: 'estimation samples per image (bound its probability)' },
  { key: 'alpha', label: 'α', hint: 'failure probability of each certificate, 0 < α < 1' },
  { key: 'count', label: 'images', hint: 'certify the first this many shipped test images' },
  { key: 'seed', label: 'seed', hint: 'seed of the Gaussian noise: the same seed gives the same counts' },
  { key: 'workers', label: 'workers', hint: `parallel Web Workers, up to ${MAX_WORKERS} on this device` },
];

/** Above these a run may take minutes on a laptop (about 1,000–3,000 samples/s per worker). */
const LARGE_N = 10_000;
const LARGE_SAMPLES = 2_000_000;

export class CertifySettingsForm {
  private inputs = new Map<CertifyKey, HTMLInputElement>();
  /** Fields that hold an invalid value, with the text the visitor typed. */
  private invalid = new Map<CertifyKey, string>();
  /** A value that was adjusted (workers clamped to the device's cores), said once. */
  private adjusted: string | null = null;
  private warning: HTMLElement;
  private datasetSize: number | null = null;

  /** `onValidity` runs whenever the form turns valid or invalid. */
  constructor(root: HTMLElement, private store: Store, private onValidity: () => void) {
    const fields = FIELDS.map((f) => {
      const label = document.createElement('label');
      label.title = f.hint;
      const input = document.createElement('input');
      input.type = 'number';
      input.id = `cert-${f.key}`;
      input.setAttribute('aria-description', f.hint);
      if (f.key === 'alpha') {
        input.step = 'any';
        input.min = '0';
        input.max = '1';
      } else {
        const [min, max] = WHOLE_RANGES[f.key];
        input.step = '1';
        input.min = String(min);
        input.max = String(max);
      }
      input.addEventListener('change', () => this.read(f.key));
      label.append(f.label, input);
      this.inputs.set(f.key, input);
      return label;
    });
    const controls = document.createElement('div');
    controls.className = 'controls cert-settings';
    controls.append(...fields);
    this.warning = document.createElement('p');
    this.warning.id = 'certify-warning';
    this.warning.className = 'warning';
    this.warning.setAttribute('role', 'status');
    root.append(controls, this.warning);
    this.render(store.state);
    store.subscribe((s) => this.render(s));
  }

  get valid(): boolean {
    return this.invalid.size === 0;
  }

  /** How many images the loaded test subset holds (caps `count`). */
  setDatasetSize(count: number): void {
    this.datasetSize = count;
    this.render(this.store.state);
  }

  private read(key: CertifyKey): void {
    const input = this.inputs.get(key)!;
    const text = input.value.trim();
    const read = readSetting(key, text);
    const wasValid = this.valid;
    this.adjusted = null;
    if ('error' in read) {
      this.invalid.set(key, text);
      input.setAttribute('aria-invalid', 'true');
    } else {
      this.invalid.delete(key);
      input.removeAttribute('aria-invalid');
      if (read.note) this.adjusted = `${FIELDS.find((f) => f.key === key)!.label}: ${read.note}.`;
      // written back canonically: "1e3" shows as 1000
      input.value = String(read.value);
      this.store.update({ [key]: read.value });
    }
    this.renderWarning(this.store.state);
    if (wasValid !== this.valid) this.onValidity();
  }

  private render(s: State): void {
    for (const [key, input] of this.inputs) {
      // keep what the visitor is typing or must still fix
      if (!this.invalid.has(key) && document.activeElement !== input) input.value = String(s[key]);
    }
    this.renderWarning(s);
  }

  private renderWarning(s: State): void {
    const notes: string[] = [];
    if (this.invalid.size) {
      const wrong = FIELDS.filter((f) => this.invalid.has(f.key)).map((f) => {
        const text = this.invalid.get(f.key)!;
        return `${f.label} must be ${settingRange(f.key)} (${text === '' ? 'it is empty or not a number' : `got ${text}`})`;
      });
      notes.push(`Fix ${wrong.join('; ')} to certify.`);
    }
    if (this.adjusted) notes.push(this.adjusted);
    const images = Math.min(s.count, this.datasetSize ?? s.count);
    if (this.datasetSize !== null && s.count > this.datasetSize) {
      notes.push(`Only ${this.datasetSize.toLocaleString('en')} test images ship with the site; all of them will be certified.`);
    }
    const samples = images * (s.n0 + s.n);
    if (s.n > LARGE_N || samples > LARGE_SAMPLES) {
      notes.push(
        `These settings draw ${samples.toLocaleString('en')} noisy samples: this may take minutes. You can cancel at any time and keep the rows done so far.`,
      );
    }
    this.warning.textContent = notes.join(' ');
    this.warning.hidden = notes.length === 0;
  }
}
