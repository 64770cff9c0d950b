// End-to-end: which wasm engine the page loads. Chromium validates relaxed-SIMD code, so the page
// loads the relaxed-SIMD build, whose integer kernels take i8 operands (relaxed dot products) at
// 4-bit activations; a browser that refuses relaxed SIMD (simulated: WebAssembly.validate
// refuses it before the page starts) and a link with ?simd=simd128 get the SIMD128 build (i16
// dot products). All three certify alike: the same counts for the same seed.
import { expect, test, type Page } from '@playwright/test';
import { certify, watch } from './helpers';

const POLICY = 'w=4,4,4,4,4,4,4,4&a=4,4,4,4,4,4,4,4';
const LINK = `#dataset=mnist&sigma=0.25&${POLICY}&n=300&count=3&seed=7&backend=cpu`;
const runInfo = (page: Page) => page.locator('#certify-run-info');

/** idx → [nA, predicted class] of the Certify table. */
async function certified(page: Page): Promise<Record<string, readonly [string, string]>> {
  const rows = await page.locator('#certify-table tbody tr').evaluateAll((trs) =>
    trs.map((tr) => [(tr as HTMLElement).dataset.idx!, [(tr as HTMLElement).dataset.na!, tr.children[2]!.textContent!]] as const),
  );
  return Object.fromEntries(rows);
}

async function certifyAt(page: Page, url: string, build: RegExp) {
  const seen = watch(page);
  await page.goto(url);
  await expect(page.locator('body')).toHaveAttribute('data-status', 'ready');
  await certify(page);
  await expect(runInfo(page)).toContainText(build);
  const rows = await certified(page);
  expect(Object.keys(rows)).toHaveLength(3);
  expect(seen.errors).toEqual([]);
  return rows;
}

test('relaxed SIMD where the browser has it, SIMD128 where it is refused or asked for, same counts', async ({ browser }) => {
  test.setTimeout(240_000);
  const open = async () => (await browser.newContext()).newPage();

  const relaxed = await certifyAt(await open(), `./${LINK}`, /wasm relaxed SIMD/);

  // A browser without relaxed SIMD: the probe module does not validate.
  const refusing = await open();
  await refusing.addInitScript(() => {
    const validate = WebAssembly.validate.bind(WebAssembly);
    const uses = (bytes: Uint8Array, op: number[]) =>
      bytes.some((_, i) => op.every((b, j) => bytes[i + j] === b));
    WebAssembly.validate = (source: BufferSource) => {
      const bytes = ArrayBuffer.isView(source)
        ? new Uint8Array(source.buffer, source.byteOffset, source.byteLength)
        : new Uint8Array(source);
      // i32x4.relaxed_dot_i8x16_i7x16_add_s is 0xfd 0x93 0x02
      return uses(bytes, [0xfd, 0x93, 0x02]) ? false : validate(source);
    };
  });
  const refused = await certifyAt(refusing, `./${LINK}`, /wasm SIMD128/);

  const asked = await certifyAt(await open(), `./?simd=simd128${LINK}`, /wasm SIMD128/);

  expect(refused).toEqual(relaxed);
  expect(asked).toEqual(relaxed);
});
