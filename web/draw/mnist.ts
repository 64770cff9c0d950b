// A drawing or an image file made into a model input the way MNIST's digits were made
// (LeCun et al.): the ink's bounding box scaled to fit 20×20 keeping its aspect ratio, then
// placed in a 28×28 field so that its centre of mass sits at the centre. Values are ink
// intensities in [0, 1] (1 = full ink); bytes 0..255 at the end, as the engine takes them.

export const SIDE = 28;
const BOX = 20;
/** Below this intensity a pixel is background when finding the bounding box. */
const INK = 0.1;

/** A grayscale image: `width × height` intensities in [0, 1], row-major. */
export interface Gray {
  width: number;
  height: number;
  values: Float32Array;
}

/** Gray intensities of RGBA pixels composited on white paper; `invert` for dark ink on light
 * paper (ink = 1 − luminance), else light ink on dark (ink = luminance). */
export function grayOf(rgba: Uint8ClampedArray, width: number, height: number, invert: boolean): Gray {
  const values = new Float32Array(width * height);
  for (let i = 0; i < width * height; i++) {
    const [r, g, b, a] = [rgba[4 * i]!, rgba[4 * i + 1]!, rgba[4 * i + 2]!, rgba[4 * i + 3]! / 255];
    const lum = ((0.299 * r + 0.587 * g + 0.114 * b) / 255) * a + (1 - a);
    values[i] = invert ? 1 - lum : lum;
  }
  return { width, height, values };
}

/** Whether an image is dark ink on light paper (its border is mostly light). */
export function looksInverted(g: Gray): boolean {
  let sum = 0;
  let n = 0;
  for (let x = 0; x < g.width; x++) {
    sum += g.values[x]! + g.values[(g.height - 1) * g.width + x]!;
    n += 2;
  }
  for (let y = 0; y < g.height; y++) {
    sum += g.values[y * g.width]! + g.values[y * g.width + g.width - 1]!;
    n += 2;
  }
  return sum / n > 0.5;
}

/** Area-average resampling of the rectangle (x0, y0, w, h) of `g` to `tw × th`. */
function resample(g: Gray, x0: number, y0: number, w: number, h: number, tw: number, th: number): Float32Array {
  const out = new Float32Array(tw * th);
  const sx = w / tw;
  const sy = h / th;
  for (let ty = 0; ty < th; ty++) {
    for (let tx = 0; tx < tw; tx++) {
      const [ax, bx, ay, by] = [x0 + tx * sx, x0 + (tx + 1) * sx, y0 + ty * sy, y0 + (ty + 1) * sy];
      let sum = 0;
      let area = 0;
      for (let y = Math.floor(ay); y < Math.ceil(by); y++) {
        const cy = Math.min(by, y + 1) - Math.max(ay, y);
        for (let x = Math.floor(ax); x < Math.ceil(bx); x++) {
          const cx = Math.min(bx, x + 1) - Math.max(ax, x);
          sum += g.values[y * g.width + x]! * cx * cy;
          area += cx * cy;
        }
      }
      out[ty * tw + tx] = area > 0 ? sum / area : 0;
    }
  }
  return out;
}

/** The 28×28 input (bytes 0..255) for `g`, or null when it holds no ink. */
export function toMnist(g: Gray): Uint8Array | null {
  let [minX, minY, maxX, maxY] = [g.width, g.height, -1, -1];
  for (let y = 0; y < g.height; y++) {
    for (let x = 0; x < g.width; x++) {
      if (g.values[y * g.width + x]! > INK) {
        minX = Math.min(minX, x);
        maxX = Math.max(maxX, x);
        minY = Math.min(minY, y);
        maxY = Math.max(maxY, y);
      }
    }
  }
  if (maxX < 0) return null;
  const [w, h] = [maxX - minX + 1, maxY - minY + 1];
  const scale = BOX / Math.max(w, h);
  const [tw, th] = [Math.max(1, Math.round(w * scale)), Math.max(1, Math.round(h * scale))];
  const box = resample(g, minX, minY, w, h, tw, th);
  // centre of mass of the scaled ink, moved to the field's centre (14, 14)
  let [mass, mx, my] = [0, 0, 0];
  for (let y = 0; y < th; y++) {
    for (let x = 0; x < tw; x++) {
      const v = box[y * tw + x]!;
      mass += v;
      mx += v * (x + 0.5);
      my += v * (y + 0.5);
    }
  }
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  const ox = clamp(Math.round(SIDE / 2 - mx / mass), SIDE - tw);
  const oy = clamp(Math.round(SIDE / 2 - my / mass), SIDE - th);
  const out = new Uint8Array(SIDE * SIDE);
  for (let y = 0; y < th; y++) {
    for (let x = 0; x < tw; x++) {
      out[(oy + y) * SIDE + ox + x] = Math.round(clamp(box[y * tw + x]!, 1) * 255);
    }
  }
  return out;
}
