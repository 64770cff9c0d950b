// Where CERTIFY runs: a choice (Auto, CPU workers, WebGPU) kept in the URL, and a line that says
// what the browser offers ("WebGPU · SwiftShader (fallback adapter)", or why WebGPU is
// unavailable) and where the next run will go. Auto takes WebGPU only when the browser gives
// an adapter and a device.
import { wasmBuild } from '../engine';
import type { CertifyPool } from '../pool';
import type { State, Store } from '../state';
import type { Backend, BackendChoice, GpuInfo } from '../types';

const CHOICES: { value: BackendChoice; label: string }[] = [
  { value: 'auto', label: 'Auto (WebGPU if available)' },
  { value: 'cpu', label: 'CPU workers' },
  { value: 'gpu', label: 'WebGPU' },
];

const HINT =
  'Where CERTIFY runs. WebGPU draws the noise and runs the network on the GPU and reads back only the class ' +
  'counts; the CPU workers run the wasm executor. IRS and drawings always run on the CPU workers.';

/** Where a run goes and how the page names it. */
export interface ResolvedBackend {
  backend: Backend;
  /** "WebGPU · SwiftShader (fallback adapter)" or "CPU · 4 workers · wasm relaxed SIMD". */
  description: string;
}

/** The CPU workers, named with the engine build they load ("CPU · 2 workers · wasm relaxed SIMD"). */
export function cpuBackend(workers: number): ResolvedBackend {
  const simd = wasmBuild() === 'relaxed-simd' ? 'wasm relaxed SIMD' : 'wasm SIMD128';
  return { backend: 'cpu', description: `CPU · ${workers} worker${workers > 1 ? 's' : ''} · ${simd}` };
}

export class CertifyBackend {
  private select: HTMLSelectElement;
  private line: HTMLElement;
  private info: GpuInfo | null = null;

  constructor(
    root: HTMLElement,
    private store: Store,
    private pool: CertifyPool,
  ) {
    root.innerHTML = `
      <div class="controls cert-backend">
        <label title="${HINT}">Backend
          <select id="certify-backend" aria-description="${HINT}">
            ${CHOICES.map((c) => `<option value="${c.value}">${c.label}</option>`).join('')}
          </select>
        </label>
        <span id="certify-backend-status" role="status" aria-live="polite" data-gpu="pending">Looking for WebGPU…</span>
      </div>`;
    this.select = root.querySelector('#certify-backend')!;
    this.line = root.querySelector('#certify-backend-status')!;
    this.select.addEventListener('change', () => this.store.update({ backend: this.select.value as BackendChoice }));
    store.subscribe((s, prev) => {
      if (s.backend !== prev.backend || s.workers !== prev.workers) this.render(s);
    });
    this.render(store.state);
    // looking for WebGPU starts a worker with its own wasm instance: after the page's first
    // work, not in its way (a run asks at once if it comes first)
    const idle = (window as Window & { requestIdleCallback?: (f: () => void, o: { timeout: number }) => void }).requestIdleCallback;
    if (idle) idle(() => void this.detect(), { timeout: 3000 });
    else setTimeout(() => void this.detect(), 1000);
  }

  /** Where the next CERTIFY run goes. Rejects when WebGPU is forced and unavailable. */
  async resolve(s: State): Promise<ResolvedBackend> {
    const cpu = cpuBackend(s.workers);
    if (s.backend === 'cpu') return cpu;
    const info = await this.detect();
    if (info.available) return { backend: 'webgpu', description: info.description };
    if (s.backend === 'gpu') throw new Error(`WebGPU is chosen but not available: ${info.reason}. Choose "CPU workers" or "Auto".`);
    return cpu;
  }

  /** Asks the pool's GPU worker again (after a failure the pool looks for a device afresh). */
  private async detect(): Promise<GpuInfo> {
    const info = await this.pool.detectGpu();
    this.info = info;
    this.render(this.store.state);
    return info;
  }

  private render(s: State): void {
    this.select.value = s.backend;
    const info = this.info;
    const cpu = `the CPU workers (${s.workers})`;
    let text: string;
    if (!info) {
      text = 'Looking for WebGPU…';
    } else if (info.available) {
      const software = info.description.includes('fallback adapter')
        ? ' (a software adapter that emulates a GPU on the CPU: expect it to be slower than the CPU workers)'
        : '';
      text = s.backend === 'cpu' ? `Certifies on ${cpu}; ${info.description} is available${software}.` : `Certifies on ${info.description}${software}.`;
    } else if (s.backend === 'gpu') {
      text = `WebGPU is chosen but not available: ${info.reason}.`;
    } else {
      text = `Certifies on ${cpu}: WebGPU is not available (${info.reason}).`;
    }
    this.line.textContent = text;
    this.line.dataset.gpu = !info ? 'pending' : info.available ? 'available' : 'unavailable';
    this.line.classList.toggle('warning', Boolean(info && !info.available && s.backend === 'gpu'));
  }
}
