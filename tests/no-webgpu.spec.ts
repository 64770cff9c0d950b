// End-to-end, in a browser without WebGPU (the suite's default Chromium flags offer no adapter):
// the page certifies on the CPU workers and says why; forcing WebGPU is refused with the reason.
import { expect, test, type Page } from '@playwright/test';
import { certify, open, rowsByIndex as table, watch } from './helpers';

const rows = (page: Page) => page.locator('#certify-table tbody tr');
const backendLine = (page: Page) => page.locator('#certify-backend-status');

test('certifies on the CPU workers and says why; forcing WebGPU is refused with the reason', async ({ page }) => {
  const seen = watch(page);
  await open(page, '#dataset=mnist&sigma=0.25&n=200&count=2&seed=0');
  await expect(backendLine(page)).toHaveAttribute('data-gpu', 'unavailable');
  await expect(backendLine(page)).toContainText('Certifies on the CPU workers');
  await expect(backendLine(page)).toContainText('WebGPU is not available');
  await certify(page);
  await expect(page.locator('#certify-run-info')).toHaveAttribute('data-backend', 'cpu');
  await expect(page.locator('#certify-run-info')).toContainText('CPU · ');
  expect(Object.values(await table(page)).every(([, b]) => b === 'cpu')).toBe(true);

  await page.locator('#certify-backend').selectOption('gpu');
  await expect(backendLine(page)).toContainText('WebGPU is chosen but not available');
  await page.locator('#certify-run').click();
  await expect(page.locator('#status')).toContainText('WebGPU is chosen but not available');
  await expect(page.locator('#certify-run')).toBeEnabled();
  await expect(rows(page)).toHaveCount(2); // the earlier run is still shown

  // a malformed choice in a link is ignored with a notice (a new page: a hash change alone keeps
  // the page's state)
  await page.goto('about:blank');
  await open(page, '#dataset=mnist&sigma=0.25&backend=quantum');
  await expect(page.locator('#status')).toContainText('backend=quantum');
  await expect(page.locator('#certify-backend')).toHaveValue('auto');
  expect(seen.errors).toEqual([]);
});
