// Runs mixed-precision searches on a worker of their own, so that neither the page nor the
// grid's engine waits on one. A search is one synchronous wasm call: cancelling terminates the
// worker (the reports sent before it stay with the page) and the next search starts a new one.
import { spawnEngine, Comlink, type EngineWorker } from '../engine';
import { unlessAborted } from '../pool';
import type { DatasetName, ModelVariant, SearchOutcome, SearchReport, SearchSettings, Sigma, SpaceInfo } from '../types';

export class SearchRunner {
  private engine: EngineWorker | null = null;
  private abort: AbortController | null = null;

  /** `base`: the page's URL, against which the worker resolves model and data paths. */
  constructor(private readonly base: string) {}

  get busy(): boolean {
    return this.abort !== null;
  }

  /** The search space of a model (waits for a running search to finish first). */
  async space(dataset: DatasetName, sigma: Sigma, pinFirstLast: boolean, variant?: ModelVariant): Promise<SpaceInfo> {
    const e = await this.ready(dataset, sigma, variant);
    return e.api.searchSpace(pinFirstLast);
  }

  /** Runs one search; resolves null if `cancel()` stopped it, rejects with the engine's
   * message on bad settings. */
  async run(
    dataset: DatasetName,
    sigma: Sigma,
    settings: SearchSettings,
    onReport: (r: SearchReport) => void,
    variant?: ModelVariant,
  ): Promise<SearchOutcome | null> {
    if (this.abort) throw new Error('a search is already running');
    const abort = new AbortController();
    this.abort = abort;
    try {
      const e = await unlessAborted(this.ready(dataset, sigma, variant), abort.signal);
      const report = Comlink.proxy((r: SearchReport) => {
        if (!abort.signal.aborted) onReport(r);
      });
      return await unlessAborted(e.api.search(settings, report), abort.signal);
    } catch (err) {
      if (abort.signal.aborted) return null;
      throw err;
    } finally {
      if (this.abort === abort) this.abort = null;
    }
  }

  /** Stops the running search at once by terminating its worker. */
  cancel(): void {
    if (!this.abort) return;
    this.abort.abort();
    this.abort = null;
    this.engine?.worker.terminate();
    this.engine = null;
  }

  private async ready(dataset: DatasetName, sigma: Sigma, variant?: ModelVariant): Promise<EngineWorker> {
    this.engine ??= spawnEngine('bitsmooth-search');
    const e = this.engine;
    await e.api.load(dataset, sigma, this.base, variant); // skipped when the worker holds the model
    return e;
  }
}
