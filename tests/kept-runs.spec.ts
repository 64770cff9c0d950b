// End-to-end: runs that last (issue 14, item 5): every run kept across reloads and listed
// whatever the settings, deletable; export and import of all runs; the configuration in the URL.
import { readFile } from 'node:fs/promises';
import { expect, test, type Page } from '@playwright/test';
import { watch } from './helpers';

const panel = (page: Page) => page.locator('#certify-panel');
const listRows = (page: Page) => page.locator('#certify-runs tbody tr');

async function ready(page: Page): Promise<void> {
  await expect(page.locator('body')).toHaveAttribute('data-status', 'ready');
}

async function certify(page: Page): Promise<void> {
  await page.locator('#certify-run').click();
  await expect(panel(page)).toHaveAttribute('data-status', 'completed');
}

async function exportAll(page: Page): Promise<string> {
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#certify-runs-export').click()]);
  expect(download.suggestedFilename()).toBe('bitsmooth-certify-runs.json');
  return readFile(await download.path(), 'utf8');
}

test('every run is kept across reloads, listed whatever the dataset and settings, and deletable', async ({ page }) => {
  const seen = watch(page);
  await page.goto('./#dataset=fashion&n=200&count=2&seed=3');
  await ready(page);
  await certify(page);
  await page.goto('./#dataset=mnist&n=200&count=2&seed=1');
  await ready(page);
  await certify(page);
  await page.locator('#cert-seed').fill('2');
  await page.locator('#cert-seed').press('Enter');
  await certify(page);
  await expect(listRows(page)).toHaveCount(3);

  // other settings, no run for them: all three are still listed after a reload
  await page.goto('./#dataset=mnist&n=300&count=2&seed=9');
  await page.reload();
  await ready(page);
  await expect(listRows(page)).toHaveCount(3);
  await expect(page.locator('#certify-runs')).toContainText('Fashion-MNIST σ=0.25 w8a8 (stored int8), n=200, seed 3 (2 images) (restored)');
  await expect(page.locator('#certify-runs')).toContainText('MNIST σ=0.25 w8a8 (stored int8), n=200, seed 1 (2 images) (restored)');
  // the plot overlays the loaded dataset's runs only
  await expect(page.locator('#certify-plot')).toHaveAttribute('data-series', '2');

  // open one: its settings become the page's, and it shows
  await listRows(page).filter({ hasText: 'seed 1' }).getByRole('button', { name: /^Open/ }).click();
  await expect(page).toHaveURL(/n=200&alpha=0\.001&count=2&seed=1/);
  await expect(page.locator('#certify-run-info')).toContainText('seed 1');

  const del = listRows(page).filter({ hasText: 'seed 2' }).getByRole('button', { name: /^Delete/ });
  await del.click();
  await expect(listRows(page)).toHaveCount(2);
  await expect(page.locator('#certify-plot')).toHaveAttribute('data-series', '1');
  await page.reload();
  await ready(page);
  await expect(listRows(page)).toHaveCount(2);
  await expect(page.locator('#certify-runs')).not.toContainText('seed 2');
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});

test('export → import of every run gives back the same runs, kept across a reload', async ({ page }) => {
  const seen = watch(page);
  await page.goto('./#n=200&count=2&seed=0');
  await ready(page);
  await certify(page);
  await page.getByRole('button', { name: 'w4a4' }).click();
  await expect(page.locator('#bits-panel')).toHaveAttribute('data-policy', 'w4a4');
  await ready(page);
  await page.locator('#certify-irs').check();
  await certify(page);
  await expect(listRows(page)).toHaveCount(2);
  const original = await exportAll(page);
  const parsed = JSON.parse(original) as { format: string; version: number; runs: { rows: unknown[] }[] };
  expect(parsed.format).toBe('bitsmooth-certify-runs');
  expect(parsed.runs).toHaveLength(2);
  expect(parsed.runs.every((r) => r.rows.length === 2)).toBe(true);

  // delete everything, then import the file
  for (let n = 2; n > 0; n--) {
    await listRows(page).first().getByRole('button', { name: /^Delete/ }).click();
    await expect(listRows(page)).toHaveCount(n - 1);
  }
  await page.reload();
  await ready(page);
  await expect(listRows(page)).toHaveCount(0);
  await page.locator('#certify-runs-import').setInputFiles({
    name: 'runs.json',
    mimeType: 'application/json',
    buffer: Buffer.from(original),
  });
  await expect(page.locator('#banner')).toContainText('Imported 2 runs from runs.json');
  await expect(listRows(page)).toHaveCount(2);
  expect(JSON.parse(await exportAll(page))).toEqual(JSON.parse(original));
  await page.reload();
  await ready(page);
  await expect(listRows(page)).toHaveCount(2);
  expect(JSON.parse(await exportAll(page))).toEqual(JSON.parse(original));

  // a file of another kind is refused with a reason
  await page.locator('#certify-runs-import').setInputFiles({ name: 'x.json', mimeType: 'application/json', buffer: Buffer.from('{"a":1}') });
  await expect(page.locator('#banner')).toContainText('Could not import x.json: the file is not a list of runs exported by this page');
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});

test('the whole configuration is in the URL, down to the histogram layer', async ({ page }) => {
  await page.goto('./#layer=7');
  await ready(page);
  await expect(page.locator('#bits-hist-layer')).toHaveValue('7');
  await expect(page.locator('#bits-histogram')).toHaveAttribute('data-layer', 'fc');
  await page.selectOption('#bits-hist-layer', '3');
  await expect(page).toHaveURL(/layer=3(&|$)/);
  await page.getByRole('button', { name: 'w4a4' }).click();
  await expect(page.locator('#bits-panel')).toHaveAttribute('data-policy', 'w4a4');
  await page.locator('#certify-irs').check();
  await page.selectOption('#filter', 'wrong');
  await page.locator('#cert-n').fill('300');
  await page.locator('#cert-n').press('Enter');
  const url = new URL(page.url());
  const keys = [...new URLSearchParams(url.hash.slice(1)).keys()];
  for (const key of ['dataset', 'sigma', 'page', 'filter', 'selected', 'n0', 'n', 'alpha', 'count', 'seed', 'workers', 'w', 'a', 'irs', 'layer']) {
    expect(keys, key).toContain(key);
  }
  await page.reload();
  await ready(page);
  await expect(page.locator('#bits-hist-layer')).toHaveValue('3');
  await expect(page.locator('#filter')).toHaveValue('wrong');
  await expect(page.locator('#cert-n')).toHaveValue('300');
  await expect(page.locator('#certify-irs')).toBeChecked();
  await expect(page.locator('#bits-panel')).toHaveAttribute('data-policy', 'w4a4');
});
