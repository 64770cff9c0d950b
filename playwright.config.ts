import { defineConfig } from '@playwright/test';
import { CHROMIUM, CHROMIUM_ARGS } from './tests/chromium';

// Drives Debian's Chromium (never a downloaded browser) against the built site served by
// `vite preview` on localhost, and (deploy.spec.ts) dist/ under a sub-path as a static host
// serves it. E2E_PORT lets several checkouts run their suites at once.
const port = Number(process.env.E2E_PORT ?? 4173);
export default defineConfig({
  testDir: 'tests',
  timeout: 120_000,
  expect: { timeout: 60_000 },
  workers: 1,
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    baseURL: `http://127.0.0.1:${port}/`,
    launchOptions: { executablePath: CHROMIUM, args: CHROMIUM_ARGS },
  },
  webServer: [
    {
      command: `npx vite preview --host 127.0.0.1 --port ${port} --strictPort`,
      url: `http://127.0.0.1:${port}/`,
      reuseExistingServer: false,
      timeout: 60_000,
    },
    {
      // dist/ as deployed: under a sub-path, precompressed, with dist/_headers (deploy.spec.ts)
      command: `node scripts/serve-dist.mjs --port ${port + 7} --base /bitsmooth/`,
      url: `http://127.0.0.1:${port + 7}/bitsmooth/`,
      reuseExistingServer: false,
      timeout: 60_000,
    },
  ],
});
