// Draw your own: a canvas to draw a digit on (or an image file to drop or choose), made into
// a 28×28 input the MNIST way (web/draw/mnist.ts); the prediction at the current bits beside
// the stored model's, live as the visitor draws; "Certify my drawing" gives its radius at σ
// and a strip of the noisy copies the smoothed classifier sees.
import type { Remote } from 'comlink';
import { Comlink } from '../engine';
import type { Store } from '../state';
import type { DrawingAnswer, EngineApi } from '../types';
import { grayOf, looksInverted, toMnist, type Gray } from '../draw/mnist';
import { grayCanvas } from './gray-canvas';
import { whatHtml } from './what';

/** The drawing canvas's own resolution (CSS may show it smaller on a phone). */
const CANVAS = 280;
const STROKE = 20;
/** Image files larger than this on a side are refused (a photo of a digit is far smaller). */
const MAX_SIDE = 4096;
const MIN_SIDE = 8;
const NOISY = 8;

export class DrawPanel {
  private canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D;
  private input: HTMLElement;
  private prediction: HTMLElement;
  private certified: HTMLElement;
  private strip: HTMLElement;
  private message: HTMLElement;
  private certifyButton: HTMLButtonElement;
  private pixels: Uint8Array | null = null;
  private drawing = false;
  private last: [number, number] | null = null;
  private pending = false;
  private again = false;
  private ready = false;

  constructor(
    root: HTMLElement,
    private store: Store,
    private engine: Remote<EngineApi>,
  ) {
    root.innerHTML = `
      <h2>Draw your own</h2>
      ${whatHtml('draw')}
      <div class="draw-row">
        <div class="draw-pad">
          <canvas id="draw-canvas" width="${CANVAS}" height="${CANVAS}" aria-label="drawing area: draw a digit with the mouse, a pen or a finger"></canvas>
          <div class="controls">
            <button id="draw-clear" type="button">Clear</button>
            <label class="file">Or an image file <input id="draw-file" type="file" accept="image/*" /></label>
          </div>
        </div>
        <div class="draw-out">
          <p>Model input (28×28, centred by centre of mass):</p>
          <div id="draw-input" class="draw-input"></div>
          <p id="draw-prediction" aria-live="polite">Draw a digit to see what the model makes of it.</p>
          <button id="draw-certify" type="button" disabled>Certify my drawing</button>
          <p id="draw-certified" aria-live="polite"></p>
          <div id="draw-noisy" class="draw-noisy" aria-label="noisy copies the smoothed classifier sees"></div>
        </div>
      </div>
      <p id="draw-message" class="error" role="alert" hidden></p>`;
    this.canvas = root.querySelector<HTMLCanvasElement>('#draw-canvas')!;
    this.ctx = this.canvas.getContext('2d', { willReadFrequently: true })!;
    this.input = root.querySelector<HTMLElement>('#draw-input')!;
    this.prediction = root.querySelector<HTMLElement>('#draw-prediction')!;
    this.certified = root.querySelector<HTMLElement>('#draw-certified')!;
    this.strip = root.querySelector<HTMLElement>('#draw-noisy')!;
    this.message = root.querySelector<HTMLElement>('#draw-message')!;
    this.certifyButton = root.querySelector<HTMLButtonElement>('#draw-certify')!;
    this.clear();

    this.canvas.addEventListener('pointerdown', (e) => {
      this.canvas.setPointerCapture(e.pointerId);
      this.drawing = true;
      this.last = this.point(e);
      this.stroke(this.last, this.last);
    });
    this.canvas.addEventListener('pointermove', (e) => {
      if (!this.drawing) return;
      const p = this.point(e);
      this.stroke(this.last ?? p, p);
      this.last = p;
      this.update();
    });
    const end = () => {
      if (!this.drawing) return;
      this.drawing = false;
      this.last = null;
      this.update();
    };
    this.canvas.addEventListener('pointerup', end);
    this.canvas.addEventListener('pointercancel', end);
    root.querySelector('#draw-clear')!.addEventListener('click', () => this.clear());
    const file = root.querySelector<HTMLInputElement>('#draw-file')!;
    file.addEventListener('change', () => {
      if (file.files?.[0]) void this.load(file.files[0]);
      file.value = '';
    });
    this.canvas.addEventListener('dragover', (e) => e.preventDefault());
    this.canvas.addEventListener('drop', (e) => {
      e.preventDefault();
      const f = e.dataTransfer?.files[0];
      if (f) void this.load(f);
    });
    this.certifyButton.addEventListener('click', () => void this.certify());
  }

  /** The model is loaded and at the current policy: predictions can run (again). */
  applied(): void {
    this.ready = true;
    this.update();
  }

  /** Another model is loading. */
  busy(): void {
    this.ready = false;
  }

  private point(e: PointerEvent): [number, number] {
    const r = this.canvas.getBoundingClientRect();
    return [((e.clientX - r.left) / r.width) * CANVAS, ((e.clientY - r.top) / r.height) * CANVAS];
  }

  private stroke(a: [number, number], b: [number, number]): void {
    const c = this.ctx;
    c.strokeStyle = '#fff';
    c.lineWidth = STROKE;
    c.lineCap = 'round';
    c.lineJoin = 'round';
    c.beginPath();
    c.moveTo(...a);
    c.lineTo(...b);
    c.stroke();
  }

  private clear(): void {
    this.ctx.fillStyle = '#000';
    this.ctx.fillRect(0, 0, CANVAS, CANVAS);
    this.pixels = null;
    this.input.replaceChildren();
    this.strip.replaceChildren();
    this.certified.textContent = '';
    this.prediction.textContent = 'Draw a digit to see what the model makes of it.';
    this.certifyButton.disabled = true;
    this.say(null);
  }

  private say(message: string | null): void {
    this.message.hidden = message === null;
    this.message.textContent = message ?? '';
  }

  /** An image file: decoded, drawn onto the canvas (fitted, on black) and predicted. */
  private async load(file: File): Promise<void> {
    if (!file.type.startsWith('image/')) {
      this.say(`${file.name} is not an image (${file.type || 'unknown type'}): choose a PNG, JPEG or similar.`);
      return;
    }
    let bitmap: ImageBitmap;
    try {
      bitmap = await createImageBitmap(file);
    } catch {
      this.say(`${file.name} could not be read as an image: is it corrupt?`);
      return;
    }
    const { width, height } = bitmap;
    if (width < MIN_SIDE || height < MIN_SIDE || width > MAX_SIDE || height > MAX_SIDE) {
      this.say(`${file.name} is ${width}×${height} pixels: images from ${MIN_SIDE}×${MIN_SIDE} to ${MAX_SIDE}×${MAX_SIDE} are accepted.`);
      bitmap.close();
      return;
    }
    const off = new OffscreenCanvas(width, height);
    const octx = off.getContext('2d')!;
    octx.drawImage(bitmap, 0, 0);
    bitmap.close();
    const rgba = octx.getImageData(0, 0, width, height).data;
    let gray = grayOf(rgba, width, height, false);
    if (looksInverted(gray)) gray = grayOf(rgba, width, height, true);
    this.clear();
    this.paint(gray);
    this.update();
  }

  /** Shows `g` on the canvas (fitted, ink white on black). */
  private paint(g: Gray): void {
    const scale = Math.min(CANVAS / g.width, CANVAS / g.height);
    const [w, h] = [Math.max(1, Math.round(g.width * scale)), Math.max(1, Math.round(g.height * scale))];
    const img = new ImageData(g.width, g.height);
    for (let i = 0; i < g.width * g.height; i++) {
      const v = Math.round(g.values[i]! * 255);
      img.data.set([v, v, v, 255], 4 * i);
    }
    const off = new OffscreenCanvas(g.width, g.height);
    off.getContext('2d')!.putImageData(img, 0, 0);
    this.ctx.drawImage(off, (CANVAS - w) / 2, (CANVAS - h) / 2, w, h);
  }

  /** Re-predicts the drawing (one request in flight; the latest drawing wins). */
  private update(): void {
    const rgba = this.ctx.getImageData(0, 0, CANVAS, CANVAS).data;
    this.pixels = toMnist(grayOf(rgba, CANVAS, CANVAS, false));
    this.input.replaceChildren(...(this.pixels ? [grayCanvas(this.pixels, 0)] : []));
    this.certifyButton.disabled = !this.pixels || !this.ready;
    this.strip.replaceChildren();
    this.certified.textContent = '';
    if (!this.pixels || !this.ready) return;
    if (this.pending) {
      this.again = true;
      return;
    }
    this.pending = true;
    const pixels = this.pixels;
    this.engine
      .classifyDrawing(pixels)
      .then((p) => {
        const stored = `stored model: <b>${p.stored.prediction}</b> (${percent(p.stored)})`;
        this.prediction.innerHTML = this.store.state.policy
          ? `At the current bits: <b>${p.current.prediction}</b> (${percent(p.current)}) · ${stored}`
          : `At the ${stored}`;
        this.prediction.dataset.prediction = String(p.current.prediction);
        this.say(null);
      })
      .catch((e) => this.say(`Could not classify the drawing: ${e instanceof Error ? e.message : String(e)}`))
      .finally(() => {
        this.pending = false;
        if (this.again) {
          this.again = false;
          this.update();
        }
      });
  }

  private async certify(): Promise<void> {
    if (!this.pixels) return;
    const pixels = this.pixels;
    const s = this.store.state;
    const sigma = Number(s.sigma);
    const settings = { sigma, n0: s.n0, n: s.n, alpha: s.alpha, seed: s.seed, batch: 100 };
    this.certifyButton.disabled = true;
    this.certified.textContent = `Certifying with n = ${s.n.toLocaleString('en')} noisy copies at σ = ${sigma} (seed ${s.seed})…`;
    try {
      const c = await this.engine.certifyDrawing(
        pixels,
        settings,
        Comlink.proxy((done: number, total: number) => {
          this.certified.textContent = `Certifying… ${Math.round((100 * done) / total)} %`;
        }),
      );
      if (pixels !== this.pixels) return;
      this.certified.dataset.radius = String(c.radius);
      this.certified.textContent =
        c.prediction === null
          ? `The smoothed model abstains: no class wins often enough under noise σ = ${sigma} (p_A ≥ ${c.pA.toFixed(3)} < ½).`
          : `Certified ${c.prediction} within radius r = ${c.radius.toFixed(3)}: no change of ℓ₂ size below r changes the answer (p_A ≥ ${c.pA.toFixed(3)}, α = ${s.alpha}, seed ${s.seed}).`;
      const noisy = await this.engine.noisyDrawing(pixels, NOISY, sigma, s.seed);
      if (pixels !== this.pixels) return;
      this.strip.replaceChildren(...Array.from({ length: NOISY }, (_, i) => grayCanvas(noisy, i)));
    } catch (e) {
      this.certified.textContent = '';
      this.say(`Could not certify the drawing: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      this.certifyButton.disabled = !this.pixels || !this.ready;
    }
  }
}

function percent(a: DrawingAnswer): string {
  return `${(100 * a.probabilities[a.prediction]!).toFixed(1)} %`;
}

