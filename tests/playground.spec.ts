// End-to-end: the real site (built wasm, shipped models and test subsets) in headless Chromium.
import { expect, test, type Page } from '@playwright/test';
import { watch } from './helpers';

async function accuracy(page: Page): Promise<number> {
  await expect(page.locator('body')).toHaveAttribute('data-status', 'ready');
  const value = await page.locator('#accuracy').getAttribute('data-accuracy');
  return Number(value);
}

test('MNIST loads, classifies the shipped test images accurately, offline, without errors', async ({ page }) => {
  const seen = watch(page);
  await page.goto('./');
  const acc = await accuracy(page);
  expect(acc).toBeGreaterThan(0.97);
  await expect(page.locator('#accuracy')).toContainText('of 1,000 test images correct');
  await expect(page.locator('.tile')).toHaveCount(100);
  await expect(page.locator('#model-info')).toContainText('multiply-accumulates');
  await page.screenshot({ path: 'test-results/playground-mnist.png', fullPage: true });
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});

test('switching to Fashion-MNIST reclassifies and the mistakes filter shows only wrong tiles', async ({ page }) => {
  const seen = watch(page);
  await page.goto('./#dataset=mnist&sigma=0.25');
  await accuracy(page);
  await page.selectOption('#dataset', 'fashion');
  await expect(page).toHaveURL(/dataset=fashion/);
  const acc = await accuracy(page);
  expect(acc).toBeGreaterThan(0.8);
  expect(acc).toBeLessThan(0.99); // a different model on different data, not the MNIST result
  await page.selectOption('#filter', 'wrong');
  const tiles = page.locator('.tile');
  const n = await tiles.count();
  expect(n).toBeGreaterThan(0);
  expect(await page.locator('.tile.wrong').count()).toBe(n);
  await page.screenshot({ path: 'test-results/playground-fashion-mistakes.png', fullPage: true });
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});

test('every σ model of both datasets loads from a shared link', async ({ page }) => {
  for (const dataset of ['mnist', 'fashion']) {
    for (const sigma of ['0.25', '0.5', '1.0']) {
      await page.goto(`./#dataset=${dataset}&sigma=${sigma}`);
      await page.reload();
      const acc = await accuracy(page);
      expect(acc, `${dataset} σ=${sigma}`).toBeGreaterThan(dataset === 'mnist' ? 0.9 : 0.7);
      await expect(page.locator('#model-info')).toContainText(`σ = ${Number(sigma)}`);
      // every shipped model is an int8 supernet, running as stored at w8a8
      await expect(page.locator('#model-kind'), `${dataset} σ=${sigma}`).toHaveAttribute('data-kind', 'int8');
      await expect(page.locator('#bits-panel')).toHaveAttribute('data-policy', 'w8a8');
    }
  }
});

test('a malformed link falls back to defaults with a notice and the page stays usable', async ({ page }) => {
  const seen = watch(page);
  await page.goto('./#dataset=cifar&sigma=-1&page=abc&bogus=1');
  await expect(page.locator('#banner')).toContainText('Ignored invalid link parameters');
  await expect(page.locator('#banner')).toContainText('sigma=-1');
  expect(await accuracy(page)).toBeGreaterThan(0.97);
  await expect(page).toHaveURL(/dataset=mnist&sigma=0.25/);
  expect(seen.errors).toEqual([]);
});

test('tiles are keyboard accessible and paging works', async ({ page }) => {
  await page.goto('./');
  await accuracy(page);
  await page.locator('.tile').nth(3).focus();
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/selected=3/);
  await expect(page.locator('.tile.selected')).toHaveAttribute('data-index', '3');
  await page.getByRole('button', { name: 'Next ›' }).click();
  await expect(page).toHaveURL(/page=1/);
  await expect(page.locator('.tile').first()).toHaveAttribute('data-index', '100');
});

test('a corrupt model file gives a clear error and the page recovers on the next choice', async ({ page }) => {
  await page.route('**/models/mnist-sigma0.5.safetensors', (route) =>
    route.fulfill({ status: 200, body: 'this is not a model' }),
  );
  await page.goto('./#dataset=mnist&sigma=0.5');
  await expect(page.locator('body')).toHaveAttribute('data-status', 'error');
  await expect(page.locator('#banner')).toContainText('model file');
  await page.selectOption('#sigma', '0.25');
  expect(await accuracy(page)).toBeGreaterThan(0.97);
});

test('a model file with one weight byte changed is refused: its digest no longer matches', async ({ page }) => {
  await page.route('**/models/mnist-sigma0.5.safetensors', async (route) => {
    const body = Buffer.from(await (await route.fetch()).body());
    // safetensors: an 8-byte little-endian header length, the JSON header, then the tensors
    const headerLen = Number(body.readBigUInt64LE(0));
    const header = JSON.parse(body.subarray(8, 8 + headerLen).toString('utf8'));
    const [start] = header['block2.conv2.weight.q'].data_offsets as [number, number];
    body[8 + headerLen + start + 1000] ^= 0x01; // one int8 weight, still in range
    await route.fulfill({ status: 200, body });
  });
  await page.goto('./#dataset=mnist&sigma=0.5');
  await expect(page.locator('body')).toHaveAttribute('data-status', 'error');
  await expect(page.locator('#banner')).toContainText('the weights do not match the digest recorded in the file: corrupted?');
  await page.selectOption('#sigma', '0.25');
  expect(await accuracy(page)).toBeGreaterThan(0.97);
});
