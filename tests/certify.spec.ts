// End-to-end: randomized-smoothing certification in the page, over the worker pool.
import { readFile } from 'node:fs/promises';
import { expect, test, type Page } from '@playwright/test';
import { watch } from './helpers';

const panel = (page: Page) => page.locator('#certify-panel');
const rows = (page: Page) => page.locator('#certify-table tbody tr');

/** Opens a link and waits until the grid's model is loaded (the panel then knows the subset size). */
async function open(page: Page, hash: string): Promise<void> {
  await page.goto(`./${hash}`);
  await expect(page.locator('body')).toHaveAttribute('data-status', 'ready');
}

async function certify(page: Page): Promise<void> {
  await page.locator('#certify-run').click();
  await expect(panel(page)).toHaveAttribute('data-status', 'completed');
}

/** nA of every certified image, by index. */
async function counts(page: Page): Promise<Record<string, string>> {
  const pairs = await rows(page).evaluateAll((trs) =>
    trs.map((tr) => [(tr as HTMLElement).dataset.idx!, (tr as HTMLElement).dataset.na!]),
  );
  return Object.fromEntries(pairs);
}

test('certifies the first images over the worker pool: rows, ACR, the curve, CSV export', async ({ page }) => {
  const seen = watch(page);
  await open(page, '#dataset=mnist&sigma=0.25&n=200&count=5&seed=0');
  await expect(page.locator('#cert-seed')).toHaveValue('0');
  await certify(page);
  await expect(rows(page)).toHaveCount(5);
  await expect(page.locator('#certify-progress-label')).toContainText('Completed: 5 / 5 images');
  const acr = Number(await page.locator('#certify-summary').getAttribute('data-acr'));
  expect(acr).toBeGreaterThan(0);
  await expect(page.locator('#certify-summary')).toContainText(`ACR ${acr.toFixed(3)}`);
  await expect(page.locator('#certify-plot')).toHaveAttribute('data-series', '1');
  await expect(page.locator('#certify-plot .uplot canvas')).toBeVisible();
  await expect(page.locator('#certify-plot .u-legend')).toContainText('MNIST σ=0.25 w8a8 (stored int8), n=200, seed 0 (5 images)');
  await expect(page.locator('#certify-run-info')).toContainText('MNIST σ=0.25 w8a8 (stored int8), n0=100');

  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#certify-csv').click()]);
  expect(download.suggestedFilename()).toBe('bitsmooth-certify-mnist-sigma0.25-w8a8-n200-seed0.csv');
  const csv = (await readFile(await download.path(), 'utf8')).trim().split('\n');
  expect(csv[0]).toBe('idx,label,predict,radius,correct,time,nA,n');
  expect(csv).toHaveLength(6);
  expect(csv.slice(1).map((line) => line.split(',')[0])).toEqual(['0', '1', '2', '3', '4']);
  expect(csv.slice(1).every((line) => line.split(',')[7] === '200')).toBe(true);
  const [jsonDownload] = await Promise.all([page.waitForEvent('download'), page.locator('#certify-json').click()]);
  const json = JSON.parse(await readFile(await jsonDownload.path(), 'utf8')) as {
    acr: number;
    seed: number;
    kind: string;
    policy: unknown;
    rows: unknown[];
  };
  expect(json.acr).toBeCloseTo(acr, 12);
  expect(json.kind).toBe('int8');
  expect(json.policy).toBeNull(); // the stored model
  expect(json.seed).toBe(0);
  expect(json.rows).toHaveLength(5);

  await page.locator('#certify-panel').screenshot({ path: 'test-results/certify-panel.png' });
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});

test('certifies the float model the int8 model was trained from: its own run, label, rows, export; both curves overlaid', async ({
  page,
}) => {
  const seen = watch(page);
  const floatFetches: string[] = [];
  page.on('request', (req) => {
    if (req.url().includes('/models/float/')) floatFetches.push(new URL(req.url()).pathname);
  });
  await open(page, '#dataset=mnist&sigma=0.25&n=200&count=3&seed=0');
  const floatButton = page.getByRole('button', { name: 'Certify the float model' });
  await expect(floatButton).toBeEnabled();
  await expect(floatButton).toHaveAttribute('aria-description', /float model this int8 model was trained from/);
  await certify(page);
  await expect(rows(page)).toHaveCount(3);
  expect(floatFetches).toEqual([]); // the int8 run does not need the float file

  const info = page.locator('#certify-run-info');
  await floatButton.focus();
  await page.keyboard.press('Enter');
  await expect(info).toContainText('MNIST σ=0.25 float (before int8 training), n0=100, n=200');
  await expect(info).toContainText('completed, 3 of 3 requested images');
  await expect(floatButton).toBeFocused(); // back from Cancel to the button that started the run
  expect(floatFetches.length).toBeGreaterThan(0);
  expect(floatFetches.every((path) => path.endsWith('/models/float/mnist-sigma0.25.safetensors'))).toBe(true);
  expect(Object.keys(await counts(page))).toEqual(['0', '1', '2']);
  await expect(page.locator('#certify-plot')).toHaveAttribute('data-series', '2');
  const legend = page.locator('#certify-plot .u-legend');
  await expect(legend).toContainText('MNIST σ=0.25 w8a8 (stored int8), n=200, seed 0 (3 images)');
  await expect(legend).toContainText('MNIST σ=0.25 float (before int8 training), n=200, seed 0 (3 images)');

  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#certify-csv').click()]);
  expect(download.suggestedFilename()).toBe('bitsmooth-certify-mnist-sigma0.25-float-before-int8-n200-seed0.csv');
  expect((await readFile(await download.path(), 'utf8')).trim().split('\n')).toHaveLength(4);
  const [jsonDownload] = await Promise.all([page.waitForEvent('download'), page.locator('#certify-json').click()]);
  const json = JSON.parse(await readFile(await jsonDownload.path(), 'utf8')) as Record<string, unknown>;
  expect(json).toMatchObject({
    model: 'float (before int8 training)',
    modelFile: 'models/float/mnist-sigma0.25.safetensors',
    kind: 'float',
    variant: 'float',
    policy: null,
    nChi: null,
  });
  await panel(page).screenshot({ path: 'test-results/certify-float.png' });

  // a reload restores both: the int8 run in the table, the float run beside it in the plot
  await page.reload();
  await expect(info).toHaveAttribute('data-restored', 'true');
  await expect(info).toContainText('MNIST σ=0.25 w8a8 (stored int8), n0=100');
  await expect(page.locator('#certify-plot')).toHaveAttribute('data-series', '2');
  await expect(legend).toContainText('float (before int8 training), n=200, seed 0 (3 images) (restored)');
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});

test('the same seed gives identical counts; another seed is overlaid; a reload restores the run', async ({ page }) => {
  const seen = watch(page);
  await open(page, '#n=200&count=4&seed=7');
  await certify(page);
  const first = await counts(page);
  expect(Object.keys(first)).toEqual(['0', '1', '2', '3']);
  await certify(page);
  expect(await counts(page)).toEqual(first);
  await expect(page.locator('#certify-plot')).toHaveAttribute('data-series', '1'); // a rerun replaces its curve

  await page.locator('#cert-seed').fill('8');
  await page.locator('#cert-seed').press('Enter');
  await expect(page).toHaveURL(/seed=8/);
  await certify(page);
  await expect(page.locator('#certify-plot')).toHaveAttribute('data-series', '2');
  await expect(page.locator('#certify-plot .u-legend')).toContainText('seed 7');
  await expect(page.locator('#certify-plot .u-legend')).toContainText('seed 8');

  await page.goto('./#n=200&count=4&seed=7');
  await page.reload();
  await expect(page.locator('#certify-run-info')).toContainText('restored');
  await expect(page.locator('#certify-run-info')).toHaveAttribute('data-restored', 'true');
  await expect(panel(page)).toHaveAttribute('data-status', 'completed');
  expect(await counts(page)).toEqual(first);
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});

test('cancel stops a long run at once, keeps the rows received, and the next run works', async ({ page }) => {
  const seen = watch(page);
  await open(page, '#n=2000&count=60');
  await page.locator('#certify-run').focus();
  await page.keyboard.press('Enter');
  await expect(panel(page)).toHaveAttribute('data-status', 'running');
  await expect(page.locator('#certify-progress-label')).toContainText('left');
  await expect(page.locator('#certify-cancel')).toBeFocused();
  await expect.poll(() => rows(page).count()).toBeGreaterThanOrEqual(2);
  const clicked = Date.now();
  await page.keyboard.press('Enter');
  await expect(panel(page)).toHaveAttribute('data-status', 'cancelled', { timeout: 2_000 });
  expect(Date.now() - clicked).toBeLessThan(2_000);
  const kept = await rows(page).count();
  expect(kept).toBeGreaterThanOrEqual(2);
  expect(kept).toBeLessThan(60);
  await expect(page.locator('#certify-progress-label')).toContainText(`Cancelled: ${kept} / 60 images`);
  await expect(page.locator('#certify-run-info')).toContainText(`cancelled, ${kept} of 60`);
  await expect(page.locator('#certify-cancel')).toBeDisabled();

  // the pool respawns its workers for the next run
  await page.locator('#cert-n').fill('200');
  await page.locator('#cert-count').fill('2');
  await page.locator('#cert-count').press('Enter');
  await certify(page);
  await expect(rows(page)).toHaveCount(2);
  await expect(page.locator('#certify-plot')).toHaveAttribute('data-series', '2'); // the cancelled run stays
  expect(seen.errors).toEqual([]);
});

test('changing the dataset cancels a running certification', async ({ page }) => {
  await open(page, '#n=2000&count=60');
  await page.locator('#certify-run').click();
  await expect(panel(page)).toHaveAttribute('data-status', 'running');
  await page.selectOption('#dataset', 'fashion');
  await expect(panel(page)).toHaveAttribute('data-status', 'cancelled');
  await expect(page.locator('#certify-run')).toBeEnabled();
});

test('certifying the selected image shows its radius, class counts and 8 noisy copies', async ({ page }) => {
  const seen = watch(page);
  await open(page, '#selected=3&n=500');
  await expect(page.locator('#certify-selected')).toHaveText('Certify the selected image (#3)');
  await page.locator('#certify-selected').focus();
  await page.keyboard.press('Enter');
  const view = page.locator('#certify-selected-view');
  await expect(view).toHaveAttribute('data-status', 'done');
  await expect(view.locator('#selected-noisy canvas')).toHaveCount(8);
  expect(Number(await page.locator('#selected-radius').textContent())).toBeGreaterThan(0);
  await expect(view.locator('#selected-counts li')).toHaveCount(10);
  await expect(view).toContainText('σ = 0.25 (seed 0)');
  await view.screenshot({ path: 'test-results/certify-selected.png' });
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});

test('an engine error shows in the banner and the panel stays usable', async ({ page }) => {
  // the workers fail to load a corrupt float model (a selected image past the subset no longer
  // reaches the engine: the page resets it)
  await page.route('**/models/float/mnist-sigma0.25.safetensors', (route) =>
    route.fulfill({ status: 200, body: 'this is not a model' }),
  );
  await open(page, '#n=200&count=2');
  await page.locator('#certify-float').click();
  await expect(panel(page)).toHaveAttribute('data-status', 'error');
  await expect(page.locator('#banner')).toContainText('Certification failed');
  await certify(page);
  await expect(rows(page)).toHaveCount(2);
});

test('bad certification settings fall back to defaults with a notice; invalid input blocks, large input warns', async ({
  page,
}) => {
  const seen = watch(page);
  await open(page, '#n=-5&alpha=2&seed=x&workers=999');
  await expect(page.locator('#banner')).toContainText('Ignored invalid link parameters');
  await expect(page.locator('#banner')).toContainText('n=-5');
  await expect(page.locator('#banner')).toContainText('alpha=2');
  await expect(page.locator('#banner')).toContainText('workers=999');
  await expect(page.locator('#cert-n')).toHaveValue('1000');
  await expect(page.locator('#cert-alpha')).toHaveValue('0.001');
  await expect(page).toHaveURL(/n=1000&alpha=0.001/);

  await page.locator('#cert-n0').fill('0');
  await page.locator('#cert-n0').press('Enter');
  await expect(page.locator('#certify-run')).toBeDisabled();
  await expect(page.locator('#certify-warning')).toContainText('Fix n0');
  await page.locator('#cert-n0').fill('100');
  await page.locator('#cert-n0').press('Enter');
  await expect(page.locator('#certify-run')).toBeEnabled();

  await page.locator('#cert-n').fill('20000');
  await page.locator('#cert-n').press('Enter');
  await expect(page.locator('#certify-warning')).toContainText('may take minutes');
  expect(seen.errors).toEqual([]);
});
