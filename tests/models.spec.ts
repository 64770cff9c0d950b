// End-to-end: what the Model panel says about the shipped int8 supernets, the Hessian traces
// beside the bit sliders, and that a float model file and certification runs stored before int8
// models still work.
import { expect, test, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { watch } from './helpers';

/** The `bitsmooth` metadata of a shipped model file, read here from its safetensors header
 * (8-byte little-endian length, then JSON), independently of the engine. */
function shippedMeta(file: string): { bits: number[]; supernet?: boolean; hessian_traces?: number[]; accuracy: Record<string, number> } {
  const bytes = readFileSync(`public/models/${file}`);
  const len = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + len).toString('utf8'));
  return JSON.parse(header.__metadata__.bitsmooth);
}

const bits = (page: Page) => page.locator('#bits-panel');

async function ready(page: Page, policy: string): Promise<void> {
  await expect(bits(page)).toHaveAttribute('data-policy', policy);
  await expect(bits(page)).toHaveAttribute('data-status', 'ready');
  await expect(page.locator('body')).toHaveAttribute('data-status', 'ready');
}

/** Serves the old float model (models/float/, not shipped) in place of MNIST σ = 0.25. */
async function serveFloatModel(page: Page): Promise<void> {
  await page.route('**/models/mnist-sigma0.25.safetensors', (route) =>
    route.fulfill({ path: 'models/float/mnist-sigma0.25.safetensors', contentType: 'application/octet-stream' }),
  );
}

/** The accuracy table's rows as [key, accuracy, shown text]. */
async function accuracyRows(page: Page): Promise<[string, number, string][]> {
  return page.locator('#model-accuracy tbody tr').evaluateAll((trs) =>
    trs.map((tr) => {
      const row = tr as HTMLElement;
      return [row.dataset.key!, Number(row.dataset.accuracy), row.querySelector('td')!.textContent!] as [string, number, string];
    }),
  );
}

test('the model panel lists the int8 supernet, its trained widths and the test accuracy of each', async ({ page }) => {
  const seen = watch(page);
  for (const [dataset, label, least] of [
    ['mnist', 'MNIST', 0.97],
    ['fashion', 'Fashion-MNIST', 0.8],
  ] as const) {
    await page.goto(`./#dataset=${dataset}&sigma=0.25`);
    await ready(page, 'w8a8');
    const kind = page.locator('#model-kind');
    await expect(kind).toHaveAttribute('data-kind', 'int8');
    await expect(kind).toHaveAttribute('data-bits', '8,6,4,2');
    await expect(kind).toContainText('int8 supernet');
    await expect(kind).toContainText('each layer at any of 8, 6, 4 and 2 bits');
    await expect(kind).toContainText(`Trained on ${label} with Gaussian noise σ = 0.25`);
    await expect(page.locator('#model-accuracy caption')).toContainText('full test set, 10,000 images');
    const rows = await accuracyRows(page);
    // the uniform widths first, widest first, then the mixed policies measured after training
    const meta = shippedMeta(`${dataset}-sigma0.25.safetensors`);
    const mixed = Object.keys(meta.accuracy).filter((k) => k.includes(','));
    expect(mixed.length).toBeGreaterThan(0);
    expect(rows.map(([k]) => k)).toEqual([...['8', '6', '4', '2'].map((b) => `w${b}a${b}`), ...mixed]);
    for (const [key, acc] of rows) expect(acc, key).toBe(meta.accuracy[key]);
    await expect(page.locator(`#model-accuracy tbody tr[data-key="${mixed[0]}"] th`)).toHaveText(`mixed ${mixed[0]}`);
    for (const [key, acc, text] of rows) {
      expect(acc, key).toBeGreaterThan(0.5);
      expect(acc, key).toBeLessThanOrEqual(1);
      expect(text).toBe(`${(100 * acc).toFixed(2)} %`);
    }
    expect(rows[0]![1]).toBeGreaterThan(least);
    await expect(page.locator('#model-accuracy tbody th').first()).toHaveText('w8a8 (stored)');
    const command = page.locator('#model-command');
    await expect(command).toContainText(`train --dataset ${dataset} --sigma 0.25`);
    await expect(command).toContainText('--supernet --bits 8,6,4,2 --lowest-too');
  }
  await page.locator('#model-panel').screenshot({ path: 'test-results/model-panel.png' });
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});

test('the Bits panel shows each layer\'s Hessian trace from the file, the sensitive ones marked', async ({ page }) => {
  const seen = watch(page);
  for (const dataset of ['mnist', 'fashion']) {
    await page.goto(`./#dataset=${dataset}&sigma=0.25`);
    await ready(page, 'w8a8');
    const traces = shippedMeta(`${dataset}-sigma0.25.safetensors`).hessian_traces!;
    expect(traces).toHaveLength(8);
    const mean = traces.reduce((a, b) => a + b, 0) / traces.length;
    const cells = page.locator('#bits-layers tbody td.trace');
    await expect(cells).toHaveCount(8);
    const shown = await cells.evaluateAll((tds) => tds.map((td) => [Number((td as HTMLElement).dataset.trace), (td as HTMLElement).dataset.sensitive]));
    // the engine parses the metadata's JSON itself (within an ulp of JavaScript's parse)
    shown.forEach(([t, sensitive], i) => {
      expect(Math.abs((t as number) - traces[i]!), `layer ${i}`).toBeLessThanOrEqual(1e-12 * Math.abs(traces[i]!));
      expect(sensitive, `layer ${i}`).toBe(String(traces[i]! >= mean));
    });
    // the largest trace fills its bar; a sensitive layer says so in words too
    const largest = traces.indexOf(Math.max(...traces));
    const bar = cells.nth(largest).locator('.trace-bar');
    await expect(bar).toHaveClass(/sensitive/);
    await expect(bar).toHaveAttribute('style', /width: 100%/);
    await expect(cells.nth(largest)).toContainText('sensitive');
    // Hutchinson's estimate can come out negative (Fashion's stem): its bar stays empty
    for (const [i, t] of traces.entries()) {
      if (t < 0) await expect(cells.nth(i).locator('.trace-bar')).toHaveAttribute('style', /width: 0%/);
    }
    await expect(page.locator('#bits-intro')).toContainText('This model is a supernet (HASB)');
  }
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});

test('the multi-bit model ships beside the supernet: chosen in the Model panel, kept in the link, any width, its own certification runs', async ({ page }) => {
  const seen = watch(page);
  await page.goto('./#dataset=mnist&sigma=0.25&model=multibit&n=100&count=2');
  await ready(page, 'w8a8');
  const kind = page.locator('#model-kind');
  await expect(page.locator('#training')).toHaveValue('multibit');
  await expect(kind).toHaveAttribute('data-bits', '8,6,4,2');
  await expect(kind).toContainText('int8 multi-bit model');
  await expect(kind).toContainText('trained jointly at 8, 6, 4 and 2 bits');
  // the table is the multi-bit file's own (read here from its header), e.g. its w2a2
  const meta = shippedMeta('multibit/mnist-sigma0.25.safetensors');
  expect(meta.supernet).toBeFalsy();
  const rows = await accuracyRows(page);
  expect(rows.map(([k]) => k)).toEqual(['w8a8', 'w6a6', 'w4a4', 'w2a2']);
  for (const [key, acc] of rows) expect(acc, key).toBe(meta.accuracy[key]);
  // no Hessian traces in that file; every width 2..8 derives by Double Rounding (step 1)
  await expect(page.locator('#bits-layers tbody td.trace').first()).toHaveText('–');
  await expect(page.locator('#bits-w-3')).toHaveAttribute('step', '1');
  await page.locator('#bits-global').fill('5');
  await ready(page, 'w5a5');
  await expect(page).toHaveURL(/model=multibit/);

  // a certification run of this model is labelled as such and kept apart from the supernet's
  await page.locator('#certify-run').click();
  await expect(page.locator('#certify-panel')).toHaveAttribute('data-status', 'completed');
  await expect(page.locator('#certify-runs')).toContainText('w5a5 of the multi-bit model');

  // back to the supernet: the link drops the parameter, the 5-bit policy moves to 6 bits
  await page.locator('#training').selectOption('supernet');
  await ready(page, 'w6a6');
  await expect(kind).toContainText('int8 supernet');
  await expect(page).not.toHaveURL(/model=/);
  await expect(page.locator('#banner')).toContainText('w5a5 became w6a6');
  await page.locator('#certify-run').click();
  await expect(page.locator('#certify-panel')).toHaveAttribute('data-status', 'completed');
  await expect(page.locator('#certify-runs tbody tr')).toHaveCount(2);
  await expect(page.locator('#certify-runs')).toContainText('w6a6, n=100');
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});

test('a float model file still loads: a Float preset, calibrated activations, float wording', async ({ page }) => {
  const seen = watch(page);
  await serveFloatModel(page);
  await page.goto('./#dataset=mnist&sigma=0.25&n=200&count=2');
  await ready(page, 'float');
  await expect(page.locator('#model-kind')).toHaveAttribute('data-kind', 'float');
  expect((await accuracyRows(page)).map(([k]) => k)).toEqual(['float']);
  await expect(page.locator('#bits-intro')).toContainText('calibrated on training images');
  // the float file stores no Hessian traces: the column says so instead of drawing bars
  await expect(page.locator('#bits-layers tbody td.trace').first()).toHaveText('–');
  await expect(page.locator('#bits-layers tbody .trace-bar')).toHaveCount(0);
  const floatButton = page.getByRole('button', { name: 'Float', exact: true });
  await expect(floatButton).toBeVisible();
  await expect(floatButton).toHaveAttribute('aria-pressed', 'true');
  await expect(page.getByRole('button', { name: 'w8a8' })).toHaveText('w8a8');
  await expect(page.locator('#bits-global-value')).toHaveText('float');
  await expect(page.locator('#bits-bops')).toContainText('same as 32-bit float');
  await expect(page.locator('#bits-accuracy')).toContainText('Accuracy at float');
  // a float model is its own float run: only an int8 model offers the float model it was trained from
  await expect(page.locator('#certify-float')).toBeHidden();

  await page.getByRole('button', { name: 'w4a4' }).click();
  await ready(page, 'w4a4');
  // 2,227,011,584 / 41,119,232 = 54.2: the stem multiplies the float image + noise
  await expect(page.locator('#bits-bops')).toContainText('54× smaller than 32-bit float');
  await expect(page.locator('#certify-irs')).toBeVisible();
  await page.locator('#certify-irs').check();
  await expect(page.locator('#certify-irs-note')).toContainText('IRS certifies the float model with n samples');
  await page.locator('#certify-run').click();
  await expect(page.locator('#certify-panel')).toHaveAttribute('data-status', 'completed');
  await expect(page.locator('#certify-table thead')).toContainText('float seconds');
  await expect(page.locator('#certify-irs-times')).toContainText("float model's CERTIFY");

  await floatButton.click();
  await ready(page, 'float');
  await expect(page).not.toHaveURL(/w=/);
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});

/** A run as the page stored it before int8 models: no kind, and no policy for the float model. */
function legacyRun(policy?: { weightBits: number[]; actBits: number[] }) {
  const row = (idx: number, label: number) => ({
    idx,
    label,
    predict: label,
    radius: 0.5,
    correct: true,
    time: 0.1,
    nA: 195,
    n: 200,
    pA: 0.98,
    cHat: label,
    counts: Array.from({ length: 10 }, (_, c) => (c === label ? 195 : c === 0 ? 5 : 0)),
    sigma: 0.25,
    seed: 0,
  });
  return {
    dataset: 'mnist',
    sigma: '0.25',
    settings: { n0: 100, n: 200, alpha: 0.001, count: 2, seed: 0 },
    ...(policy ? { policy, nChi: null } : {}),
    workers: 2,
    rows: [row(0, 7), row(1, 2)],
    status: 'completed',
    elapsed: 1.5,
    started: '2025-11-20T12:00:00.000Z',
  };
}

test('certification runs stored before int8 models still load, labelled as the float runs they were', async ({ page }) => {
  const seen = watch(page);
  const base = 'bitsmooth:certify:mnist/0.25/n0=100/n=200/alpha=0.001/count=2/seed=0';
  const w4 = { weightBits: Array<number>(8).fill(4), actBits: Array<number>(8).fill(4) };
  await page.addInitScript(
    ([base, float, quantized]) => {
      if (localStorage.getItem(`${base}`)) return;
      localStorage.setItem(base!, float!);
      localStorage.setItem(`${base}/w4a4`, quantized!);
      localStorage.setItem('bitsmooth:certify:index', JSON.stringify([base, `${base}/w4a4`]));
    },
    [base, JSON.stringify(legacyRun()), JSON.stringify(legacyRun(w4))],
  );
  // the int8 model is another model: the float run is not shown as its result
  await page.goto('./#dataset=mnist&sigma=0.25&n=200&count=2');
  await ready(page, 'w8a8');
  await expect(page.locator('#certify-run-info')).toHaveText('No certification run yet.');
  await expect(page.locator('#certify-run')).toBeEnabled();

  // with the float model they were made with, both restore under their old labels
  await serveFloatModel(page);
  await page.reload();
  await ready(page, 'float');
  const info = page.locator('#certify-run-info');
  await expect(info).toHaveAttribute('data-restored', 'true');
  await expect(info).toContainText('MNIST σ=0.25, n0=100, n=200');
  await expect(page.locator('#certify-plot .u-legend')).toContainText('MNIST σ=0.25, n=200, seed 0 (2 images) (restored)');
  await expect(page.locator('#certify-table tbody tr')).toHaveCount(2);

  await page.getByRole('button', { name: 'w4a4' }).click();
  await ready(page, 'w4a4');
  await expect(info).toContainText('MNIST σ=0.25 w4a4, n0=100, n=200');
  await expect(page.locator('#certify-plot')).toHaveAttribute('data-series', '2');
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});
