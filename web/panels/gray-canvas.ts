// Draws one 28×28 grayscale image (bytes 0..255) into a canvas; CSS scales it up pixelated.
const SIDE = 28;

/** A canvas showing image `i` of a buffer of consecutive 28×28 images. */
export function grayCanvas(pixels: Uint8Array, i: number): HTMLCanvasElement {
  const c = document.createElement('canvas');
  c.width = SIDE;
  c.height = SIDE;
  const ctx = c.getContext('2d')!;
  const img = ctx.createImageData(SIDE, SIDE);
  const px = pixels.subarray(i * SIDE * SIDE, (i + 1) * SIDE * SIDE);
  for (let k = 0; k < SIDE * SIDE; k++) {
    const v = px[k]!;
    img.data[4 * k] = v;
    img.data[4 * k + 1] = v;
    img.data[4 * k + 2] = v;
    img.data[4 * k + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return c;
}
