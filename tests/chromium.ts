// How the end-to-end tests start Debian's Chromium: headless, offline, no first-run noise.
// WebGPU stays off unless a spec asks for it (gpu.spec.ts): the page then certifies on the CPU
// workers, as in a browser without a GPU.
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** WebGPU on SwiftShader (a GPU emulated on the CPU): Chromium offers no adapter without these. */
export const WEBGPU_ARGS = ['--enable-unsafe-webgpu', '--enable-unsafe-swiftshader'];
