// Shared by the end-to-end specs.
import type { Page } from '@playwright/test';

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
