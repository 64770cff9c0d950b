// A run as files a visitor can keep: CSV with Cohen et al.'s columns (plus nA n), and JSON
// with the settings, summary and full rows.
import { acr, certifiedAccuracy, REPORT_RADII } from './metrics';
import { modelLabel, modelTitle, runModel, type CertifyRun } from './run';
import { modelUrl } from '../types';

/** `idx,label,predict,radius,correct,time,nA,n`; an abstention is predict = -1. */
export function runCsv(run: CertifyRun): string {
  const lines = run.rows.map((r) =>
    [r.idx, r.label, r.predict ?? -1, r.radius, r.correct ? 1 : 0, r.time, r.nA, r.n].join(','),
  );
  return ['idx,label,predict,radius,correct,time,nA,n', ...lines].join('\n') + '\n';
}

/** The settings, what was certified (`model`: the label legends show, `modelFile`: the file the
 * workers loaded, e.g. `models/float/…` for the float model an int8 model was trained from), the
 * summary and the rows. */
export function runJson(run: CertifyRun): string {
  const accuracy = certifiedAccuracy(run.rows, REPORT_RADII);
  const m = runModel(run);
  return JSON.stringify(
    {
      dataset: run.dataset,
      sigma: Number(run.sigma),
      ...run.settings,
      model: modelTitle(m) || 'float',
      modelFile: modelUrl(run.dataset, run.sigma, m.variant ?? undefined),
      ...m,
      workers: run.workers,
      // where it ran (each row also says: "backend": "webgpu" or "cpu")
      ranOn: run.ranOn ?? `CPU · ${run.workers} worker${run.workers > 1 ? 's' : ''}`,
      ...(run.fallback ? { fallback: run.fallback } : {}),
      status: run.status,
      started: run.started,
      elapsedSeconds: run.elapsed,
      acr: acr(run.rows),
      // "0.00", not "0": integer-like keys would be listed before the others
      certifiedAccuracy: Object.fromEntries(REPORT_RADII.map((r, i) => [r.toFixed(2), accuracy[i]])),
      rows: run.rows,
    },
    null,
    2,
  );
}

/** File name stem, e.g. `bitsmooth-certify-mnist-sigma0.25-n1000-seed0` (`-w4a4-irs-nchi100`
 * for a quantized model, `-float-before-int8` for the float model an int8 model was trained
 * from). */
export function runFileName(run: CertifyRun): string {
  const model = modelLabel(runModel(run)).replace(/ IRS n_χ=/, '-irs-nchi').replace(/,/g, '');
  return `bitsmooth-certify-${run.dataset}-sigma${run.sigma}${model ? `-${model}` : ''}-n${run.settings.n}-seed${run.settings.seed}`;
}
