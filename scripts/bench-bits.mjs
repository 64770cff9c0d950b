// Latency of the Bits panel (docs/benchmarks.md, issue 14 item 1): the time from pressing a
// preset, or stepping one layer's slider, to the new policy's accuracy being on screen, first
// on the images classified so far, then on all shipped test images. Measured in the page
// (performance.now() at the input, a MutationObserver on the accuracy line), on the built site
// served by scripts/serve-dist.mjs in headless Chromium.
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
const slider = [];
/** Runs `act` in the page and resolves, in ms from just before it, when the accuracy line first
 * shows a figure for a policy whose label contains `label`, and when it shows the final one. */
const timeAccuracy = (page, act, label) =>
  page.evaluate(
    ({ act, label }) => {
      const line = document.querySelector('#bits-accuracy');
      const panel = document.querySelector('#bits-panel');
      const before = line.textContent;
      return new Promise((done) => {
        let start = 0;
        let first = null;
        const check = (obs) => {
          const text = line.textContent;
          if (first === null && text !== before && text.includes(`Accuracy at ${label}`) && /%/.test(text)) {
            first = performance.now() - start;
          }
          if (first !== null && panel.dataset.status === 'ready' && !/so far/.test(text)) {
            obs.disconnect();
            done({ first, final: performance.now() - start });
          }
        };
        const obs = new MutationObserver(() => check(obs));
        obs.observe(panel, { childList: true, subtree: true, characterData: true, attributes: true });
        start = performance.now();
        if (act.preset) {
          [...document.querySelectorAll('[data-preset]')].find((b) => b.textContent === act.preset).click();
        } else {
          // what an arrow key on the slider does: a new value, then an input event
          const input = document.querySelector(act.slider);
          input.value = String(act.value);
          input.dispatchEvent(new Event('input', { bubbles: true }));
        }
      });
    },
    { act, label },
  );
try {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${port}/bitsmooth/`);
  await page.waitForFunction(() => document.body.dataset.status === 'ready', null, { timeout: 120_000 });
  const presets = ['w4a4', 'w2a2', 'w6a6', 'w8a8 (stored)'];
  for (let i = 0; i < reps; i += 1) {
    const name = presets[i % presets.length];
    const ms = await timeAccuracy(page, { preset: name }, name.replace(' (stored)', ''));
    await page.waitForFunction(() => document.body.dataset.status === 'ready');
    times.push(ms);
    console.log(`${name}: first accuracy ${ms.first.toFixed(0)} ms, all images ${ms.final.toFixed(0)} ms`);
  }
  // one slider step on layer 4's weights, 8 → 6 and back (the stored model is w8a8; the
  // shipped supernet's sliders step by 2, over its widths 8, 6, 4, 2)
  for (let i = 0; i < reps; i += 1) {
    const value = i % 2 === 0 ? 6 : 8;
    const ms = await timeAccuracy(page, { slider: '#bits-w-3', value }, value === 6 ? 'mixed' : 'w8a8');
    await page.waitForFunction(() => document.body.dataset.status === 'ready');
    slider.push(ms);
    console.log(`layer 4 weights → ${value} bit: first accuracy ${ms.first.toFixed(0)} ms, all images ${ms.final.toFixed(0)} ms`);
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
console.log(`slider step → first accuracy on screen over ${reps} steps: ${stats(slider.map((t) => t.first))}`);
console.log(`slider step → accuracy on all ${'1,000'} images: ${stats(slider.map((t) => t.final))}`);
