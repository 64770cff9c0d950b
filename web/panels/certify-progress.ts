// Progress of a certification job: a bar, images done / total, elapsed time and an estimate
// of the time left; the clock ticks between rows so the page never looks stuck.
import type { PoolProgress } from '../pool';
import type { RunStatus } from '../certify/run';

const TICK_MS = 500;

function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${m}:${String(s % 60).padStart(2, '0')}`;
}

export class CertifyProgress {
  private bar: HTMLProgressElement;
  private label: HTMLElement;
  private progress: PoolProgress = { images: 0, total: 0, fraction: 0 };
  private startedAt = 0;
  private ticker: number | undefined;

  constructor(root: HTMLElement) {
    root.innerHTML = `
      <progress id="certify-progress" max="1" value="0" aria-label="certification progress"></progress>
      <span id="certify-progress-label" aria-live="polite"></span>`;
    this.bar = root.querySelector('#certify-progress')!;
    this.label = root.querySelector('#certify-progress-label')!;
  }

  start(total: number): void {
    this.startedAt = performance.now();
    this.progress = { images: 0, total, fraction: 0 };
    this.render();
    window.clearInterval(this.ticker);
    this.ticker = window.setInterval(() => this.render(), TICK_MS);
  }

  update(p: PoolProgress): void {
    this.progress = p;
    this.render();
  }

  end(status: RunStatus): void {
    window.clearInterval(this.ticker);
    this.render(status);
  }

  /** Seconds since `start`. */
  elapsed(): number {
    return (performance.now() - this.startedAt) / 1000;
  }

  private render(ended?: RunStatus): void {
    const { images, total, fraction } = this.progress;
    const t = this.elapsed();
    this.bar.value = ended === 'completed' ? 1 : fraction;
    const done = `${images.toLocaleString('en')} / ${total.toLocaleString('en')} image${total === 1 ? '' : 's'}`;
    if (ended) {
      this.label.textContent = `${ended[0]!.toUpperCase()}${ended.slice(1)}: ${done} in ${formatDuration(t)}.`;
      return;
    }
    // at first the rate is mostly start-up (spawning workers, loading the model)
    const eta = fraction > 0.01 ? `about ${formatDuration((t * (1 - fraction)) / fraction)} left` : 'estimating time left…';
    this.label.textContent = `${done} · ${formatDuration(t)} elapsed · ${eta}`;
  }
}
