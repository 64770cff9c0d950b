// The Search panel's two charts (uPlot): the reward of every episode with the best so far,
// and the Pareto view — every evaluated policy's BOPs against its reward, with the chosen
// policy of each finished search marked.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Evaluated } from '../types';

const HEIGHT = 220;

function colours(): { fg: string; border: string; accent: string; bad: string; muted: string } {
  const css = getComputedStyle(document.documentElement);
  const v = (name: string, fallback: string) => css.getPropertyValue(name).trim() || fallback;
  return {
    fg: v('--fg', '#1d2330'),
    border: v('--border', '#dde1ea'),
    accent: v('--accent', '#2f5bd3'),
    bad: v('--bad', '#c62828'),
    muted: v('--muted', '#5c6577'),
  };
}

function axis(label: string): uPlot.Axis {
  const c = colours();
  return { label, stroke: c.fg, grid: { stroke: c.border, width: 1 }, ticks: { stroke: c.border, width: 1 } };
}

/** A chart that follows its container's width and is rebuilt when its series change. */
abstract class Chart {
  protected plot: uPlot | null = null;
  private shape = '';

  constructor(protected root: HTMLElement) {
    new ResizeObserver(() => this.plot?.setSize({ width: this.width(), height: HEIGHT })).observe(root);
  }

  protected width(): number {
    return Math.max(260, this.root.clientWidth);
  }

  protected draw(shape: string, options: () => uPlot.Options, data: uPlot.AlignedData): void {
    if (this.plot && shape === this.shape) {
      this.plot.setData(data);
      return;
    }
    this.plot?.destroy();
    this.shape = shape;
    this.plot = new uPlot(options(), data, this.root);
  }

  clear(): void {
    this.plot?.destroy();
    this.plot = null;
    this.shape = '';
  }
}

/** Reward per episode and the best reward so far. */
export class RewardCurve extends Chart {
  show(trace: readonly Evaluated[], rewardName: string): void {
    this.root.dataset.points = String(trace.length);
    if (trace.length === 0) return this.clear();
    let best = -Infinity;
    const xs = trace.map((e) => e.episode + 1);
    const rewards = trace.map((e) => e.reward);
    const bests = rewards.map((r) => (best = Math.max(best, r)));
    const c = colours();
    this.draw(
      rewardName,
      () => ({
        width: this.width(),
        height: HEIGHT,
        scales: { x: { time: false } },
        axes: [axis('episode'), axis(rewardName)],
        series: [
          { label: 'episode' },
          { label: 'reward', stroke: c.muted, width: 1, points: { show: true, size: 4 } },
          { label: 'best so far', stroke: c.accent, width: 2, points: { show: false } },
        ],
      }),
      [xs, rewards, bests],
    );
  }
}

export interface Choice {
  label: string;
  best: Evaluated;
}

/** Every evaluated policy as a point (BOPs as a fraction of 8-bit, reward), the choices on top. */
export class ParetoPlot extends Chart {
  show(trace: readonly Evaluated[], choices: readonly Choice[], maxBops: number, rewardName: string): void {
    this.root.dataset.points = String(trace.length);
    this.root.dataset.choices = String(choices.length);
    if (trace.length === 0 && choices.length === 0) return this.clear();
    // uPlot's aligned data wants ascending x: one row per point, each series filled at its own rows
    const rows: { x: number; series: number; y: number }[] = [
      ...trace.map((e) => ({ x: e.bops / maxBops, series: 1, y: e.reward })),
      ...choices.map((c, i) => ({ x: c.best.bops / maxBops, series: 2 + i, y: c.best.reward })),
    ].sort((a, b) => a.x - b.x);
    const count = 1 + choices.length;
    const data: uPlot.AlignedData = [
      rows.map((r) => r.x),
      ...Array.from({ length: count }, (_, s) => rows.map((r) => (r.series === s + 1 ? r.y : null))),
    ];
    const c = colours();
    const noLine = () => null;
    const shape = `${rewardName}|${choices.map((ch) => ch.label).join('|')}`;
    this.draw(
      shape,
      () => ({
        width: this.width(),
        height: HEIGHT,
        scales: { x: { time: false } },
        axes: [axis('BOPs / 8-bit BOPs'), axis(rewardName)],
        series: [
          { label: 'BOPs', value: (_u, v) => (v == null ? '–' : v.toFixed(3)) },
          { label: 'evaluated', stroke: c.muted, paths: noLine, points: { show: true, size: 5, fill: c.muted } },
          ...choices.map((ch, i) => ({
            label: ch.label,
            stroke: i === choices.length - 1 ? c.bad : c.accent,
            paths: noLine,
            points: { show: true, size: 11, width: 2, fill: 'transparent' },
          })),
        ],
      }),
      data,
    );
  }
}
