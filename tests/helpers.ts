// Shared by the end-to-end specs.
import { expect, type Page } from '@playwright/test';

/** Collects console errors and every request that does not go to localhost. */
export function watch(page: Page): { errors: string[]; external: string[] } {
  const seen = { errors: [] as string[], external: [] as string[] };
  page.on('console', (msg) => {
    if (msg.type() === 'error') seen.errors.push(msg.text());
  });
  page.on('pageerror', (err) => seen.errors.push(err.message));
  page.on('request', (req) => {
    const url = new URL(req.url());
    const local = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
    if (!local && !['data:', 'blob:'].includes(url.protocol)) seen.external.push(req.url());
  });
  return seen;
}

/** Where playwright.config.ts serves dist/ as deployed: under /bitsmooth/, precompressed. */
export function deployedUrl(): string {
  return `http://127.0.0.1:${Number(process.env.E2E_PORT ?? 4173) + 7}/bitsmooth/`;
}

/** Opens a link and waits until the grid's model is loaded. */
export async function open(page: Page, hash: string): Promise<void> {
  await page.goto(`./${hash}`);
  await expect(page.locator('body')).toHaveAttribute('data-status', 'ready');
}

/** Starts a certification of the first images and waits until it completes. */
export async function certify(page: Page): Promise<void> {
  await page.locator('#certify-run').click();
  await expect(page.locator('#certify-panel')).toHaveAttribute('data-status', 'completed');
}

/** idx → [nA, backend] of every row of the Certify panel's table. */
export async function rowsByIndex(page: Page): Promise<Record<string, readonly [number, string]>> {
  const entries = await page.locator('#certify-table tbody tr').evaluateAll((trs) =>
    trs.map((tr) => {
      const d = (tr as HTMLElement).dataset;
      return [d.idx!, [Number(d.na), d.backend!]] as const;
    }),
  );
  return Object.fromEntries(entries);
}
