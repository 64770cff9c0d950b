// End-to-end: the "small bugs" of issue 14, one test each (each failed before its fix).
import { readFile } from 'node:fs/promises';
import { expect, test, type Page } from '@playwright/test';
import { watch } from './helpers';

const panel = (page: Page) => page.locator('#certify-panel');
const legend = (page: Page) => page.locator('#certify-plot .u-legend');

async function open(page: Page, hash: string): Promise<void> {
  await page.goto(`./${hash}`);
  await expect(page.locator('body')).toHaveAttribute('data-status', 'ready');
}

async function certify(page: Page): Promise<void> {
  await page.locator('#certify-run').click();
  await expect(panel(page)).toHaveAttribute('data-status', 'completed');
}

async function setField(page: Page, id: string, value: string): Promise<void> {
  await page.locator(id).fill(value);
  await page.locator(id).press('Enter');
}

test('a selected image beyond the 1,000 shipped ones is ignored with a notice naming the limit', async ({ page }) => {
  const seen = watch(page);
  await open(page, '#selected=5000');
  await expect(page.locator('#banner')).toContainText('selected=5000');
  await expect(page.locator('#banner')).toContainText('1,000');
  await expect(page).toHaveURL(/selected=0(&|$)/);
  await expect(page.locator('#certify-selected')).toHaveText('Certify the selected image (#0)');
  expect(seen.errors).toEqual([]);
});

test('a page beyond the last is shown as the last page and the link says so', async ({ page }) => {
  await open(page, '#page=999');
  // 1,000 images, 100 a page: the last page is page 10, index 9
  await expect(page.locator('#pager')).toContainText('page 10 of 10');
  await expect(page).toHaveURL(/page=9(&|$)/);
  await expect(page.locator('.tile').first()).toHaveAttribute('data-index', '900');
});

test('sigma=0.50 in a link is read as the σ = 0.5 model and written back canonically', async ({ page }) => {
  const seen = watch(page);
  await open(page, '#sigma=0.50');
  await expect(page.locator('#banner')).toBeHidden();
  await expect(page.locator('#sigma')).toHaveValue('0.5');
  await expect(page).toHaveURL(/sigma=0\.5(&|$)/);
  await expect(page.locator('#model-info')).toContainText('σ = 0.5');
  expect(seen.errors).toEqual([]);
});

test('workers=64 is clamped to what the device allows, with a notice naming the limit', async ({ page }) => {
  await open(page, '#workers=64');
  const cores = await page.evaluate(() => Math.max(1, navigator.hardwareConcurrency || 1));
  await expect(page.locator('#banner')).toContainText('workers=64');
  await expect(page.locator('#banner')).toContainText(`at most ${cores}`);
  await expect(page.locator('#cert-workers')).toHaveValue(String(cores));
  await expect(page).toHaveURL(new RegExp(`workers=${cores}(&|$)`));
});

test('certify fields accept 1e3, canonicalise it, and say the allowed range when a value is out of it', async ({ page }) => {
  await open(page, '#n=200');
  await setField(page, '#cert-n', '1e3');
  await expect(page).toHaveURL(/n=1000(&|$)/);
  await expect(page.locator('#cert-n')).toHaveValue('1000');
  await expect(page.locator('#certify-run')).toBeEnabled();

  await setField(page, '#cert-n0', '0');
  await expect(page.locator('#certify-run')).toBeDisabled();
  await expect(page.locator('#certify-warning')).toContainText('n0 must be a whole number from 1 to 10,000,000');
  await setField(page, '#cert-n0', '2.5');
  await expect(page.locator('#certify-warning')).toContainText('n0 must be a whole number from 1 to 10,000,000 (got 2.5)');
  await setField(page, '#cert-alpha', '1.5');
  await expect(page.locator('#certify-warning')).toContainText('α must be a number between 0 and 1, exclusive (got 1.5)');
  await setField(page, '#cert-n0', '100');
  await setField(page, '#cert-alpha', '0.01');
  await expect(page.locator('#certify-run')).toBeEnabled();
  await expect(page.locator('#certify-warning')).toBeHidden();
});

test('a cancelled run is labelled with the images it certified, not the ones it asked for', async ({ page }) => {
  await open(page, '#n=2000&count=60');
  await page.locator('#certify-run').click();
  await expect.poll(() => page.locator('#certify-table tbody tr').count()).toBeGreaterThanOrEqual(2);
  await page.locator('#certify-cancel').click();
  await expect(panel(page)).toHaveAttribute('data-status', 'cancelled');
  const kept = await page.locator('#certify-table tbody tr').count();
  await expect(legend(page)).toContainText(`seed 0 (${kept} of 60 images, cancelled)`);
  await expect(legend(page)).not.toContainText('(60 images)');
});

test('runs of this session are never labelled "(restored)" when the settings come back to them', async ({ page }) => {
  await open(page, '#n=200&count=2&seed=7');
  await certify(page);
  await setField(page, '#cert-seed', '8');
  await certify(page);
  await setField(page, '#cert-seed', '7');
  await expect(page.locator('#certify-run-info')).toContainText('seed 7');
  await expect(page.locator('#certify-run-info')).toHaveAttribute('data-restored', 'false');
  await expect(page.locator('#certify-run-info')).not.toContainText('restored');
  await expect(legend(page)).toContainText('seed 7 (2 images)');
  await expect(legend(page)).not.toContainText('restored');
});

test('the plot legend shows values before the pointer hovers it', async ({ page }) => {
  await open(page, '#n=200&count=3');
  await certify(page);
  const values = await legend(page)
    .locator('.u-value')
    .evaluateAll((cells) => cells.map((c) => c.textContent));
  // r and one series, at r = 0 (the certified accuracy of the smoothed classifier)
  expect(values).toHaveLength(2);
  expect(values[0]).toBe('0.000');
  expect(values[1]).toMatch(/^\d+\.\d %$/);
});

test('the JSON export lists certified accuracy by increasing radius', async ({ page }) => {
  await open(page, '#n=200&count=2');
  await certify(page);
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#certify-json').click()]);
  const json = JSON.parse(await readFile(await download.path(), 'utf8')) as { certifiedAccuracy: Record<string, number> };
  expect(Object.keys(json.certifiedAccuracy)).toEqual(['0.00', '0.25', '0.50', '0.75', '1.00']);
});

test('a rerun IRS job reuses every cached reference and reports its full-certification time', async ({ page }) => {
  await open(page, '#n=1000&count=4&seed=0&w=4,4,4,4,4,4,4,4&a=4,4,4,4,4,4,4,4&irs=1&nchi=100');
  await certify(page);
  const times = page.locator('#certify-irs-times');
  await expect(times).toHaveAttribute('data-cached', '0');
  const first = Number(await times.getAttribute('data-reference'));
  await certify(page);
  await expect(times).toHaveAttribute('data-cached', '4');
  // the stored model's certificates (1,100 samples each) were timed when first computed
  const reference = Number(await times.getAttribute('data-reference'));
  const irs = Number(await times.getAttribute('data-irs'));
  expect(reference).toBeGreaterThan(irs);
  expect(reference).toBeCloseTo(first, 6);
});

test('a mixed policy has a readable label, the full policy in its title, and the All-layers slider shows mixed', async ({
  page,
}) => {
  const seen = watch(page);
  // weights average 56/8 = 7.0 bits, activations 60/8 = 7.5 bits
  await open(page, '#w=8,4,8,8,8,8,8,4&a=8,8,8,4,8,8,8,8&n=200&count=2');
  await expect(page.locator('#bits-panel')).toHaveAttribute('data-status', 'ready');
  const accuracy = page.locator('#bits-accuracy');
  await expect(accuracy).toContainText('Accuracy at mixed (avg w7.0 a7.5)');
  await expect(accuracy).toHaveAttribute('title', /w8,4,8,8,8,8,8,4 a8,8,8,4,8,8,8,8/);
  await expect(page.locator('#bits-global')).toHaveAttribute('aria-valuetext', /mixed/);
  await expect(page.locator('#bits-global')).toHaveAttribute('data-mixed', 'true');
  await certify(page);
  await expect(legend(page)).toContainText('MNIST σ=0.25 mixed (avg w7.0 a7.5), n=200');
  await expect(page.locator('#certify-run-info')).toHaveAttribute('title', /w8,4,8,8,8,8,8,4 a8,8,8,4,8,8,8,8/);
  await page.getByRole('button', { name: 'w4a4' }).click();
  await expect(page.locator('#bits-global')).toHaveAttribute('data-mixed', 'false');
  await expect(page.locator('#bits-global')).toHaveAttribute('aria-valuetext', '4 bits');
  expect(seen.errors).toEqual([]);
});

test('the weight histograms have axes: integer levels and counts', async ({ page }) => {
  await open(page, '#w=4,4,4,4,4,4,4,4&a=4,4,4,4,4,4,4,4');
  const low = page.locator('#bits-hist-low');
  await expect(page.locator('#bits-histogram')).toHaveAttribute('data-status', 'ready');
  // 4 bits: integers −8..7
  const ticks = await low.locator('.x-axis text').allTextContents();
  expect(ticks[0]).toBe('−8');
  expect(ticks).toContain('0');
  expect(ticks[ticks.length - 1]).toBe('7');
  await expect(low.locator('.y-axis text').first()).toHaveText(/^\d[\d,]*$/);
  await expect(page.locator('#bits-histogram')).toContainText('weights per integer level');
  const master = await page.locator('#bits-hist-master .x-axis text').allTextContents();
  expect(master[0]).toBe('−128');
  expect(master[master.length - 1]).toBe('127');
});

test('a reload brings back every kept run, not only those of the current settings', async ({ page }) => {
  await open(page, '#n=200&count=2&seed=7');
  await certify(page);
  await setField(page, '#cert-seed', '8');
  await certify(page);
  await setField(page, '#cert-n', '300');
  await certify(page);
  await page.reload();
  await expect(page.locator('body')).toHaveAttribute('data-status', 'ready');
  await expect(page.locator('#certify-plot')).toHaveAttribute('data-series', '3');
  await expect(legend(page)).toContainText('n=200, seed 7 (2 images) (restored)');
  await expect(legend(page)).toContainText('n=200, seed 8 (2 images) (restored)');
  await expect(legend(page)).toContainText('n=300, seed 8 (2 images) (restored)');
});
