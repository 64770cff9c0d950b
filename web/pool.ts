// A pool of engine workers (one wasm instance each) that shares a certification across
// cores, or hands it to one worker that certifies on WebGPU. A certification is one wasm call,
// so a worker cannot hear a "stop" message while it runs: cancelling terminates the workers,
// and the next run starts new ones. A GPU that fails mid-run (a lost device) hands the images
// still to do to the CPU workers; the rows already done stay.
import { spawnEngine, Comlink, type EngineWorker } from './engine';
import type { Backend, CertificationRow, DatasetName, EngineApi, GpuInfo, ModelVariant, Policy, Progress, Sigma } from './types';

/** Which model, policy and data the workers hold, and how many workers there are. */
export interface PoolTarget {
  dataset: DatasetName;
  sigma: Sigma;
  /** Every worker runs this bit policy (null: the stored model — w8a8 for an int8 model, float
   * for a float one), like the page's grid. */
  policy: Policy | null;
  /** 'float': the workers load the float model the shipped one was trained from (run it with a
   * null policy: in float); absent: the shipped model. */
  variant?: ModelVariant;
  workers: number;
  /** Where to certify: 'webgpu' runs CERTIFY on one worker's GPU (see `detectGpu`); absent:
   * the CPU workers. */
  backend?: Backend;
}

/** Certifies one image on one worker (CERTIFY or IRS). */
export type CertifyCall<R> = (api: Comlink.Remote<EngineApi>, index: number, onProgress: Progress) => Promise<R>;

export interface PoolProgress {
  /** Images certified so far. */
  images: number;
  total: number;
  /** Share of all noisy samples drawn, in [0, 1] (counts images still in flight). */
  fraction: number;
}

export interface PoolHandlers<R> {
  row(row: R): void;
  progress(p: PoolProgress): void;
  /** The GPU failed mid-run: the images still to do continue on the CPU workers. */
  fallback?(reason: string): void;
}

export type RunEnd = 'completed' | 'cancelled';

/** Something a worker computes while certifying an image and keeps for later calls (IRS's
 * reference certificate of the stored model): a later job gives each image to the worker that
 * holds its item, so that a rerun reuses every one instead of those that land on the same
 * worker by chance. */
export interface Affinity<R> {
  /** What identifies the item `index` needs (model, settings and image). */
  key(index: number): string;
  /** Whether the call that returned `row` computed the item (and its worker now holds it). */
  computed(row: R): boolean;
}

export class Cancelled extends Error {
  constructor() {
    super('cancelled');
  }
}

/** Settles like `p`, or rejects with `Cancelled` as soon as `signal` aborts. */
export function unlessAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) return reject(new Cancelled());
    const onAbort = () => reject(new Cancelled());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** The slot of the GPU worker in `Affinity` bookkeeping (CPU workers are 0, 1, …). */
const GPU_SLOT = -1;

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class CertifyPool {
  private engines: EngineWorker[] = [];
  /** The worker that certifies on WebGPU, and what it found (kept until it fails). */
  private gpu: EngineWorker | null = null;
  private gpuInfo: Promise<GpuInfo> | null = null;
  private abort: AbortController | null = null;
  /** Affinity keys → the slot of the worker that holds the item; emptied with the workers and
   * when they load another model (which drops what they held). */
  private holders = new Map<string, number>();
  private loadedKey = '';

  /** `base`: the page's URL, against which the workers resolve model and data paths. */
  constructor(private readonly base: string) {}

  get busy(): boolean {
    return this.abort !== null;
  }

  /**
   * Certifies `indices` with `call`, handing the next index to whichever worker is free; rows
   * arrive in completion order. `perImage`: samples one image draws (for the progress).
   * Resolves 'cancelled' after `cancel()`; rejects on an engine error (the workers are then
   * discarded, so nothing keeps running).
   */
  async certify<R extends CertificationRow>(
    target: PoolTarget,
    indices: number[],
    perImage: number,
    call: CertifyCall<R>,
    on: PoolHandlers<R>,
    affinity?: Affinity<R>,
    gpuCall?: CertifyCall<R>,
  ): Promise<RunEnd> {
    const onGpu = target.backend === 'webgpu';
    if (onGpu && !gpuCall) throw new Error('this certification has no WebGPU form');
    const finished = await this.job(target, async (engines, signal) => {
      const inFlight = new Map<number, number>(); // worker slot → samples drawn
      const pending = [...indices];
      let done = 0;
      /** The next image for `slot`: one whose item it holds, else one nobody holds (an image
       * another worker holds waits for that worker: recomputing its item costs far more). */
      const take = (slot: number): number | undefined => {
        let at = 0;
        if (affinity) {
          at = pending.findIndex((i) => this.holders.get(affinity.key(i)) === slot);
          if (at < 0) at = pending.findIndex((i) => !this.holders.has(affinity.key(i)));
          if (at < 0) return undefined;
        }
        return pending.splice(at, 1)[0];
      };
      const report = () => {
        let drawn = done * perImage;
        for (const s of inFlight.values()) drawn += s;
        on.progress({ images: done, total: indices.length, fraction: drawn / (indices.length * perImage) });
      };
      const drain = async (engine: EngineWorker, slot: number, certifyOne: CertifyCall<R>) => {
        for (let index = take(slot); index !== undefined && !signal.aborted; index = take(slot)) {
          inFlight.set(slot, 0);
          const onProgress = Comlink.proxy((drawn: number) => {
            if (signal.aborted) return;
            inFlight.set(slot, drawn);
            report();
          });
          let row: R;
          try {
            row = await unlessAborted(certifyOne(engine.api, index, onProgress), signal);
          } catch (e) {
            pending.unshift(index); // not done: whoever continues certifies it
            throw e;
          } finally {
            inFlight.delete(slot);
          }
          done++;
          if (affinity?.computed(row)) this.holders.set(affinity.key(index), slot);
          on.row(row);
          report();
        }
      };
      report();
      if (onGpu) {
        try {
          await drain(engines[0]!, GPU_SLOT, gpuCall!);
          return true;
        } catch (e) {
          if (signal.aborted) throw e;
          // the GPU failed (e.g. its device was lost): the rest goes to the CPU workers
          this.discardGpu();
          on.fallback?.(message(e));
          report();
          engines = await unlessAborted(this.ready({ ...target, backend: 'cpu' }), signal);
        }
      }
      await Promise.all(engines.map((engine, slot) => drain(engine, slot, call)));
      return true;
    });
    return finished === null ? 'cancelled' : 'completed';
  }

  /** Looks for WebGPU in a dedicated worker (spawned once and kept while it works): its
   * adapter's description, or why it is unavailable. */
  detectGpu(): Promise<GpuInfo> {
    if (!this.gpuInfo) {
      const gpu = spawnEngine('bitsmooth-gpu');
      this.gpu = gpu;
      const info = gpu.api.gpuInit().then(
        (found) => found,
        (e: unknown): GpuInfo => ({ available: false, description: '', reason: message(e) }),
      );
      this.gpuInfo = info;
      void info.then((found) => {
        if (!found.available && this.gpu === gpu) {
          gpu.worker.terminate();
          this.gpu = null;
        }
      });
    }
    return this.gpuInfo;
  }

  /** Makes the GPU worker lose its device mid-run (tests the CPU fallback); false when no GPU
   * worker is running. */
  async loseGpu(): Promise<boolean> {
    if (!this.gpu) return false;
    await this.gpu.api.loseGpu();
    return true;
  }

  /** `count` noisy copies of one image as CERTIFY's estimation draws see them; null if cancelled. */
  noisyImages(target: PoolTarget, index: number, count: number, sigma: number, seed: number): Promise<Uint8Array | null> {
    return this.job(target, (engines, signal) =>
      unlessAborted(engines[0]!.api.noisyImages(index, count, sigma, seed), signal),
    );
  }

  /** Stops the running job at once; its workers are terminated and respawned on the next job. */
  cancel(): void {
    if (!this.abort) return;
    this.abort.abort();
    this.abort = null; // a new job may start before this one's promise settles
    this.discard();
    this.discardGpu();
  }

  /** Runs one job at a time on workers loaded with the target's model and data; resolves
   * null when the job was cancelled. */
  private async job<T>(
    target: PoolTarget,
    work: (engines: EngineWorker[], signal: AbortSignal) => Promise<T>,
  ): Promise<T | null> {
    if (this.abort) throw new Error('a certification is already running');
    const abort = new AbortController();
    this.abort = abort;
    try {
      const engines = await unlessAborted(this.ready(target), abort.signal);
      return await work(engines, abort.signal);
    } catch (e) {
      if (abort.signal.aborted) return null;
      abort.abort(); // lets this job's other awaits settle
      this.discard(); // and stops workers still busy with it
      if (target.backend === 'webgpu') this.discardGpu();
      throw e;
    } finally {
      if (this.abort === abort) this.abort = null;
    }
  }

  /** Spawns the workers (if the count changed or they were discarded), loads the target and
   * applies its policy (respawned workers start from the stored model). For WebGPU: the GPU
   * worker alone, which must have found a device. */
  private async ready(target: PoolTarget): Promise<EngineWorker[]> {
    const loadKey = `${target.dataset}/${target.sigma}/${target.variant ?? 'shipped'}`;
    if (loadKey !== this.loadedKey) this.holders.clear();
    this.loadedKey = loadKey;
    let engines: EngineWorker[];
    if (target.backend === 'webgpu') {
      const info = await this.detectGpu();
      if (!info.available || !this.gpu) throw new Error(`WebGPU is not available: ${info.reason || 'its worker stopped'}`);
      engines = [this.gpu];
    } else {
      if (this.engines.length !== target.workers) {
        this.discard();
        this.engines = Array.from({ length: target.workers }, (_, i) => spawnEngine(`bitsmooth-certify-${i + 1}`));
      }
      engines = this.engines;
    }
    // each worker caches its assets and skips a load of what it already holds
    await Promise.all(
      engines.map(async (e) => {
        await e.api.load(target.dataset, target.sigma, this.base, target.variant);
        await e.api.setPolicy(target.policy);
      }),
    );
    return engines;
  }

  /** Ends the GPU worker; the next `detectGpu` looks for a device afresh. */
  private discardGpu(): void {
    this.gpu?.worker.terminate();
    this.gpu = null;
    this.gpuInfo = null;
  }

  private discard(): void {
    for (const e of this.engines) e.worker.terminate();
    this.engines = [];
    this.holders.clear();
  }
}
