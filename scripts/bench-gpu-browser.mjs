// One command for the browser's GPU figures: serves dist/ (`vite preview`, unless BASE_URL names
// a running server), drives bench-gpu.html in headless Chromium with WebGPU on (SwiftShader where
// there is no GPU) and prints WebGPU against the CPU wasm path, measured in the same run, as JSON.
// Assumes scripts/build-site.sh has run. Usage: node scripts/bench-gpu-browser.mjs [samples] [rounds]
import { spawn } from 'node:child_process';
import { launchChromium } from './chromium.mjs';

const samples = process.argv[2] ?? '4096';
const rounds = process.argv[3] ?? '3';
let base = process.env.BASE_URL;
let server = null;
if (!base) {
  const port = 4175;
  base = `http://127.0.0.1:${port}/`;
  server = spawn('node', ['node_modules/.bin/vite', 'preview', '--host', '127.0.0.1', '--port', String(port), '--strictPort'], {
    stdio: 'ignore',
  });
  for (let i = 0; i < 100; i++) {
    if (await fetch(base).then((r) => r.ok, () => false)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
}
const browser = await launchChromium(['--enable-unsafe-webgpu', '--enable-unsafe-swiftshader']);
try {
  const page = await browser.newPage();
  await page.goto(`${base}bench-gpu.html?dataset=mnist&sigma=0.25&samples=${samples}&rounds=${rounds}`);
  await page.waitForFunction(() => document.body.dataset.status !== 'running', null, { timeout: 1_800_000 });
  console.log(await page.locator('#out').textContent());
} finally {
  await browser.close();
  server?.kill();
}
