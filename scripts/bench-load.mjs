// First load of the deployed site (docs/benchmarks.md, issue 14 item 7): dist/ served under a
// sub-path by scripts/serve-dist.mjs (precompressed), loaded in headless Chromium with an
// empty cache; prints the time from navigation to the first accuracy on screen and the bytes
// the server sent (page and workers, bodies as encoded on the wire), for each run and the
// median. A fresh browser context per run: nothing cached.
//
//   node scripts/bench-load.mjs [--runs 5] [--port 4190] [--identity]
// --identity serves without compression (the same files, Accept-Encoding ignored).
import { spawn } from 'node:child_process';
import { chromium } from '@playwright/test';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const runs = Number(option('runs', '5'));
const port = Number(option('port', '4190'));
const identity = args.includes('--identity');
const url = `http://127.0.0.1:${port}/bitsmooth/`;

const server = spawn('node', ['scripts/serve-dist.mjs', '--port', String(port), '--base', '/bitsmooth/', '--log'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
await new Promise((ready) => server.stdout.once('data', ready));
// bytes the server sent (bodies as encoded on the wire), counted from its log
let sent = 0;
let files = 0;
server.stdout.on('data', (chunk) => {
  for (const m of String(chunk).matchAll(/^sent (\d+) /gm)) {
    sent += Number(m[1]);
    files += 1;
  }
});

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless=new', '--no-sandbox', '--disable-background-networking', '--disable-component-update'],
});
const results = [];
try {
  for (let run = 0; run < runs; run += 1) {
    const context = await browser.newContext();
    const page = await context.newPage();
    if (identity) await context.setExtraHTTPHeaders({ 'Accept-Encoding': 'identity' });
    const [sent0, files0] = [sent, files];
    const start = Date.now();
    await page.goto(url);
    await page.waitForSelector('#accuracy[data-accuracy]', { timeout: 120_000 });
    const ms = Date.now() - start;
    await page.waitForFunction(() => document.body.dataset.status === 'ready');
    await new Promise((r) => setTimeout(r, 200)); // the server's last log lines
    const [bytes, requests] = [sent - sent0, files - files0];
    results.push({ ms, bytes, requests });
    console.log(`run ${run + 1}: first accuracy after ${ms} ms, ${(bytes / 1e6).toFixed(3)} MB in ${requests} files`);
    await context.close();
  }
} finally {
  await browser.close();
  server.kill();
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(
  `median of ${runs} cold loads (${identity ? 'uncompressed' : 'brotli'}): first accuracy ${median(results.map((r) => r.ms))} ms, ` +
    `${(median(results.map((r) => r.bytes)) / 1e6).toFixed(3)} MB transferred`,
);
