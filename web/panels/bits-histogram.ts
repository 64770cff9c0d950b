// Histograms of one layer's integer weights: at the chosen bits beside the stored 8-bit master,
// so a visitor sees Double Rounding fold 256 levels into 2^b. Plain SVG bars.
import type { WeightHistogram } from '../types';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 256;
const HEIGHT = 80;

/** One histogram: a bar per integer value, heights on a square-root scale so that the sparse
 * tails of a bell-shaped weight distribution stay visible. */
function bars(counts: number[], title: string, id: string): SVGSVGElement {
  const svg = document.createElementNS(SVG, 'svg');
  svg.id = id;
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute('class', 'histogram');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', title);
  svg.dataset.bars = String(counts.length);
  const max = Math.sqrt(Math.max(1, ...counts));
  const w = WIDTH / counts.length;
  counts.forEach((c, i) => {
    if (c === 0) return;
    const h = (HEIGHT * Math.sqrt(c)) / max;
    const rect = document.createElementNS(SVG, 'rect');
    rect.setAttribute('x', String(i * w));
    rect.setAttribute('y', String(HEIGHT - h));
    // a hairline gap between wide bars; 256 bars touch
    rect.setAttribute('width', String(counts.length > 64 ? w : w * 0.9));
    rect.setAttribute('height', String(h));
    svg.append(rect);
  });
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
        `${layer} at ${h.bits} bits (${levels} levels)`,
      ),
      figure(bars(h.counts8, `${layer} weights of the 8-bit master: 256 integer levels`, 'bits-hist-master'), `8-bit master (256 levels)`),
    );
    this.root.dataset.status = 'ready';
  }

  /** A histogram is being computed (or failed: `error`). */
  pending(error = false): void {
    this.root.dataset.status = error ? 'error' : 'busy';
  }
}
