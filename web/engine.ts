// The page's handles on engine workers: typed Comlink proxies over web/worker.ts.
import * as Comlink from 'comlink';
import type { EngineApi } from './types';

export interface EngineWorker {
  worker: Worker;
  api: Comlink.Remote<EngineApi>;
}

/** A new worker with its own wasm instance; `worker.terminate()` stops it mid-call. */
export function spawnEngine(name: string): EngineWorker {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name });
  return { worker, api: Comlink.wrap<EngineApi>(worker) };
}

/** The page's main engine (model info, the prediction grid). */
export function startEngine(): Comlink.Remote<EngineApi> {
  return spawnEngine('bitsmooth-engine').api;
}

export { Comlink };
