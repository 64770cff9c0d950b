// The page's handle on the worker: a typed Comlink proxy.
import * as Comlink from 'comlink';
import type { EngineApi } from './types';

export function startEngine(): Comlink.Remote<EngineApi> {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'bitsmooth-engine' });
  return Comlink.wrap<EngineApi>(worker);
}

export { Comlink };
