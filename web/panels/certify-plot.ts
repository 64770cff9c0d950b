// Certified accuracy as a function of the radius, one labelled series per run of this
// session, drawn with uPlot. The curves are exact step functions: the x values are every
// radius any run certified.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { certifiedAccuracy } from '../certify/metrics';
import type { CertificationRow } from '../types';

export interface Curve {
  label: string;
  rows: readonly CertificationRow[];
}

const COLORS = ['#2f5bd3', '#c62828', '#2e7d32', '#ef6c00', '#6a1b9a', '#00838f', '#ad1457', '#5d4037'];
const HEIGHT = 260;

/** Sorted distinct radii of all curves, from 0 to just past the largest (at least to 1), so
 * that every curve visibly drops to 0. */
function breakpoints(curves: readonly Curve[]): number[] {
  let max = 0;
  const xs = new Set<number>([0]);
  for (const c of curves) {
    for (const r of c.rows) {
      xs.add(r.radius);
      max = Math.max(max, r.radius);
    }
  }
  xs.add(max < 0.95 ? 1 : Math.ceil((max + 0.05) * 4) / 4);
  return [...xs].sort((a, b) => a - b);
}

/** Text, grid and tick colours of an axis, from the page's CSS variables. */
function axisColours(): Pick<uPlot.Axis, 'stroke' | 'grid' | 'ticks'> {
  const css = getComputedStyle(document.documentElement);
  const fg = css.getPropertyValue('--fg').trim() || '#1d2330';
  const border = css.getPropertyValue('--border').trim() || '#dde1ea';
  return { stroke: fg, grid: { stroke: border, width: 1 }, ticks: { stroke: border, width: 1 } };
}

/** The hovered value, or the series' first value (at r = 0) when nothing is hovered. */
function atRest(u: uPlot, v: number | null, series: number): number {
  return v ?? (u.data[series]?.[0] as number | null | undefined) ?? 0;
}

export class CertifyPlot {
  private plot: uPlot | null = null;
  private labels = '';

  constructor(private root: HTMLElement) {
    new ResizeObserver(() => this.plot?.setSize({ width: this.width(), height: HEIGHT })).observe(root);
  }

  /** Redraws all curves; the chart is rebuilt only when the set of series changes. */
  show(curves: readonly Curve[]): void {
    this.root.dataset.series = String(curves.length);
    if (curves.length === 0) {
      this.plot?.destroy();
      this.plot = null;
      this.labels = '';
      return;
    }
    const xs = breakpoints(curves);
    const data: uPlot.AlignedData = [xs, ...curves.map((c) => certifiedAccuracy(c.rows, xs))];
    const labels = curves.map((c) => c.label).join('\n');
    if (this.plot && labels === this.labels) {
      this.plot.setData(data);
      return;
    }
    this.plot?.destroy();
    this.labels = labels;
    this.plot = new uPlot(this.options(curves), data, this.root);
  }

  private width(): number {
    return Math.max(280, this.root.clientWidth);
  }

  private options(curves: readonly Curve[]): uPlot.Options {
    // left-continuous steps: the accuracy at r counts radii ≥ r
    const steps = uPlot.paths.stepped!({ align: -1 });
    return {
      width: this.width(),
      height: HEIGHT,
      scales: { x: { time: false }, y: { range: [0, 1] } },
      // axis colours from the page's theme (light or dark)
      axes: [
        { label: 'radius r (ℓ₂, pixels in [0, 1])', ...axisColours() },
        { label: 'certified accuracy', values: (_, ticks) => ticks.map((t) => `${Math.round(t * 100)} %`), ...axisColours() },
      ],
      // away from the pointer the legend shows the values at r = 0 (the smoothed classifier's
      // accuracy), not dashes
      series: [
        { label: 'r', value: (u, v, si) => atRest(u, v, si).toFixed(3) },
        ...curves.map((c, i) => ({
          label: c.label,
          stroke: COLORS[i % COLORS.length]!,
          width: 2,
          paths: steps,
          points: { show: false },
          value: (u: uPlot, v: number | null, si: number) => `${(100 * atRest(u, v, si)).toFixed(1)} %`,
        })),
      ],
    };
  }
}
