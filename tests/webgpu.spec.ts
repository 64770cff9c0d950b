// End-to-end, with WebGPU on (SwiftShader, a GPU emulated on the CPU): the page certifies on it
// and says so; the visitor can force the CPU; a device lost mid-run keeps the finished rows and
// the CPU workers finish the run. Without WebGPU: no-webgpu.spec.ts.
import { expect, test, type Page } from '@playwright/test';
import { CHROMIUM, CHROMIUM_ARGS, WEBGPU_ARGS } from './chromium';
import { certify, open, rowsByIndex as table, watch } from './helpers';

const rows = (page: Page) => page.locator('#certify-table tbody tr');
const backendLine = (page: Page) => page.locator('#certify-backend-status');

test.use({ launchOptions: { executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...WEBGPU_ARGS] } });

test('certifies on WebGPU by default, says so per run and per row, and agrees with a forced CPU run', async ({ page }) => {
  const seen = watch(page);
  await open(page, '#dataset=mnist&sigma=0.25&n=200&count=4&seed=0');
  await expect(backendLine(page)).toHaveAttribute('data-gpu', 'available');
  await expect(backendLine(page)).toContainText('Certifies on WebGPU · SwiftShader (fallback adapter)');
  await certify(page);
  await expect(rows(page)).toHaveCount(4);
  await expect(page.locator('#certify-run-info')).toHaveAttribute('data-backend', 'webgpu');
  await expect(page.locator('#certify-run-info')).toContainText('WebGPU · SwiftShader (fallback adapter): completed');
  const gpu = await table(page);
  expect(Object.values(gpu).every(([, b]) => b === 'webgpu')).toBe(true);
  await expect(rows(page).first().locator('td').last()).toHaveText('WebGPU');

  // forced onto the CPU: the same CERTIFY on the same draws; n_A moves only by the measured
  // flips (a class changes for ≤ 1 in 1,000 copies natively and in the wasm tests)
  await page.locator('#certify-backend').selectOption('cpu');
  await expect(page).toHaveURL(/backend=cpu/);
  await expect(backendLine(page)).toContainText('Certifies on the CPU workers');
  await certify(page);
  await expect(page.locator('#certify-run-info')).toHaveAttribute('data-backend', 'cpu');
  const cpu = await table(page);
  expect(Object.keys(cpu)).toEqual(Object.keys(gpu));
  for (const [idx, [nA, backend]] of Object.entries(cpu)) {
    expect(backend).toBe('cpu');
    expect(Math.abs(nA - gpu[idx]![0]), `image ${idx}`).toBeLessThanOrEqual(2);
  }
  await page.locator('#certify-panel').screenshot({ path: 'test-results/certify-webgpu.png' });
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});

test('a GPU lost mid-run keeps the finished rows and the CPU workers finish the run', async ({ page }) => {
  const seen = watch(page);
  await open(page, '#dataset=mnist&sigma=0.25&n=400&count=8&seed=1&backend=gpu');
  await expect(backendLine(page)).toHaveAttribute('data-gpu', 'available');
  await page.locator('#certify-run').click();
  await expect(rows(page)).toHaveCount(2, { timeout: 60_000 });
  const lost = await page.evaluate(() => (window as unknown as { bitsmooth: { loseGpu(): Promise<boolean> } }).bitsmooth.loseGpu());
  expect(lost).toBe(true);
  await expect(page.locator('#certify-panel')).toHaveAttribute('data-status', 'completed');
  await expect(rows(page)).toHaveCount(8);
  const done = await table(page);
  const onGpu = Object.values(done).filter(([, b]) => b === 'webgpu').length;
  expect(onGpu).toBeGreaterThanOrEqual(2);
  expect(onGpu).toBeLessThan(8);
  expect(Object.values(done).filter(([, b]) => b === 'cpu').length).toBe(8 - onGpu);
  await expect(page.locator('#certify-run-info')).toHaveAttribute('data-fallback', 'true');
  await expect(page.locator('#certify-run-info')).toContainText(`The GPU failed after ${onGpu} images`);
  await expect(page.locator('#certify-run-info')).toContainText('the rest ran on the CPU workers');
  await expect(page.locator('#status')).toContainText('the run continues on the CPU workers');
  // the page stays usable: the next run finds a device again and certifies on it
  await certify(page);
  await expect(page.locator('#certify-run-info')).toHaveAttribute('data-backend', 'webgpu');
  await expect(page.locator('#certify-run-info')).toHaveAttribute('data-fallback', 'false');
  expect(seen.external).toEqual([]);
});
