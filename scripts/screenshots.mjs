// Regenerates the README's pictures (docs/*.png) from the real page in headless Chromium
// (Debian's), against a running `vite preview`. Usage:
//   npx vite preview --host 127.0.0.1 --port 4173 &  node scripts/screenshots.mjs
import { launchChromium } from './chromium.mjs';

const base = process.env.BASE_URL ?? 'http://127.0.0.1:4173/';
const browser = await launchChromium();
const minutes = 5 * 60_000;

/** Waits until the grid has classified with the current model and policy. */
async function ready(page) {
  await page.waitForSelector('body[data-status="ready"]', { timeout: minutes });
  await page.waitForSelector('#bits-panel[data-status="ready"]', { timeout: minutes });
}

/** Starts a certification with `button` and waits until it completes. */
async function certify(page, button) {
  await page.click(button);
  await page.waitForSelector('#certify-panel[data-status="running"]', { timeout: minutes });
  await page.waitForSelector('#certify-panel[data-status="completed"]', { timeout: minutes });
}

try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });

  // the playground as a visitor first sees it
  await page.goto(`${base}#dataset=mnist&sigma=0.25`);
  await ready(page);
  await page.screenshot({ path: 'docs/screenshot.png' });

  // the Bits panel at w4a4: accuracy, BOPs, size, the histograms beside the 8-bit master
  await page.getByRole('button', { name: 'w4a4', exact: true }).click();
  await page.waitForSelector('#bits-panel[data-policy="w4a4"]', { timeout: minutes });
  await ready(page);
  await page.locator('#bits-panel').screenshot({ path: 'docs/bits.png' });

  // the Certify panel: the stored int8 model, the float model it was trained from and w2a2
  // overlaid, then one selected image with its noisy copies and class counts
  await page.goto(`${base}#dataset=mnist&sigma=0.25&n=1000&count=50&seed=0&selected=8`);
  await ready(page);
  await certify(page, '#certify-run');
  await certify(page, '#certify-float');
  await page.getByRole('button', { name: 'w2a2', exact: true }).click();
  await page.waitForSelector('#bits-panel[data-policy="w2a2"]', { timeout: minutes });
  await ready(page);
  await certify(page, '#certify-run');
  await page.click('#certify-selected');
  await page.waitForSelector('#certify-selected-view[data-status="done"]', { timeout: minutes });
  await page.locator('#certify-panel').screenshot({ path: 'docs/certify.png' });

  // the Search panel after a short HAQ search (seed 0): reward curve, Pareto plot, policy
  await page.goto(`${base}#dataset=mnist&sigma=0.25`);
  await ready(page);
  await page.waitForSelector('#search-start:not([disabled])', { timeout: minutes });
  await page.selectOption('#search-method', 'haq');
  await page.fill('#search-episodes', '30');
  await page.fill('#search-val', '100');
  await page.click('#search-start');
  await page.waitForSelector('#search-panel[data-status="done"]', { timeout: 3 * minutes });
  await page.locator('#search-panel').screenshot({ path: 'docs/search.png' });

  // Draw your own: a 7 drawn with the pointer at w4a4, predicted and certified
  await page.goto(`${base}#dataset=mnist&sigma=0.25&w=4,4,4,4,4,4,4,4&a=4,4,4,4,4,4,4,4`);
  await ready(page);
  const canvas = page.locator('#draw-canvas');
  await canvas.scrollIntoViewIfNeeded();
  const box = await canvas.boundingBox();
  const at = (x, y) => [box.x + x * box.width, box.y + y * box.height];
  await page.mouse.move(...at(0.25, 0.2));
  await page.mouse.down();
  for (const [x, y] of [
    [0.75, 0.2],
    [0.5, 0.85],
  ])
    await page.mouse.move(...at(x, y), { steps: 12 });
  await page.mouse.up();
  await page.waitForSelector('#draw-prediction[data-prediction]', { timeout: minutes });
  await page.click('#draw-certify');
  await page.waitForSelector('#draw-certified[data-radius]', { timeout: minutes });
  await page.locator('#draw-panel').screenshot({ path: 'docs/draw.png' });
} finally {
  await browser.close();
}
