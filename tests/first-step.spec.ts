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

test('the IRS controls say what caps an IRS radius and what its paths and ζ mean', async ({ page }) => {
  await page.goto('./#n=1000&alpha=0.001&w=4,4,4,4,4,4,4,4&a=4,4,4,4,4,4,4,4&irs=1&nchi=100');
  await expect(page.locator('body')).toHaveAttribute('data-status', 'ready');
  // σ·Φ⁻¹(α^(1/n)) at σ = 0.25, α = 0.001 from Python's statistics.NormalDist().inv_cdf:
  // n = 100 → 0.37512, n = 1000 → 0.61582
  const cap = page.locator('#certify-irs-cap');
  await expect(cap).toContainText('With n_χ = 100 samples IRS can certify at most r = σ·Φ⁻¹(α^(1/n_χ)) = 0.375 per image');
  await expect(cap).toContainText('(full certification with n = 1,000: 0.616)');
  expect(Number(await cap.getAttribute('data-cap'))).toBeCloseTo(0.37511876, 6);
  await expect(cap).toContainText('ζ, an upper bound on how often the two models disagree');
});
