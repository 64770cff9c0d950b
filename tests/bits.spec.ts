// End-to-end: the Bits panel (run-time mixed precision) and incremental certification (IRS).
import { expect, test, type Page } from '@playwright/test';
import { watch } from './helpers';

const bits = (page: Page) => page.locator('#bits-panel');

/** Waits until `policy` is applied and the grid classified with it. */
async function applied(page: Page, policy: string): Promise<void> {
  await expect(bits(page)).toHaveAttribute('data-policy', policy);
  await expect(bits(page)).toHaveAttribute('data-status', 'ready');
  await expect(page.locator('body')).toHaveAttribute('data-status', 'ready');
}

async function numberAttr(page: Page, selector: string, name: string): Promise<number> {
  return Number(await page.locator(selector).getAttribute(name));
}

/** The grid's accuracy and the panel's totals, as shown. */
async function shown(page: Page) {
  return {
    accuracy: await numberAttr(page, '#accuracy', 'data-accuracy'),
    bops: await numberAttr(page, '#bits-bops', 'data-bops'),
    floatBops: await numberAttr(page, '#bits-bops', 'data-float-bops'),
    bytes: await numberAttr(page, '#bits-size', 'data-bytes'),
    floatBytes: await numberAttr(page, '#bits-size', 'data-float-bytes'),
  };
}

// BOPs per image by hand (MACs from the architecture in crate/src/model.rs): the stem has
// 8·1·9·28² = 56,448 MACs and multiplies its B-bit weights by the float image + noise (32 bits,
// never quantized); the other seven layers have 2,174,816 − 56,448 = 2,118,368 MACs at B × B bits.
const STEM_MACS = 56_448;
const bopsAt = (b: number) => STEM_MACS * b * 32 + 2_118_368 * b * b;
// 32-bit float everywhere: 2,174,816 · 32 · 32
const FLOAT_BOPS = 2_227_011_584;

test('presets and sliders change accuracy, BOPs and size; BOPs are MACs × bits × bits, the stem at a 32-bit input', async ({ page }) => {
  const seen = watch(page);
  await page.goto('./#dataset=mnist&sigma=0.25');
  // the shipped int8 model runs as stored, at w8a8; BOPs and size are against 32-bit float
  await applied(page, 'w8a8');
  await expect(page.getByRole('button', { name: 'Float', exact: true })).toBeHidden();
  await expect(page.getByRole('button', { name: 'w8a8 (stored)' })).toHaveAttribute('aria-pressed', 'true');
  await expect(page.locator('#bits-intro')).toContainText('learned activation scales and one batch-norm per layer and width');
  await expect(page.locator('#bits-accuracy')).toContainText('Accuracy at w8a8 (stored int8)');
  await expect(page.locator('#bits-global-value')).toHaveText('8 bit');
  const stored = await shown(page);
  expect(stored.accuracy).toBeGreaterThan(0.97);
  expect(stored.floatBops).toBe(FLOAT_BOPS);
  // 56,448·8·32 + 2,118,368·64 = 14,450,688 + 135,575,552
  expect(stored.bops).toBe(150_026_240);
  expect(stored.bytes).toBe(stored.floatBytes / 4);
  await expect(page.locator('#bits-bops')).toContainText('15× smaller than 32-bit float');
  await expect(page.locator('#bits-layers tbody tr')).toHaveCount(8);
  // the stem's input is not quantized: no activation slider there, and it says so
  await expect(page.locator('input#bits-a-0')).toHaveCount(0);
  await expect(page.locator('#bits-a-0')).toContainText('32-bit float: the image + noise, not quantized');
  await expect(page.locator('input#bits-a-1')).toHaveCount(1);
  // pressing the pressed preset again changes nothing, and the panel is ready again at once
  await page.getByRole('button', { name: 'w8a8' }).click();
  await expect(bits(page)).toHaveAttribute('data-status', 'ready', { timeout: 2_000 });

  await page.getByRole('button', { name: 'w4a4' }).click();
  await applied(page, 'w4a4');
  await expect(page).toHaveURL(/w=4,4,4,4,4,4,4,4&a=4,4,4,4,4,4,4,4/);
  const w4 = await shown(page);
  // 56,448·4·32 + 2,118,368·16 = 7,225,344 + 33,893,888
  expect(w4.bops).toBe(41_119_232);
  expect(w4.bops).toBe(bopsAt(4));
  expect(w4.bytes).toBe(stored.floatBytes / 8);
  await expect(page.locator('#bits-bops')).toContainText('54× smaller than 32-bit float');
  const layers = await page
    .locator('#bits-layers tbody tr')
    .evaluateAll((trs) => trs.map((tr) => [Number((tr as HTMLElement).dataset.macs), Number((tr as HTMLElement).dataset.bops)]));
  expect(layers[0]).toEqual([STEM_MACS, STEM_MACS * 4 * 32]);
  for (const [macs, bops] of layers.slice(1)) expect(bops).toBe(macs! * 4 * 4);
  expect(layers.reduce((t, [, b]) => t + b!, 0)).toBe(w4.bops);
  expect(w4.accuracy).toBeGreaterThan(0.9);

  await page.getByRole('button', { name: 'w2a2' }).click();
  await applied(page, 'w2a2');
  const w2 = await shown(page);
  expect(w2.accuracy).toBeLessThan(stored.accuracy);
  // 56,448·2·32 + 2,118,368·4 = 3,612,672 + 8,473,472
  expect(w2.bops).toBe(12_086_144);

  // one slider by keyboard: the stem's weights 2 → 4 bits (the supernet's next trained width)
  await page.locator('#bits-w-0').focus();
  await page.keyboard.press('ArrowRight');
  await applied(page, 'w4,2,2,2,2,2,2,2a2');
  await expect(page.locator('#bits-w-0 + output')).toHaveText('4 bit');
  // a mixed policy reads by its mean widths (18/8 = 2.25 and 2 bits), the widths in the tooltip
  await expect(page.locator('#bits-accuracy')).toContainText('Accuracy at mixed (avg w2.3 a2.0)');
  await expect(page.locator('#bits-accuracy')).toHaveAttribute('title', 'w4,2,2,2,2,2,2,2 a2,2,2,2,2,2,2,2');
  const stem = page.locator('#bits-layers tbody tr[data-layer="0"]');
  const stemMacs = Number(await stem.getAttribute('data-macs'));
  const mixed = await shown(page);
  // two more weight bits in the stem, against its 32-bit input
  expect(stemMacs).toBe(STEM_MACS);
  expect(mixed.bops).toBe(w2.bops + 2 * STEM_MACS * 32);
  expect(mixed.bytes).toBeGreaterThan(w2.bytes);

  // the global slider sets every layer: back up to 8 bits, and the accuracy recovers
  await page.locator('#bits-global').fill('8');
  await applied(page, 'w8a8');
  expect((await shown(page)).accuracy).not.toBe(w2.accuracy);
  await page.locator('#bits-global').fill('6');
  await applied(page, 'w6a6');
  const w6 = await shown(page);
  // 56,448·6·32 + 2,118,368·36 = 10,838,016 + 76,261,248
  expect(w6.bops).toBe(87_099_264);
  expect(w6.bytes).toBe((stored.floatBytes * 6) / 32);
  expect(w6.accuracy).toBeGreaterThan(0.97);
  await page.selectOption('#bits-hist-layer', 'block2.conv2');
  await expect(page.locator('#bits-histogram')).toHaveAttribute('data-layer', 'block2.conv2');
  await bits(page).screenshot({ path: 'test-results/bits-panel.png' });

  // the w8a8 preset is the stored model: the link drops its policy
  await page.getByRole('button', { name: 'w8a8' }).click();
  await applied(page, 'w8a8');
  expect((await shown(page)).accuracy).toBe(stored.accuracy);
  await expect(page).not.toHaveURL(/w=/);
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});

test('a supernet\'s sliders stop only on its trained widths, and a link\'s other widths move to the nearest', async ({ page }) => {
  const seen = watch(page);
  // 7 and 5 were never trained in the shipped supernets (8, 6, 4, 2): ties go to the wider width
  await page.goto('./#w=7,4,4,4,4,4,6,8&a=8,8,8,5,8,8,8,3');
  await applied(page, 'w8,4,4,4,4,4,6,8a8,8,8,6,8,8,8,4');
  await expect(page.locator('#banner')).toContainText('This model was trained at 2, 4, 6, 8 bits only');
  await expect(page).toHaveURL(/w=8,4,4,4,4,4,6,8&a=8,8,8,6,8,8,8,4/);
  for (const id of ['#bits-w-3', '#bits-a-3', '#bits-global']) {
    await expect(page.locator(id)).toHaveAttribute('step', '2');
    await expect(page.locator(id)).toHaveAttribute('min', '2');
    await expect(page.locator(id)).toHaveAttribute('max', '8');
  }
  // by keyboard: 6 → 4 → 2, then the end stop
  await page.locator('#bits-w-6').focus();
  await page.keyboard.press('ArrowLeft');
  await applied(page, 'w8,4,4,4,4,4,4,8a8,8,8,6,8,8,8,4');
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('ArrowLeft');
  await applied(page, 'w8,4,4,4,4,4,2,8a8,8,8,6,8,8,8,4');
  await expect(page.locator('#bits-w-6 + output')).toHaveText('2 bit');
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});

test('a policy link restores the sliders after a reload', async ({ page }) => {
  const seen = watch(page);
  await page.goto('./#w=4,4,4,4,4,4,6,8&a=8,8,8,8,8,8,8,8');
  await applied(page, 'w4,4,4,4,4,4,6,8a8');
  await page.reload();
  await applied(page, 'w4,4,4,4,4,4,6,8a8');
  await expect(page.locator('#bits-w-6')).toHaveValue('6');
  await expect(page.locator('#bits-w-7')).toHaveValue('8');
  await expect(page.locator('#bits-w-0')).toHaveValue('4');
  await expect(page.locator('#bits-a-3')).toHaveValue('8');
  await expect(page.locator('#bits-global-value')).toHaveText('mixed');
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});

test('a malformed policy link falls back to the stored model with a notice', async ({ page }) => {
  const seen = watch(page);
  await page.goto('./#w=4,4,9&a=8,8,8,8,8,8,8,8');
  await applied(page, 'w8a8');
  await expect(page.locator('#banner')).toContainText('Ignored invalid link parameters: w=4,4,9');
  await expect(page.locator('#bits-global-value')).toHaveText('8 bit');
  await expect(page).not.toHaveURL(/w=/);
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});

test('the histogram shows 4 levels at 2 bits and 256 at 8 beside the 8-bit master', async ({ page }) => {
  const seen = watch(page);
  await page.goto('./#w=2,2,2,2,2,2,2,2&a=8,8,8,8,8,8,8,8');
  await applied(page, 'w2a8');
  const hist = page.locator('#bits-histogram');
  await expect(hist).toHaveAttribute('data-status', 'ready');
  await expect(hist).toHaveAttribute('data-layer', 'stem');
  await expect(page.locator('#bits-hist-low')).toHaveAttribute('data-bars', '4');
  await expect(page.locator('#bits-hist-master')).toHaveAttribute('data-bars', '256');
  // focusing a layer's slider picks its histogram
  await page.locator('#bits-w-7').focus();
  await expect(page.locator('#bits-hist-layer')).toHaveValue('7');
  await expect(hist).toHaveAttribute('data-layer', 'fc');
  await page.getByRole('button', { name: 'w8a8' }).click();
  await applied(page, 'w8a8');
  await expect(page).not.toHaveURL(/w=/);
  await expect(hist).toHaveAttribute('data-bits', '8');
  await expect(page.locator('#bits-hist-low')).toHaveAttribute('data-bars', '256');
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});

test('IRS certifies w4a4 from the stored w8a8 certificate, shows path, ζ and both times, overlaid with w8a8', async ({
  page,
}) => {
  const seen = watch(page);
  const panel = page.locator('#certify-panel');
  await page.goto('./#n=400&count=3&seed=0');
  await applied(page, 'w8a8');
  await expect(page.locator('#certify-irs')).toBeHidden(); // IRS needs a policy other than the stored model
  await page.locator('#certify-run').click();
  await expect(panel).toHaveAttribute('data-status', 'completed');

  await page.getByRole('button', { name: 'w4a4' }).click();
  await applied(page, 'w4a4');
  await page.locator('#certify-irs').check();
  await expect(page.locator('#cert-nchi')).toHaveValue('40'); // 10 % of n
  await expect(page.locator('#certify-irs-note')).toContainText('IRS certifies the stored int8 model at w8a8 with n samples');
  await page.locator('#certify-run').click();
  await expect(panel).toHaveAttribute('data-status', 'completed');
  await expect(page.locator('#certify-table thead')).toContainText('path');
  await expect(page.locator('#certify-table thead')).toContainText('ζ');
  await expect(page.locator('#certify-table thead')).toContainText('w8a8 seconds');
  const paths = await page.locator('#certify-table tbody tr').evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.path));
  expect(paths).toHaveLength(3);
  for (const p of paths) expect(['incremental', 'full']).toContain(p);
  const times = page.locator('#certify-irs-times');
  await expect(times).toContainText(/IRS \d+\.\d\d s vs full certification \d+\.\d\d s/);
  await expect(times).toContainText("stored w8a8 model's CERTIFY");
  expect(Number(await times.getAttribute('data-reference'))).toBeGreaterThan(0);
  await expect(page.locator('#certify-run-info')).toContainText('w4a4 IRS n_χ=40');
  await expect(page.locator('#certify-plot')).toHaveAttribute('data-series', '2');
  const legend = page.locator('#certify-plot .u-legend');
  await expect(legend).toContainText('MNIST σ=0.25 w8a8 (stored int8), n=400, seed 0 (3 images)');
  await expect(legend).toContainText('MNIST σ=0.25 w4a4 IRS n_χ=40, n=400, seed 0 (3 images)');
  await expect(page).toHaveURL(/w=4,4,4,4,4,4,4,4&a=4,4,4,4,4,4,4,4.*irs=1/);
  await panel.screenshot({ path: 'test-results/certify-irs.png' });

  // the full path still works on the quantized model
  await page.locator('#certify-irs').uncheck();
  await page.locator('#certify-run').click();
  await expect(panel).toHaveAttribute('data-status', 'completed');
  await expect(page.locator('#certify-plot')).toHaveAttribute('data-series', '3');
  await expect(legend).toContainText('MNIST σ=0.25 w4a4, n=400');
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});
