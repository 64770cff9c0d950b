// Latency of the Bits panel (docs/benchmarks.md, issue 14 item 1): the time from pressing a
// preset to the new policy's accuracy being on screen — first on the images classified so far,
// then on all shipped test images — measured in the page (performance.now() at the click, a MutationObserver on the accuracy line), on the
// built site served by scripts/serve-dist.mjs in headless Chromium.
//
//   node scripts/bench-bits.mjs [--reps 12] [--port 4191]
import { spawn } from 'node:child_process';
import { chromium } from '@playwright/test';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const reps = Number(option('reps', '12'));
const port = Number(option('port', '4191'));
const server = spawn('node', ['scripts/serve-dist.mjs', '--port', String(port), '--base', '/bitsmooth/'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
await new Promise((ready) => server.stdout.once('data', ready));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless=new', '--no-sandbox'],
});
const times = [];
try {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${port}/bitsmooth/`);
  await page.waitForFunction(() => document.body.dataset.status === 'ready', null, { timeout: 120_000 });
  const presets = ['w4a4', 'w2a2', 'w6a6', 'w8a8 (stored)'];
  for (let i = 0; i < reps; i += 1) {
    const name = presets[i % presets.length];
    const ms = await page.evaluate(async (name) => {
      const button = [...document.querySelectorAll('[data-preset]')].find((b) => b.textContent === name);
      const line = document.querySelector('#bits-accuracy');
      const panel = document.querySelector('#bits-panel');
      const label = name.replace(' (stored)', '');
      return new Promise((done) => {
        const start = performance.now();
        let first = null;
        const check = (obs) => {
          if (first === null && line.textContent.includes(`Accuracy at ${label}`) && /%/.test(line.textContent)) {
            first = performance.now() - start;
          }
          if (first !== null && panel.dataset.status === 'ready' && !/so far/.test(line.textContent)) {
            obs.disconnect();
            done({ first, final: performance.now() - start });
          }
        };
        const obs = new MutationObserver(() => check(obs));
        obs.observe(panel, { childList: true, subtree: true, characterData: true, attributes: true });
        button.click();
      });
    }, name);
    await page.waitForFunction(() => document.body.dataset.status === 'ready');
    times.push(ms);
    console.log(`${name}: first accuracy ${ms.first.toFixed(0)} ms, all images ${ms.final.toFixed(0)} ms`);
  }
} finally {
  await browser.close();
  server.kill();
}
const stats = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return `median ${sorted[Math.floor(xs.length / 2)].toFixed(0)} ms (min ${sorted[0].toFixed(0)}, max ${sorted.at(-1).toFixed(0)})`;
};
console.log(`preset → first accuracy on screen over ${reps} switches: ${stats(times.map((t) => t.first))}`);
console.log(`preset → accuracy on all ${'1,000'} images: ${stats(times.map((t) => t.final))}`);
