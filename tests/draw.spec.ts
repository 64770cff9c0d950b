// End-to-end: draw your own (issue 14, item 2). A digit drawn with synthetic pointer events is
// made into a centred 28×28 input, predicted at the current bits beside the stored model, and
// certified; image files are read the same way; other files get a message.
import { expect, test, type Page } from '@playwright/test';
import { watch } from './helpers';

/** Drags the pointer through `points` (fractions of the drawing area). */
async function drawPath(page: Page, points: [number, number][]): Promise<void> {
  await page.locator('#draw-canvas').scrollIntoViewIfNeeded();
  const box = (await page.locator('#draw-canvas').boundingBox())!;
  const at = ([x, y]: [number, number]) => [box.x + x * box.width, box.y + y * box.height] as const;
  await page.mouse.move(...at(points[0]!));
  await page.mouse.down();
  for (const p of points.slice(1)) await page.mouse.move(...at(p), { steps: 6 });
  await page.mouse.up();
}

/** The model input shown (28×28 gray values 0..255), read back from its canvas. */
async function shownInput(page: Page): Promise<number[]> {
  return page.locator('#draw-input canvas').evaluate((c: HTMLCanvasElement) => {
    const d = c.getContext('2d')!.getImageData(0, 0, 28, 28).data;
    return Array.from({ length: 28 * 28 }, (_, i) => d[4 * i]!);
  });
}

test('a drawn 1 is centred the MNIST way, predicted live at the current bits, and certified', async ({ page }) => {
  const seen = watch(page);
  await page.goto('./#w=4,4,4,4,4,4,4,4&a=4,4,4,4,4,4,4,4');
  await expect(page.locator('body')).toHaveAttribute('data-status', 'ready');
  // a vertical stroke far off to the left and high up
  await drawPath(page, [
    [0.2, 0.1],
    [0.2, 0.3],
    [0.2, 0.5],
  ]);
  await expect(page.locator('#draw-prediction')).toHaveAttribute('data-prediction', '1');
  await expect(page.locator('#draw-prediction')).toContainText('At the current bits: 1');
  await expect(page.locator('#draw-prediction')).toContainText('stored model: 1');
  // the input, read back: its ink fits in 20 rows, and its centre of mass is within a pixel of
  // the centre (14, 14), though the stroke was drawn in the top-left of the area
  const px = await shownInput(page);
  let [mass, mx, my] = [0, 0, 0];
  const rows = new Set<number>();
  px.forEach((v, i) => {
    const [x, y] = [i % 28, Math.floor(i / 28)];
    mass += v;
    mx += v * (x + 0.5);
    my += v * (y + 0.5);
    if (v > 25) rows.add(y);
  });
  expect(Math.abs(mx / mass - 14)).toBeLessThanOrEqual(1);
  expect(Math.abs(my / mass - 14)).toBeLessThanOrEqual(1);
  expect(rows.size).toBeGreaterThanOrEqual(18);
  expect(rows.size).toBeLessThanOrEqual(20);

  await page.getByRole('button', { name: 'Certify my drawing' }).click();
  await expect(page.locator('#draw-certified')).toContainText('Certified 1 within radius r =');
  expect(Number(await page.locator('#draw-certified').getAttribute('data-radius'))).toBeGreaterThan(0);
  await expect(page.locator('#draw-noisy canvas')).toHaveCount(8);
  // Clear empties everything
  await page.getByRole('button', { name: 'Clear' }).click();
  await expect(page.locator('#draw-input canvas')).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Certify my drawing' })).toBeDisabled();
  expect(seen.errors).toEqual([]);
  expect(seen.external).toEqual([]);
});

test('an image file of a digit is read, and other files get a clear message', async ({ page }) => {
  const seen = watch(page);
  await page.goto('./');
  await expect(page.locator('body')).toHaveAttribute('data-status', 'ready');
  // a PNG of a dark "1" on white paper, made in the page (64×64)
  const png = await page.evaluate(async () => {
    const c = new OffscreenCanvas(64, 64);
    const g = c.getContext('2d')!;
    g.fillStyle = '#fff';
    g.fillRect(0, 0, 64, 64);
    g.fillStyle = '#000';
    g.fillRect(28, 8, 7, 48);
    const blob = await c.convertToBlob({ type: 'image/png' });
    return Array.from(new Uint8Array(await blob.arrayBuffer()));
  });
  const file = page.locator('#draw-file');
  await file.setInputFiles({ name: 'one.png', mimeType: 'image/png', buffer: Buffer.from(png) });
  await expect(page.locator('#draw-prediction')).toHaveAttribute('data-prediction', '1');
  await expect(page.locator('#draw-message')).toBeHidden();

  await file.setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a digit') });
  await expect(page.locator('#draw-message')).toContainText('notes.txt is not an image');
  await file.setInputFiles({ name: 'broken.png', mimeType: 'image/png', buffer: Buffer.from('garbage') });
  await expect(page.locator('#draw-message')).toContainText('broken.png could not be read as an image');
  // a 4×4 image is too small to hold a digit
  const tiny = await page.evaluate(async () => {
    const tinyCanvas = new OffscreenCanvas(4, 4);
    tinyCanvas.getContext('2d')!.fillRect(0, 0, 4, 4);
    const blob = await tinyCanvas.convertToBlob({ type: 'image/png' });
    return Array.from(new Uint8Array(await blob.arrayBuffer()));
  });
  await file.setInputFiles({ name: 'tiny.png', mimeType: 'image/png', buffer: Buffer.from(tiny) });
  await expect(page.locator('#draw-message')).toContainText('tiny.png is 4×4 pixels');
  // the page still works
  await expect(page.locator('#draw-prediction')).toHaveAttribute('data-prediction', '1');
  expect(seen.errors).toEqual([]);
});
