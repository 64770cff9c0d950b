// Histograms of one layer's integer weights: at the chosen bits beside the stored 8-bit master,
// so a visitor sees Double Rounding fold 256 levels into 2^b. Plain SVG bars.
import type { WeightHistogram } from '../types';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 256;
const HEIGHT = 80;
/** Room for the count labels (left) and the integer levels (below). */
const LEFT = 34;
const BOTTOM = 14;

/** "−8": a true minus sign, like the rest of the page's numbers. */
function signed(v: number): string {
  return v < 0 ? `−${-v}` : String(v);
}

function svgText(x: number, y: number, text: string, anchor: 'start' | 'middle' | 'end'): SVGTextElement {
  const t = document.createElementNS(SVG, 'text');
  t.setAttribute('x', String(x));
  t.setAttribute('y', String(y));
  t.setAttribute('text-anchor', anchor);
  t.textContent = text;
  return t;
}

function line(x1: number, y1: number, x2: number, y2: number): SVGLineElement {
  const l = document.createElementNS(SVG, 'line');
  l.setAttribute('x1', String(x1));
  l.setAttribute('y1', String(y1));
  l.setAttribute('x2', String(x2));
  l.setAttribute('y2', String(y2));
  return l;
}

/** One histogram: a bar per integer value (−2^(b−1)..2^(b−1)−1 for 2^b counts), heights on a
 * square-root scale so that the sparse tails of a bell-shaped weight distribution stay visible;
 * the x axis marks the lowest, zero and highest level, the y axis 0, a quarter of the peak
 * (half the height on a square-root scale) and the peak count. */
function bars(counts: number[], title: string, id: string): SVGSVGElement {
  const svg = document.createElementNS(SVG, 'svg');
  svg.id = id;
  svg.setAttribute('viewBox', `0 0 ${LEFT + WIDTH} ${HEIGHT + BOTTOM}`);
  svg.setAttribute('class', 'histogram');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', title);
  svg.dataset.bars = String(counts.length);
  const peak = Math.max(1, ...counts);
  const max = Math.sqrt(peak);
  const w = WIDTH / counts.length;
  counts.forEach((c, i) => {
    if (c === 0) return;
    const h = (HEIGHT * Math.sqrt(c)) / max;
    const rect = document.createElementNS(SVG, 'rect');
    rect.setAttribute('x', String(LEFT + i * w));
    rect.setAttribute('y', String(HEIGHT - h));
    // a hairline gap between wide bars; 256 bars touch
    rect.setAttribute('width', String(counts.length > 64 ? w : w * 0.9));
    rect.setAttribute('height', String(h));
    svg.append(rect);
  });
  const half = counts.length / 2;
  const x = document.createElementNS(SVG, 'g');
  x.setAttribute('class', 'x-axis');
  x.append(line(LEFT, HEIGHT, LEFT + WIDTH, HEIGHT));
  for (const v of [-half, 0, half - 1]) {
    const cx = LEFT + (v + half + 0.5) * w;
    x.append(line(cx, HEIGHT, cx, HEIGHT + 2), svgText(cx, HEIGHT + BOTTOM - 2, signed(v), 'middle'));
  }
  const y = document.createElementNS(SVG, 'g');
  y.setAttribute('class', 'y-axis');
  y.append(line(LEFT, 0, LEFT, HEIGHT));
  // top first: the peak count is the label a reader looks for
  for (const c of [peak, Math.round(peak / 4), 0]) {
    const cy = HEIGHT - (HEIGHT * Math.sqrt(c)) / max;
    y.append(line(LEFT - 2, cy, LEFT, cy), svgText(LEFT - 4, Math.min(HEIGHT, Math.max(7, cy + 3)), c.toLocaleString('en'), 'end'));
  }
  svg.append(x, y);
  return svg;
}

function figure(svg: SVGSVGElement, caption: string): HTMLElement {
  const fig = document.createElement('figure');
  const cap = document.createElement('figcaption');
  cap.textContent = caption;
  fig.append(svg, cap);
  return fig;
}

export class BitsHistogram {
  constructor(private root: HTMLElement) {
    root.dataset.status = 'idle';
  }

  /** Shows `h` for the layer called `layer`. */
  show(layer: string, h: WeightHistogram): void {
    const levels = h.counts.length;
    this.root.dataset.bits = String(h.bits);
    this.root.dataset.layer = layer;
    this.root.replaceChildren(
      figure(
        bars(h.counts, `${layer} weights at ${h.bits} bits: ${levels} integer levels`, 'bits-hist-low'),
        `${layer} at ${h.bits} bits (${levels} levels): weights per integer level (√ scale)`,
      ),
      figure(
        bars(h.counts8, `${layer} weights of the 8-bit master: 256 integer levels`, 'bits-hist-master'),
        `8-bit master (256 levels): weights per integer level (√ scale)`,
      ),
    );
    this.root.dataset.status = 'ready';
  }

  /** A histogram is being computed (or failed: `error`). */
  pending(error = false): void {
    this.root.dataset.status = error ? 'error' : 'busy';
  }
}
