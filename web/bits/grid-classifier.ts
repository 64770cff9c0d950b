// Classifies the shipped test images at a policy on every core at once, the grid's visible
// page first, in chunks that start small and grow: the first accuracy reaches the screen after
// a few dozen images, and the estimate refines as the rest follow (issue 14: the Bits panel's
// accuracy within 150 ms of the input). Each worker holds its own wasm engine; chunks go to
// whichever worker is free, so a slower one never holds the other back.
import { Comlink } from '../engine';
import { Cancelled } from '../pool';
import type { Classification, ClassifyProgress, EngineApi, ModelVariant, Policy } from '../types';

type Api = Comlink.Remote<EngineApi>;

/** Images in the first chunk each worker takes; chunks double up to MAX_CHUNK. */
export const FIRST_CHUNK = 32;
/** Largest chunk: bounds how long a superseded job can keep a worker busy. */
export const MAX_CHUNK = 100;

/** One engine call: images `start..start + count`. */
export interface Chunk {
  start: number;
  count: number;
}

/**
 * Cuts images 0..total into chunks, those of `first` (the visible page) before the rest, each
 * range in ascending order. The first `workers` chunks have FIRST_CHUNK images (every worker
 * starts small), and the size doubles after every `workers` chunks up to MAX_CHUNK (a chunk
 * never crosses from one range to the next). Every image is in exactly one chunk.
 */
export function chunkPlan(total: number, first: Chunk, workers: number): Chunk[] {
  const a = Math.max(0, Math.min(first.start, total));
  const b = Math.max(a, Math.min(first.start + first.count, total));
  const ranges: [number, number][] = [
    [a, b],
    [0, a],
    [b, total],
  ];
  const chunks: Chunk[] = [];
  let size = FIRST_CHUNK;
  let handed = 0;
  for (const [from, to] of ranges) {
    for (let start = from; start < to; ) {
      const count = Math.min(size, to - start);
      chunks.push({ start, count });
      start += count;
      handed += 1;
      if (handed % workers === 0) size = Math.min(MAX_CHUNK, size * 2);
    }
  }
  return chunks;
}

export class GridClassifier {
  /** `workers`: engine handles, the page's main engine first; all hold the same model and
   * policy before `run` is called (see `prepare`). */
  constructor(private readonly workers: Api[]) {}

  /** Loads the model on every worker but the first (the caller loaded it there) and applies
   * `policy` on all of them. */
  async prepare(dataset: string, sigma: string, base: string, policy: Policy | null, variant?: ModelVariant): Promise<void> {
    await Promise.all(
      this.workers.map(async (w, i) => {
        if (i > 0) await w.load(dataset, sigma, base, variant);
        await w.setPolicy(policy);
      }),
    );
  }

  /**
   * Classifies images 0..total (the visible ones first), reporting after every chunk the images
   * done and how many of them were right. Stops handing out chunks once `signal` aborts and then
   * rejects with Cancelled (message 'cancelled').
   */
  async run(total: number, visible: Chunk, signal: AbortSignal, onProgress: ClassifyProgress): Promise<Classification> {
    const queue = chunkPlan(total, visible, this.workers.length);
    const predictions = new Array<number>(total);
    const labels = new Array<number>(total);
    let done = 0;
    let correct = 0;
    const drain = async (api: Api) => {
      for (let chunk = queue.shift(); chunk; chunk = queue.shift()) {
        if (signal.aborted) throw new Cancelled();
        const part = await api.classify(chunk.start, chunk.count);
        if (signal.aborted) throw new Cancelled();
        for (let i = 0; i < chunk.count; i++) {
          predictions[chunk.start + i] = part.predictions[i];
          labels[chunk.start + i] = part.labels[i];
        }
        done += chunk.count;
        correct += part.correct;
        onProgress(done, total, correct);
      }
    };
    await Promise.all(this.workers.map(drain));
    return { start: 0, predictions, labels, correct };
  }
}
