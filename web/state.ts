// The one piece of UI state a visitor changes. It lives in the URL hash so that links are
// shareable and a reload restores the view; parsing validates every field and reports what
// it had to ignore.
import { DATASETS, SIGMAS, type DatasetName, type Sigma } from './types';

export type Filter = 'all' | 'wrong';

export interface State {
  dataset: DatasetName;
  sigma: Sigma;
  /** Page of the prediction grid (0-based). */
  page: number;
  filter: Filter;
  /** Selected test image (index into the shipped subset). */
  selected: number;
}

export const DEFAULT_STATE: State = { dataset: 'mnist', sigma: '0.25', page: 0, filter: 'all', selected: 0 };

const MAX_INDEX = 100_000;

function parseIndex(v: string): number | null {
  if (!/^\d{1,6}$/.test(v)) return null;
  const n = Number(v);
  return n <= MAX_INDEX ? n : null;
}

/** Parses `#dataset=…&sigma=…`; returns the state and the parameters that were ignored. */
export function parseHash(hash: string): { state: State; ignored: string[] } {
  const state: State = { ...DEFAULT_STATE };
  const ignored: string[] = [];
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(hash.replace(/^#/, ''));
  } catch {
    return { state, ignored: [hash] };
  }
  for (const [key, value] of params) {
    switch (key) {
      case 'dataset':
        if (value in DATASETS) state.dataset = value as DatasetName;
        else ignored.push(`${key}=${value}`);
        break;
      case 'sigma':
        if ((SIGMAS as readonly string[]).includes(value)) state.sigma = value as Sigma;
        else ignored.push(`${key}=${value}`);
        break;
      case 'page':
      case 'selected': {
        const n = parseIndex(value);
        if (n === null) ignored.push(`${key}=${value}`);
        else state[key] = n;
        break;
      }
      case 'filter':
        if (value === 'all' || value === 'wrong') state.filter = value;
        else ignored.push(`${key}=${value}`);
        break;
      default:
        ignored.push(`${key}=${value}`);
    }
  }
  return { state, ignored };
}

export function toHash(s: State): string {
  const p = new URLSearchParams({
    dataset: s.dataset,
    sigma: s.sigma,
    page: String(s.page),
    filter: s.filter,
    selected: String(s.selected),
  });
  return `#${p.toString()}`;
}

type Listener = (state: State, previous: State) => void;

/** A tiny observable store; panels subscribe and render from the state. */
export class Store {
  private listeners: Listener[] = [];
  constructor(public state: State) {}

  subscribe(fn: Listener): void {
    this.listeners.push(fn);
  }

  update(patch: Partial<State>): void {
    const previous = this.state;
    this.state = { ...previous, ...patch };
    history.replaceState(null, '', toHash(this.state));
    for (const fn of this.listeners) fn(this.state, previous);
  }
}
