// The "Search" panel: which width for each layer, under a bit-operations budget? A search
// (ARQ, HAQ, the HAWQ-V3 and Double Rounding ILPs, uniform, random) runs on a worker of its
// own with live progress, can be cancelled, and its chosen policy goes to the Bits sliders
// with one click. Validation images are the shipped training images, never the test subset.
import type { Store } from '../state';
import { SEARCH_METHODS, TRAININGS, type Evaluated, type ModelInfo, type SearchMethod, type SearchOutcome, type SearchReport, type SearchSettings, type SpaceInfo } from '../types';
import type { SearchRunner } from '../search/runner';
import { budgetBops, budgetError, minFraction, uniformWidth, usesEpisodes, wholeError } from '../search/budget';
import { ParetoPlot, RewardCurve, type Choice } from './search-plot';

/** Training images the site ships per dataset (`data/{dataset}-calibration.bsds`). */
const MAX_VAL = 256;
const MAX_EPISODES = 10_000;
const MAX_SEED = 4_294_967_295;

const METHOD_LABELS: Record<SearchMethod, string> = {
  haq: 'HAQ (agent, accuracy)',
  arq: 'ARQ (agent, certified radius)',
  hawq: 'HAWQ-V3 ILP',
  ilp: 'Double Rounding ILP',
  uniform: 'Uniform',
  random: 'Random search',
};

/** Defaults that finish within a few minutes on a 2-core laptop. */
const DEFAULT_VAL: Record<SearchMethod, number> = { haq: 200, arq: 50, hawq: 200, ilp: 200, uniform: 200, random: 200 };

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en');

export class SearchPanel {
  private form: HTMLFormElement;
  private method: HTMLSelectElement;
  private budget: HTMLInputElement;
  private budgetText: HTMLInputElement;
  private budgetNote: HTMLElement;
  private episodes: HTMLInputElement;
  private seed: HTMLInputElement;
  private valSize: HTMLInputElement;
  private n: HTMLInputElement;
  private nChi: HTMLInputElement;
  private pin: HTMLInputElement;
  private reward: HTMLSelectElement;
  private start: HTMLButtonElement;
  private cancel: HTMLButtonElement;
  private messageEl: HTMLElement;
  private progressBar: HTMLProgressElement;
  private progressText: HTMLElement;
  private result: HTMLElement;
  private curve: RewardCurve;
  private pareto: ParetoPlot;
  private model: ModelInfo | null = null;
  private space: SpaceInfo | null = null;
  private trace: Evaluated[] = [];
  private choices: (Choice & { rewardName: string })[] = [];
  private rewardName = '';
  private startedAt = 0;
  private searchStartedAt = 0;
  private ticker: number | undefined;
  private last: { episode: number; episodes: number; bestReward: number } | null = null;
  private phase = '';
  private spaceRequest = 0;

  constructor(
    private root: HTMLElement,
    private store: Store,
    private runner: SearchRunner,
  ) {
    root.dataset.status = 'idle';
    root.innerHTML = `
      <h2>Search</h2>
      <p class="muted">Which width for each layer, under a budget of bit operations? A search proposes one width per layer
        (weights and activations together, from the model's trained widths), keeps every policy within the budget and scores
        it on validation images drawn by the seed from the shipped <b>training</b> images (never the test images). ARQ scores
        by the certified radius of the smoothed classifier (IRS against the stored model), HAQ by accuracy, both with a
        DDPG agent; uniform takes the highest width within the budget, random search samples policies; the ILPs use
        Hessian traces, estimated here from 64 training images and 2 random vectors per layer when the model has none
        stored (a rough estimate). It runs on a worker of its own.</p>
      <form id="search-form" class="controls search-settings" novalidate>
        <label>Method <select id="search-method">${SEARCH_METHODS.map((m) => `<option value="${m}">${METHOD_LABELS[m]}</option>`).join('')}</select></label>
        <label class="search-budget">Budget (fraction of 8-bit BOPs)
          <input id="search-budget" type="range" min="0.05" max="1" step="0.005" value="0.3" />
          <input id="search-budget-value" type="number" min="0" max="1" step="any" value="0.3" aria-label="budget as a fraction of the 8-bit BOPs" />
        </label>
        <output id="search-budget-note" for="search-budget" aria-live="polite"></output>
        <label>Episodes <input id="search-episodes" type="number" min="1" max="${MAX_EPISODES}" step="1" value="40" /></label>
        <label>Seed <input id="search-seed" type="number" min="0" max="${MAX_SEED}" step="1" value="0" /></label>
        <label>Validation images <input id="search-val" type="number" min="1" max="${MAX_VAL}" step="1" value="200" /></label>
        <label>Reward (uniform, random, ILPs) <select id="search-reward"><option value="accuracy">accuracy</option><option value="acr">certified radius (IRS)</option></select></label>
        <label title="ARQ: samples of the stored model's certification per image">n <input id="search-n" type="number" min="1" step="1" value="500" /></label>
        <label title="ARQ: replayed samples per image and policy">n<sub>χ</sub> <input id="search-nchi" type="number" min="1" step="1" value="50" /></label>
        <label class="check"><input id="search-pin" type="checkbox" checked /> pin first and last layer at 8 bits</label>
        <div class="buttons">
          <button id="search-start" type="submit">Start search</button>
          <button id="search-cancel" type="button" disabled>Cancel</button>
        </div>
      </form>
      <p id="search-message" class="warning" role="alert" hidden></p>
      <div class="status-row">
        <progress id="search-progress" max="1" value="0" aria-label="search progress"></progress>
        <span id="search-progress-label" aria-live="polite"></span>
      </div>
      <div class="search-plots">
        <figure><figcaption>Reward per episode</figcaption><div id="search-curve" role="img" aria-label="reward of every episode and the best so far"></div></figure>
        <figure><figcaption>Every evaluated policy: BOPs against reward (circles: each search's choice, red: the latest)</figcaption>
          <div id="search-pareto" role="img" aria-label="bit operations against reward of every evaluated policy"></div></figure>
      </div>
      <div id="search-result" class="search-result"></div>`;
    const q = <T extends Element>(sel: string) => root.querySelector<T>(sel)!;
    this.form = q('#search-form');
    this.method = q('#search-method');
    this.budget = q('#search-budget');
    this.budgetText = q('#search-budget-value');
    this.budgetNote = q('#search-budget-note');
    this.episodes = q('#search-episodes');
    this.seed = q('#search-seed');
    this.valSize = q('#search-val');
    this.n = q('#search-n');
    this.nChi = q('#search-nchi');
    this.pin = q('#search-pin');
    this.reward = q('#search-reward');
    this.start = q('#search-start');
    this.cancel = q('#search-cancel');
    this.messageEl = q('#search-message');
    this.progressBar = q('#search-progress');
    this.progressText = q('#search-progress-label');
    this.result = q('#search-result');
    this.curve = new RewardCurve(q('#search-curve'));
    this.pareto = new ParetoPlot(q('#search-pareto'));

    this.budget.addEventListener('input', () => {
      this.budgetText.value = this.budget.value;
      this.renderBudget();
    });
    this.budgetText.addEventListener('input', () => {
      const v = Number(this.budgetText.value);
      if (Number.isFinite(v) && v >= Number(this.budget.min) && v <= 1) this.budget.value = String(v);
      this.renderBudget();
    });
    this.method.addEventListener('change', () => {
      const m = this.method.value as SearchMethod;
      const previous = Number(this.valSize.value);
      if (Object.values(DEFAULT_VAL).includes(previous)) this.valSize.value = String(DEFAULT_VAL[m]);
      this.renderMethod();
    });
    this.pin.addEventListener('change', () => void this.loadSpace());
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.run();
    });
    this.cancel.addEventListener('click', () => this.stop());
    this.renderMethod();
  }

  /** The page loaded a model: a search needs an int8 multi-bit one. */
  setModel(model: ModelInfo): void {
    if (this.runner.busy) this.stop();
    this.model = model;
    this.space = null;
    this.trace = [];
    this.choices = [];
    this.result.replaceChildren();
    this.curve.show([], '');
    this.pareto.show([], [], 1, '');
    if (model.kind !== 'int8') {
      this.start.disabled = true;
      this.say('A search needs the int8 multi-bit model (its trained widths are the candidates).');
      return;
    }
    this.say('');
    void this.loadSpace();
  }

  private async loadSpace(): Promise<void> {
    if (!this.model || this.model.kind !== 'int8' || this.runner.busy) return;
    const id = ++this.spaceRequest;
    const { dataset, sigma, training } = this.store.state;
    this.start.disabled = true;
    try {
      const space = await this.runner.space(dataset, sigma, this.pin.checked, TRAININGS[training].variant);
      if (id !== this.spaceRequest) return;
      this.space = space;
      this.budget.min = String(Math.ceil(minFraction(space) * 1000) / 1000);
      this.start.disabled = false;
      this.renderBudget();
    } catch (e) {
      if (id === this.spaceRequest) this.say(`Could not read the model's search space: ${message(e)}`);
    }
  }

  private renderMethod(): void {
    const m = this.method.value as SearchMethod;
    this.episodes.disabled = !usesEpisodes(m);
    this.reward.disabled = m === 'arq' || m === 'haq';
  }

  private renderBudget(): void {
    const s = this.space;
    if (!s) return;
    const fraction = Number(this.budgetText.value);
    const error = budgetError(s, fraction);
    if (error) {
      this.budgetNote.textContent = 'out of range';
      this.root.dataset.budget = '';
      return;
    }
    const bops = budgetBops(s, fraction);
    const width = uniformWidth(s, bops);
    this.root.dataset.budget = String(bops);
    this.budgetNote.textContent = `${fmt(bops)} BOPs per image of ${fmt(s.maxBops)} at 8 bits; ` +
      (width === null ? 'below every uniform width' : `affords uniform ${width}-bit (${fmt(s.uniformBops[s.bits.indexOf(width)]!)} BOPs)`);
  }

  private say(text: string): void {
    this.messageEl.textContent = text;
    this.messageEl.hidden = text === '';
  }

  /** The form's settings, or the first reason they are not valid. */
  private settings(): SearchSettings | string {
    if (!this.space) return 'The model is still loading.';
    const method = this.method.value as SearchMethod;
    const budget = Number(this.budgetText.value);
    const num = (i: HTMLInputElement) => (i.value.trim() === '' ? NaN : Number(i.value));
    const episodes = num(this.episodes);
    const seed = num(this.seed);
    const valSize = num(this.valSize);
    const n = num(this.n);
    const nChi = num(this.nChi);
    const error =
      budgetError(this.space, budget) ??
      (usesEpisodes(method) ? wholeError('Episodes', episodes, 1, MAX_EPISODES) : null) ??
      wholeError('The seed', seed, 0, MAX_SEED) ??
      wholeError('Validation images', valSize, 1, MAX_VAL) ??
      wholeError('n', n, 1, 10_000_000) ??
      wholeError('nχ', nChi, 1, 10_000_000);
    if (error) return error;
    return {
      method,
      budget,
      episodes: usesEpisodes(method) ? episodes : 1,
      seed,
      valSize,
      n,
      nChi,
      pinFirstLast: this.pin.checked,
      ...(method === 'arq' || method === 'haq' ? {} : { reward: this.reward.value as 'accuracy' | 'acr' }),
    };
  }

  private async run(): Promise<void> {
    if (this.runner.busy) return;
    const settings = this.settings();
    if (typeof settings === 'string') {
      this.say(settings);
      this.root.dataset.status = 'invalid';
      return;
    }
    this.say('');
    this.trace = [];
    this.last = null;
    this.phase = 'Starting';
    this.rewardName = settings.method === 'arq' || settings.reward === 'acr' ? 'irs-acr' : 'val-accuracy';
    this.result.replaceChildren();
    this.curve.show([], '');
    this.startedAt = this.searchStartedAt = performance.now();
    this.root.dataset.status = 'running';
    this.root.dataset.episode = '0';
    this.start.disabled = true;
    this.cancel.disabled = false;
    window.clearInterval(this.ticker);
    this.ticker = window.setInterval(() => this.renderProgress(), 500);
    this.renderProgress();
    const { dataset, sigma, training } = this.store.state;
    try {
      const outcome = await this.runner.run(dataset, sigma, settings, (r) => this.onReport(r), TRAININGS[training].variant);
      if (outcome === null) return; // cancelled: stop() rendered it
      this.rewardName = outcome.rewardName;
      this.trace = outcome.trace;
      this.choices.push({ label: `${outcome.method} (seed ${outcome.seed})`, best: outcome.best, rewardName: outcome.rewardName });
      this.finish('done');
      this.renderResult(outcome);
    } catch (e) {
      this.say(`The search failed: ${message(e)}`);
      this.finish('error');
    }
  }

  private onReport(r: SearchReport): void {
    if (r.phase === 'reference') {
      this.phase = `Certifying the stored model on the validation images: ${r.done} / ${r.total}`;
      this.progressBar.value = 0;
      this.searchStartedAt = performance.now();
    } else if (r.phase === 'hessian') {
      this.phase = `Estimating Hessian traces: layer ${r.done} / ${r.total}`;
      this.searchStartedAt = performance.now();
    } else if (r.phase === 'search') {
      this.phase = '';
      this.last = { episode: r.episode, episodes: r.episodes, bestReward: r.bestReward };
      this.root.dataset.episode = String(r.episode + 1);
      if (r.evaluated) this.trace.push(r.evaluated);
      this.progressBar.value = (r.episode + 1) / r.episodes;
      this.renderPlots();
    }
    this.renderProgress();
  }

  private renderProgress(ended?: string): void {
    const elapsed = (performance.now() - this.startedAt) / 1000;
    let text: string;
    if (this.last) {
      const { episode, episodes, bestReward } = this.last;
      const done = episode + 1;
      const perEpisode = (performance.now() - this.searchStartedAt) / 1000 / done;
      const eta = ended ? '' : `, about ${duration(perEpisode * (episodes - done))} left`;
      text = `Episode ${done} / ${episodes}, best ${this.rewardName} ${bestReward.toFixed(4)}; ${duration(elapsed)} elapsed${eta}`;
    } else {
      text = `${this.phase || 'Starting'}… ${duration(elapsed)} elapsed`;
    }
    this.progressText.textContent = ended ? `${ended}: ${text}.` : text;
  }

  private renderPlots(): void {
    const maxBops = this.space?.maxBops ?? 1;
    const choices = this.choices.filter((c) => c.rewardName === this.rewardName);
    this.curve.show(this.trace, this.rewardName);
    this.pareto.show(this.trace, choices, maxBops, this.rewardName);
  }

  private stop(): void {
    if (!this.runner.busy) return;
    this.runner.cancel();
    this.finish('cancelled');
  }

  private finish(status: 'done' | 'cancelled' | 'error'): void {
    window.clearInterval(this.ticker);
    this.root.dataset.status = status;
    this.start.disabled = this.space === null;
    this.cancel.disabled = true;
    if (status === 'done') this.progressBar.value = 1;
    this.renderProgress({ done: 'Done', cancelled: 'Cancelled', error: 'Failed' }[status]);
    this.renderPlots();
    if (status === 'cancelled') {
      this.say('Cancelled. The policies evaluated so far stay in the plots; start again for a new search.');
    }
  }

  private renderResult(o: SearchOutcome): void {
    const layers = this.model?.layers ?? [];
    const best = o.best;
    const table = document.createElement('table');
    table.id = 'search-policy';
    table.innerHTML = `<caption>Chosen policy (${o.method}, seed ${o.seed}), width per layer for weights and activations</caption>
      <thead><tr><th scope="col">layer</th><th scope="col">bits</th></tr></thead>`;
    const body = document.createElement('tbody');
    best.widths.forEach((w, i) => {
      const tr = document.createElement('tr');
      tr.innerHTML = `<th scope="row"></th><td>${w}</td>`;
      tr.querySelector('th')!.textContent = layers[i]?.name ?? `layer ${i}`;
      body.append(tr);
    });
    table.append(body);
    const facts = document.createElement('dl');
    facts.id = 'search-facts';
    facts.dataset.widths = best.widths.join(',');
    facts.dataset.bops = String(best.bops);
    facts.dataset.reward = String(best.reward);
    const hessian = o.hessian === 'estimated' ? ' (Hessian traces estimated here)' : o.hessian === 'stored' ? ' (stored Hessian traces)' : '';
    const items: [string, string][] = [
      ['BOPs per image', `${fmt(best.bops)} (${(best.bops / o.maxBops).toFixed(3)} of 8-bit; budget ${fmt(o.budget)})`],
      ['Weight size', `${fmt(best.sizeBytes)} bytes`],
      [`Reward (${o.rewardName})`, `${best.reward.toFixed(4)} on ${o.valSize} training images${hessian}`],
      ...(o.referenceAcr !== null ? [['Stored model (w8a8) ACR', o.referenceAcr.toFixed(4)] as [string, string]] : []),
      ['Found at', `episode ${best.episode + 1} of ${o.trace.length}`],
      ['Time', `${o.seconds.toFixed(1)} s`],
    ];
    for (const [k, v] of items) {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      facts.append(dt, dd);
    }
    const apply = document.createElement('button');
    apply.id = 'search-apply';
    apply.type = 'button';
    apply.textContent = 'Apply to Bits';
    apply.addEventListener('click', () => {
      this.store.update({ policy: { weightBits: [...best.widths], actBits: [...best.widths] } });
      document.querySelector('#bits-panel')?.scrollIntoView({ behavior: 'smooth', block: 'start' });
    });
    this.result.replaceChildren(table, facts, apply);
  }
}
