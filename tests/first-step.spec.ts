// End-to-end: the first step (issue 14, item 3): each panel says what it shows, and the page
// links the papers it implements without fetching anything from outside.
import { expect, test } from '@playwright/test';
import { watch } from './helpers';

test('each panel says what it shows in two sentences, and the papers are plain links', async ({ page }) => {
  const seen = watch(page);
  await page.goto('./');
  await expect(page.locator('body')).toHaveAttribute('data-status', 'ready');
  await expect(page.locator('.first-step')).toContainText('First step');
  for (const [panel, words] of [
    ['#model-panel', 'Start here'],
    ['#bits-panel', 'Double Rounding'],
    ['#grid-panel', 'mistakes'],
    ['#certify-panel', 'certified radius'],
  ] as const) {
    const what = page.locator(`${panel} .what`);
    await expect(what, panel).toContainText(words);
    // two sentences: two full stops ending a sentence (abbreviations like "et al." aside)
    const text = (await what.textContent())!.replace(/et al\./g, 'et al');
    expect(text.match(/[.!?](\s|$)/g), panel).toHaveLength(2);
  }
  const hrefs = await page.locator('a[href^="https://arxiv.org/abs/"]').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  for (const id of ['2502.01199', '2410.24214', '1902.02918', '2305.19521']) {
    expect(hrefs, id).toContain(`https://arxiv.org/abs/${id}`);
  }
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});
