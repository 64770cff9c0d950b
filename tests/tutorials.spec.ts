// End-to-end: the workshop tutorials (issue 14, item 6), walked in the page's step-by-step
// guide against the production build served from a sub-path. At every step the test does
// what the step says, checks what it says to notice, and saves a screenshot to
// test-results/tutorials/; any console error or request leaving localhost fails it.
import { expect, test, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { deployedUrl, watch } from './helpers';

/** What each step says to do, and the check of what it says to notice, by step title. */
type Walk = Record<string, (page: Page) => Promise<void>>;

const bops = (page: Page) => page.locator('#bits-bops');
const certifyPanel = (page: Page) => page.locator('#certify-panel');

async function certifyAndWait(page: Page, series: number): Promise<void> {
  await page.locator('#certify-run').click();
  await expect(certifyPanel(page)).toHaveAttribute('data-status', 'completed');
  await expect(page.locator('#certify-plot')).toHaveAttribute('data-series', String(series));
}

const WALKS: Walk[] = [
  {
    'Start from the stored model': async (page) => {
      await page.selectOption('#dataset', 'mnist');
      await page.selectOption('#sigma', '0.25');
      await page.getByRole('button', { name: /^w8a8/ }).click();
      expect(Number(await page.locator('#accuracy').getAttribute('data-accuracy'))).toBeGreaterThan(0.97);
      await expect(bops(page)).toHaveAttribute('data-bops', '150026240');
    },
    'Four bits everywhere': async (page) => {
      await page.getByRole('button', { name: 'w4a4', exact: true }).click();
      await expect(bops(page)).toHaveAttribute('data-bops', '41119232');
    },
    'Two bits everywhere': async (page) => {
      await page.getByRole('button', { name: 'w2a2', exact: true }).click();
      await expect(bops(page)).toHaveAttribute('data-bops', '12086144');
      await page.selectOption('#filter', 'wrong');
      await expect(page.locator('#grid-panel .tile').first()).toBeVisible();
    },
    'One layer at a time': async (page) => {
      await page.selectOption('#filter', 'all');
      await page.getByRole('button', { name: /^w8a8/ }).click();
      await expect(bops(page)).toHaveAttribute('data-bops', '150026240');
      await page.locator('#bits-w-3').fill('2');
      await expect(page.locator('#bits-accuracy')).toContainText('mixed');
      const after = Number(await bops(page).getAttribute('data-bops'));
      expect(after).toBeLessThan(150026240);
      expect(after).toBeGreaterThan(41119232);
    },
  },
  {
    'Certify the stored model': async (page) => {
      await page.getByRole('button', { name: /^w8a8/ }).click();
      await page.locator('#cert-count').fill('10');
      await certifyAndWait(page, 1);
    },
    'Certify four bits from scratch': async (page) => {
      await page.getByRole('button', { name: 'w4a4', exact: true }).click();
      await certifyAndWait(page, 2);
    },
    'Certify four bits incrementally (IRS)': async (page) => {
      await page.locator('#certify-irs').check();
      await expect(page.locator('#certify-irs-cap')).toContainText('IRS can certify at most');
      await certifyAndWait(page, 3);
    },
    'Look at one image': async (page) => {
      await page.locator('#grid-panel .tile').nth(3).click();
      await page.locator('#certify-selected').click();
      const view = page.locator('#certify-selected-view');
      await expect(view).toHaveAttribute('data-status', 'done');
      await expect(view.locator('#selected-noisy canvas')).toHaveCount(8);
    },
  },
  {
    'Set a budget': async (page) => {
      await page.locator('#search-budget-value').fill('0.3');
      await page.locator('#search-budget-value').dispatchEvent('change');
      await expect(page.locator('#search-budget-note')).toContainText('affords uniform');
    },
    'Run a short HAQ search': async (page) => {
      await page.selectOption('#search-method', 'haq');
      await page.locator('#search-episodes').fill('20');
      await page.locator('#search-start').click();
      await expect(page.locator('#search-panel')).toHaveAttribute('data-status', 'done', { timeout: 300_000 });
      await expect(page.locator('#search-curve')).toHaveAttribute('data-points', '20');
    },
    'Apply the chosen policy': async (page) => {
      const widths = (await page.locator('#search-facts').getAttribute('data-widths'))!;
      await page.locator('#search-apply').click();
      expect(page.url()).toContain(`w=${widths}`);
      await expect(page.locator('#bits-w-1')).toHaveValue(widths.split(',')[1]!);
    },
    'Compare with an integer program': async (page) => {
      await page.selectOption('#search-method', 'ilp');
      await page.locator('#search-start').click();
      await expect(page.locator('#search-panel')).toHaveAttribute('data-status', 'done', { timeout: 300_000 });
      await expect(page.locator('#search-facts')).toHaveAttribute('data-widths', /^\d(,\d){7}$/);
    },
  },
];

const FILES = ['1-double-rounding', '2-certify-irs', '3-search-budget'];

for (const [t, walk] of WALKS.entries()) {
  test(`tutorial ${t + 1} (docs/tutorials/${FILES[t]}.md) walks step by step in the page`, async ({ page }) => {
    test.setTimeout(600_000);
    const seen = watch(page);
    // the steps the test walks are the steps of the markdown the page shows
    const titles = readFileSync(`docs/tutorials/${FILES[t]}.md`, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('## '))
      .map((l) => l.slice(3).trim());
    expect(Object.keys(walk)).toEqual(titles);
    await page.goto(deployedUrl());
    await expect(page.locator('body')).toHaveAttribute('data-status', 'ready');
    await page.locator(`#tutorials [data-tutorial="${t}"]`).click();
    const guide = page.locator('#guide');
    await expect(guide).toBeVisible();
    await expect(page.locator('#guide-title')).toBeFocused();
    await guide.getByRole('button', { name: 'Start ›' }).click();
    for (const [i, title] of titles.entries()) {
      await expect(page.locator('#guide-counter')).toHaveText(`Step ${i + 1} of ${titles.length}: ${title}`);
      await expect(page.locator('#guide-body')).toContainText('Do:');
      await expect(page.locator('#guide-body')).toContainText('Notice:');
      await walk[title]!(page);
      await page.screenshot({ path: `test-results/tutorials/${t + 1}-step${i + 1}.png` });
      if (i < titles.length - 1) await guide.getByRole('button', { name: 'Next step ›' }).click();
    }
    await expect(guide.getByRole('button', { name: 'Next step ›' })).toBeDisabled();
    await page.keyboard.press('Escape');
    await expect(guide).toBeHidden();
    await expect(page.locator(`#tutorials [data-tutorial="${t}"]`)).toBeFocused();
    expect(seen.errors).toEqual([]);
    expect(seen.external).toEqual([]);
  });
}
