// Drives bench.html in headless Chromium (Debian's) against a running `vite preview` and
// prints the engine's throughput figures as JSON. Usage:
//   npx vite preview --host 127.0.0.1 --port 4173 &  node scripts/bench-browser.mjs [batch] [reps]
// SIMD=simd128 runs the SIMD128 engine even where Chromium has relaxed SIMD.
import { launchChromium } from './chromium.mjs';

const batch = process.argv[2] ?? '100';
const reps = process.argv[3] ?? '7';
const base = process.env.BASE_URL ?? 'http://127.0.0.1:4173/';
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  const simd = process.env.SIMD ? `&simd=${process.env.SIMD}` : '';
  await page.goto(`${base}bench.html?dataset=mnist&sigma=0.25&batch=${batch}&reps=${reps}${simd}`);
  await page.waitForFunction(() => document.body.dataset.status !== 'running', null, { timeout: 600_000 });
  console.log(await page.locator('#out').textContent());
} finally {
  await browser.close();
}
