// End-to-end: the Search panel runs a mixed-precision search on its own worker, reports
// progress, can be cancelled (and then run again), and its chosen policy moves the Bits sliders.
import { expect, test, type Page } from '@playwright/test';
import { watch } from './helpers';

const panel = (page: Page) => page.locator('#search-panel');

// All-8-bit BOPs per image by hand (as in bits.spec.ts): the stem's 56,448 MACs multiply 8-bit
// weights by the float (32-bit) input, the other 2,118,368 MACs are 8 × 8 bits.
const MAX_BOPS = 56_448 * 8 * 32 + 2_118_368 * 8 * 8;

async function ready(page: Page, hash = ''): Promise<void> {
  await page.goto(`./#dataset=mnist&sigma=0.25${hash}`);
  await expect(page.locator('body')).toHaveAttribute('data-status', 'ready');
  await expect(page.locator('#search-start')).toBeEnabled();
}

async function settings(page: Page, s: Record<string, string>): Promise<void> {
  for (const [id, value] of Object.entries(s)) {
    const field = page.locator(`#search-${id}`);
    if (id === 'method') await field.selectOption(value);
    else await field.fill(value);
  }
}

test('a short HAQ search reports progress, stays within the budget and its policy moves the Bits sliders', async ({ page }) => {
  const seen = watch(page);
  await ready(page);
  await settings(page, { method: 'haq', 'budget-value': '0.3', episodes: '6', seed: '3', val: '20' });
  // the budget is 0.3 of the all-8-bit BOPs, rounded down
  await expect(panel(page)).toHaveAttribute('data-budget', String(Math.floor(0.3 * MAX_BOPS)));
  await expect(page.locator('#search-budget-note')).toContainText('affords uniform');
  await page.locator('#search-start').click();
  await expect(panel(page)).toHaveAttribute('data-status', 'running');
  await expect(page.locator('#search-progress-label')).toContainText(/Episode \d+ \/ 6/);
  await expect(panel(page)).toHaveAttribute('data-status', 'done');
  await expect(page.locator('#search-progress-label')).toContainText('Episode 6 / 6');
  await expect(page.locator('#search-curve')).toHaveAttribute('data-points', '6');
  await expect(page.locator('#search-pareto')).toHaveAttribute('data-choices', '1');
  const facts = page.locator('#search-facts');
  const widths = (await facts.getAttribute('data-widths'))!.split(',').map(Number);
  expect(widths).toHaveLength(8);
  // pinned first and last layers stay at 8 bits; every width is a trained one
  expect(widths[0]).toBe(8);
  expect(widths[7]).toBe(8);
  for (const w of widths) expect([2, 4, 6, 8]).toContain(w);
  // within the budget; the Bits panel's own cost of the policy agrees once applied (below)
  const bops = Number(await facts.getAttribute('data-bops'));
  expect(bops).toBeLessThanOrEqual(Math.floor(0.3 * MAX_BOPS));
  const reward = Number(await facts.getAttribute('data-reward'));
  expect(reward).toBeGreaterThanOrEqual(0);
  expect(reward).toBeLessThanOrEqual(1);
  await expect(page.locator('#search-policy tbody tr')).toHaveCount(8);

  await page.locator('#search-apply').click();
  for (let i = 0; i < 8; i++) {
    await expect(page.locator(`#bits-w-${i}`)).toHaveValue(String(widths[i]));
    if (i > 0) await expect(page.locator(`#bits-a-${i}`)).toHaveValue(String(widths[i]));
  }
  expect(page.url()).toContain(`w=${widths.join(',')}`);
  await expect(page.locator('#bits-bops')).toHaveAttribute('data-bops', String(bops));
  expect(seen.errors).toEqual([]);
});

test('a running search can be cancelled, and a new one then runs to the end', async ({ page }) => {
  const seen = watch(page);
  await ready(page);
  await settings(page, { method: 'haq', episodes: '2000', val: '200' });
  await page.locator('#search-start').click();
  await expect(page.locator('#search-progress-label')).toContainText(/Episode \d+ \/ 2000/);
  await expect(page.locator('#search-start')).toBeDisabled();
  await page.locator('#search-cancel').click();
  await expect(panel(page)).toHaveAttribute('data-status', 'cancelled');
  await expect(page.locator('#search-message')).toContainText('Cancelled');
  await expect(page.locator('#search-cancel')).toBeDisabled();
  // a new search on a fresh worker
  await settings(page, { method: 'random', episodes: '4', val: '10' });
  await page.locator('#search-start').click();
  await expect(panel(page)).toHaveAttribute('data-status', 'done');
  await expect(page.locator('#search-progress-label')).toContainText('Episode 4 / 4');
  await expect(page.locator('#search-message')).toBeHidden();
  expect(seen.errors).toEqual([]);
});

test('ARQ certifies the stored model first, then scores policies by IRS', async ({ page }) => {
  const seen = watch(page);
  await ready(page);
  await settings(page, { method: 'arq', episodes: '3', val: '4', n: '200', nchi: '20' });
  await page.locator('#search-start').click();
  await expect(panel(page)).toHaveAttribute('data-status', 'done');
  await expect(page.locator('#search-facts')).toContainText('irs-acr');
  await expect(page.locator('#search-facts')).toContainText('Stored model (w8a8) ACR');
  expect(seen.errors).toEqual([]);
});

test('the Double Rounding ILP estimates Hessian traces here when the model stores none, and says so', async ({ page }) => {
  const seen = watch(page);
  // the multi-bit model stores no traces (the supernet does)
  await ready(page, '&model=multibit');
  await settings(page, { method: 'ilp', val: '10' });
  await expect(page.locator('#search-episodes')).toBeDisabled();
  await page.locator('#search-start').click();
  await expect(panel(page)).toHaveAttribute('data-status', 'done');
  await expect(page.locator('#search-facts')).toContainText('Hessian traces estimated here');
  // on the supernet it reads the traces stored in the file
  await ready(page);
  await page.locator('#search-start').click();
  await expect(panel(page)).toHaveAttribute('data-status', 'done');
  await expect(page.locator('#search-facts')).toContainText('stored Hessian traces');
  const bops = Number(await page.locator('#search-facts').getAttribute('data-bops'));
  expect(bops).toBeLessThanOrEqual(Math.floor(0.3 * MAX_BOPS));
  expect(seen.errors).toEqual([]);
});

test('bad settings get a message and start nothing', async ({ page }) => {
  const seen = watch(page);
  await ready(page);
  await settings(page, { 'budget-value': '0.01' });
  await expect(page.locator('#search-budget-note')).toHaveText('out of range');
  await page.locator('#search-start').click();
  await expect(page.locator('#search-message')).toContainText('The budget must be between');
  await expect(panel(page)).toHaveAttribute('data-status', 'invalid');
  await settings(page, { 'budget-value': '1.5' });
  await page.locator('#search-start').click();
  await expect(page.locator('#search-message')).toContainText('The budget must be between');
  await settings(page, { 'budget-value': '0.3', episodes: '0' });
  await page.locator('#search-start').click();
  await expect(page.locator('#search-message')).toContainText('Episodes must be a whole number from 1');
  await settings(page, { episodes: '5', val: '9999' });
  await page.locator('#search-start').click();
  await expect(page.locator('#search-message')).toContainText('Validation images must be a whole number from 1 to 256');
  // keyboard: the form submits from a field with Enter once it is valid
  await settings(page, { val: '10', episodes: '2' });
  await page.locator('#search-episodes').press('Enter');
  await expect(panel(page)).toHaveAttribute('data-status', 'done');
  expect(seen.errors).toEqual([]);
});
