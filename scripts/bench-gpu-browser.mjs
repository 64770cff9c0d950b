// Drives bench-gpu.html in headless Chromium with WebGPU on (SwiftShader where there is no GPU)
// against a running `vite preview`, and prints the GPU-vs-CPU figures as JSON. Usage:
//   npx vite preview --host 127.0.0.1 --port 4173 &  node scripts/bench-gpu-browser.mjs [samples] [rounds]
import { launchChromium } from './chromium.mjs';

const samples = process.argv[2] ?? '4096';
const rounds = process.argv[3] ?? '3';
const base = process.env.BASE_URL ?? 'http://127.0.0.1:4173/';
const browser = await launchChromium(['--enable-unsafe-webgpu', '--enable-unsafe-swiftshader']);
try {
  const page = await browser.newPage();
  await page.goto(`${base}bench-gpu.html?dataset=mnist&sigma=0.25&samples=${samples}&rounds=${rounds}`);
  await page.waitForFunction(() => document.body.dataset.status !== 'running', null, { timeout: 900_000 });
  console.log(await page.locator('#out').textContent());
} finally {
  await browser.close();
}
