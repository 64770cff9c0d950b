// The page's handles on engine workers: typed Comlink proxies over web/worker.ts.
import * as Comlink from 'comlink';
import type { EngineApi } from './types';
import { chooseWasmBuild, workerName, type WasmBuild } from './wasm-build';

export interface EngineWorker {
  worker: Worker;
  api: Comlink.Remote<EngineApi>;
}

let build: WasmBuild | null = null;

/** The engine build this page's workers load (decided once per page). */
export function wasmBuild(): WasmBuild {
  build ??= chooseWasmBuild();
  return build;
}

/** A new worker with its own wasm instance; `worker.terminate()` stops it mid-call. */
export function spawnEngine(name: string): EngineWorker {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), {
    type: 'module',
    name: workerName(name, wasmBuild()),
  });
  return { worker, api: Comlink.wrap<EngineApi>(worker) };
}

/** The page's main engine (model info, the prediction grid). */
export function startEngine(): Comlink.Remote<EngineApi> {
  return spawnEngine('bitsmooth-engine').api;
}

export { Comlink };
