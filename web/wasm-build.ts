// Which build of the wasm engine a worker loads: the relaxed-SIMD build (pkg-relaxed/: its i8
// integer kernels use i32x4.relaxed_dot_i8x16_i7x16_add_s) where this browser validates
// relaxed-SIMD code, else the SIMD128 build (pkg/). Detected at run time, never assumed.

export type WasmBuild = 'relaxed-simd' | 'simd128';

/** The smallest module that uses the relaxed dot product: one function that pushes three
 * v128 zeros, applies i32x4.relaxed_dot_i8x16_i7x16_add_s (0xfd 0x113) and drops the result.
 * It validates exactly where the engine implements relaxed SIMD. */
const zeros = () => [0xfd, 0x0c, ...new Array<number>(16).fill(0)]; // v128.const 0
const body = [0x00, ...zeros(), ...zeros(), ...zeros(), 0xfd, 0x93, 0x02, 0x1a, 0x0b];
export const RELAXED_SIMD_PROBE = Uint8Array.of(
  ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // magic, version 1
  ...[0x01, 0x04, 0x01, 0x60, 0x00, 0x00], // types: () -> ()
  ...[0x03, 0x02, 0x01, 0x00], // functions: one of type 0
  ...[0x0a, body.length + 2, 0x01, body.length, ...body], // code
);

export function supportsRelaxedSimd(): boolean {
  try {
    return WebAssembly.validate(RELAXED_SIMD_PROBE);
  } catch {
    return false;
  }
}

/** The build for this page: `?simd=simd128` forces the fallback (to compare, or to test it);
 * anything else takes relaxed SIMD where the browser has it. */
export function chooseWasmBuild(search: string = globalThis.location?.search ?? ''): WasmBuild {
  const asked = new URLSearchParams(search).get('simd');
  if (asked === 'simd128') return 'simd128';
  return supportsRelaxedSimd() ? 'relaxed-simd' : 'simd128';
}

/** Worker names carry the page's choice after this separator (a worker runs no detection of
 * its own, so that what the page decided, and a test simulated, holds in every worker). */
const SEPARATOR = '#wasm=';

export function workerName(name: string, build: WasmBuild): string {
  return `${name}${SEPARATOR}${build}`;
}

/** The build a worker was named for; a worker started without one detects it itself. */
export function buildOfWorker(name: string): WasmBuild {
  const at = name.lastIndexOf(SEPARATOR);
  const build = at >= 0 ? name.slice(at + SEPARATOR.length) : '';
  if (build === 'relaxed-simd' || build === 'simd128') return build;
  return chooseWasmBuild('');
}
