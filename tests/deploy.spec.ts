// End-to-end: the deployable static site (issue 14, item 7). dist/ is served under a
// sub-path by scripts/serve-dist.mjs the way a static host serves it (precompressed files,
// dist/_headers); the page must work there with relative URLs only, under its CSP.
import { expect, test } from '@playwright/test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { deployedUrl, watch } from './helpers';

const site = deployedUrl();

test('the site works from a sub-path: every request stays under it, compressed, no console errors', async ({ page }) => {
  const seen = watch(page);
  const responses: { url: string; headers: Record<string, string> }[] = [];
  page.on('response', async (r) => responses.push({ url: r.url(), headers: await r.allHeaders() }));
  await page.goto(site);
  await expect(page.locator('body')).toHaveAttribute('data-status', 'ready');
  await expect(page.locator('#accuracy')).toHaveAttribute('data-accuracy', /0\.9\d*/);
  // a Bits preset still works (the engine, its wasm and the model came through)
  await page.getByRole('button', { name: 'w4a4', exact: true }).click();
  await expect(page.locator('#bits-accuracy')).toContainText('w4a4');

  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
  const urls = responses.map((r) => r.url).filter((u) => !u.startsWith('data:') && !u.startsWith('blob:'));
  expect(urls.length).toBeGreaterThan(5);
  for (const u of urls) expect(u, 'an absolute URL escaped the sub-path').toMatch(new RegExp(`^${site}`));

  const by = (re: RegExp) => responses.find((r) => re.test(r.url));
  const wasm = by(/\.wasm$/);
  expect(wasm, 'the engine was fetched').toBeTruthy();
  expect(wasm!.headers['content-encoding']).toBe('br');
  expect(wasm!.headers['content-type']).toBe('application/wasm');
  const model = by(/\/models\/mnist-sigma0\.25\.safetensors$/)!;
  expect(model.headers['cache-control']).toContain('max-age');
  const doc = by(new RegExp(`^${site}$`))!;
  expect(doc.headers['content-security-policy']).toContain("script-src 'self' 'wasm-unsafe-eval'");
});

test('the Content-Security-Policy blocks outside images and inline scripts on the page', async ({ page }) => {
  const seen = watch(page);
  const failed: string[] = [];
  page.on('requestfailed', (r) => failed.push(`${r.url()} ${r.failure()?.errorText}`));
  await page.goto(site);
  await expect(page.locator('body')).toHaveAttribute('data-status', 'ready');
  const meta = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  expect(meta).toContain("default-src 'self'");
  expect(meta).toContain("'wasm-unsafe-eval'");
  expect(meta).not.toContain("'unsafe-eval'");
  expect(meta).not.toContain("'unsafe-inline'");
  const outcome = await page.evaluate(
    () =>
      new Promise<{ blocked: string[]; inlineRan: boolean }>((done) => {
        // the header and the <meta> are two policies: each reports what it refuses
        const blocked = new Set<string>();
        document.addEventListener('securitypolicyviolation', (e) => {
          blocked.add(`${e.effectiveDirective} ${e.blockedURI}`);
          if (blocked.size === 2) {
            done({ blocked: [...blocked], inlineRan: (window as unknown as { inlineRan?: boolean }).inlineRan === true });
          }
        });
        const img = document.createElement('img');
        img.src = 'https://example.invalid/pixel.png';
        document.body.append(img);
        const script = document.createElement('script');
        script.textContent = 'window.inlineRan = true';
        document.body.append(script);
      }),
  );
  expect(outcome.blocked.sort()).toEqual(['img-src https://example.invalid/pixel.png', 'script-src-elem inline']);
  expect(outcome.inlineRan).toBe(false);
  // the refused image was stopped in the browser (the request never reached the network);
  // the violations are the page's only errors
  await expect.poll(() => failed).toEqual(['https://example.invalid/pixel.png csp']);
  expect(seen.external).toEqual(['https://example.invalid/pixel.png']);
  expect(seen.errors.every((e) => e.includes('Content Security Policy'))).toBe(true);
});

test('every precompressed file decompresses to its original', () => {
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
  const all = walk('dist');
  const originals = all.filter((f) => !/\.(br|gz)$/.test(f));
  const br = all.filter((f) => f.endsWith('.br'));
  expect(br.some((f) => f.endsWith('.wasm.br'))).toBe(true);
  expect(br.some((f) => f.endsWith('.safetensors.br'))).toBe(true);
  for (const f of br) expect(brotliDecompressSync(readFileSync(f)).equals(readFileSync(f.slice(0, -3))), f).toBe(true);
  for (const f of all.filter((x) => x.endsWith('.gz'))) {
    expect(gunzipSync(readFileSync(f)).equals(readFileSync(f.slice(0, -3))), f).toBe(true);
  }
  // and every original at least 1 KB that compression shrinks has both forms beside it
  const big = originals.filter((f) => /\.(js|css|wasm|html)$/.test(f) && statSync(f).size >= 1024);
  for (const f of big) expect(all, f).toContain(`${f}.br`);
});
