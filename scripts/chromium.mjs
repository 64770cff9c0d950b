// Debian's Chromium, headless and offline-quiet, for the scripts that drive the built site
// (bench-browser.mjs, screenshots.mjs); the tests' equivalent is playwright.config.ts.
import { chromium } from '@playwright/test';

/** `extra`: more flags, e.g. WebGPU's (bench-gpu-browser.mjs). */
export function launchChromium(extra = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless=new', '--no-sandbox', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic', ...extra],
  });
}
