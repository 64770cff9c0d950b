// A pool of engine workers (one wasm instance each) that shares a certification across
// cores. A certification is one synchronous wasm call, so a worker cannot hear a "stop"
// message while it runs: cancelling terminates the workers, and the next run starts new ones.
import { spawnEngine, Comlink, type EngineWorker } from './engine';
import type { CertificationRow, DatasetName, EngineApi, ModelVariant, Policy, Progress, Sigma } from './types';

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

export class CertifyPool {
  private engines: EngineWorker[] = [];
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
  ): Promise<RunEnd> {
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
      const drain = async (engine: EngineWorker, slot: number) => {
        for (let index = take(slot); index !== undefined && !signal.aborted; index = take(slot)) {
          inFlight.set(slot, 0);
          const onProgress = Comlink.proxy((drawn: number) => {
            if (signal.aborted) return;
            inFlight.set(slot, drawn);
            report();
          });
          const row = await unlessAborted(call(engine.api, index, onProgress), signal);
          inFlight.delete(slot);
          done++;
          if (affinity?.computed(row)) this.holders.set(affinity.key(index), slot);
          on.row(row);
          report();
        }
      };
      report();
      await Promise.all(engines.map(drain));
      return true;
    });
    return finished === null ? 'cancelled' : 'completed';
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
      throw e;
    } finally {
      if (this.abort === abort) this.abort = null;
    }
  }

  /** Spawns the workers (if the count changed or they were discarded), loads the target and
   * applies its policy (respawned workers start from the stored model). */
  private async ready(target: PoolTarget): Promise<EngineWorker[]> {
    if (this.engines.length !== target.workers) {
      this.discard();
      this.engines = Array.from({ length: target.workers }, (_, i) => spawnEngine(`bitsmooth-certify-${i + 1}`));
    }
    const engines = this.engines;
    const loadKey = `${target.dataset}/${target.sigma}/${target.variant ?? 'shipped'}`;
    if (loadKey !== this.loadedKey) this.holders.clear();
    this.loadedKey = loadKey;
    // each worker caches its assets and skips a load of what it already holds
    await Promise.all(
      engines.map(async (e) => {
        await e.api.load(target.dataset, target.sigma, this.base, target.variant);
        await e.api.setPolicy(target.policy);
      }),
    );
    return engines;
  }

  private discard(): void {
    for (const e of this.engines) e.worker.terminate();
    this.engines = [];
    this.holders.clear();
  }
}
