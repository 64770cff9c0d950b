// What makes dist/ deployable on any static host (issue 14, item 7), as a Vite plugin that only
// runs for `vite build`:
// - a Content-Security-Policy that allows the site itself and WebAssembly compilation only,
//   as a <meta> in every page (works on any host) and in dist/_headers (hosts that read that
//   file, e.g. Netlify and Cloudflare Pages, send it as a header, which also covers workers);
// - long-lived caching of the models and test subsets in the same _headers file;
// - every compressible file precompressed beside the original (.br and .gz), for hosts that
//   serve precompressed files (and scripts/serve-dist.mjs, which the tests use).
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Plugin } from 'vite';

/** The site's own origin, plus WebAssembly compilation ('wasm-unsafe-eval'); nothing else. */
export const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "worker-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
].join('; ');

const COMPRESSIBLE = /\.(html|js|mjs|css|wasm|json|bsds|safetensors|svg|txt|map)$/;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

/** Writes FILE.br and FILE.gz for each compressible file of `dir` that they make smaller. */
export function precompress(dir: string): { files: number; bytes: number; br: number } {
  let count = 0;
  let bytes = 0;
  let br = 0;
  for (const path of files(dir)) {
    if (!COMPRESSIBLE.test(path)) continue;
    const data = readFileSync(path);
    if (data.length < 1024) continue;
    const brotli = brotliCompressSync(data, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: 11,
        [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
      },
    });
    const gzip = gzipSync(data, { level: 9 });
    if (brotli.length < data.length) writeFileSync(`${path}.br`, brotli);
    if (gzip.length < data.length) writeFileSync(`${path}.gz`, gzip);
    count += 1;
    bytes += data.length;
    br += Math.min(brotli.length, data.length);
  }
  return { files: count, bytes, br };
}

const HEADERS = `# Headers for static hosts that read this file (Netlify, Cloudflare Pages); written by
# scripts/vite-deploy.ts. Paths are relative to wherever the site is deployed.
/*
  Content-Security-Policy: ${CSP}; frame-ancestors 'self'
  X-Content-Type-Options: nosniff
  Referrer-Policy: no-referrer
/models/*
  Cache-Control: public, max-age=86400
/data/*
  Cache-Control: public, max-age=86400
/assets/*
  Cache-Control: public, max-age=31536000, immutable
`;

export function deploy(): Plugin {
  let outDir = 'dist';
  return {
    name: 'bitsmooth-deploy',
    apply: 'build',
    configResolved(config) {
      outDir = config.build.outDir;
    },
    transformIndexHtml: {
      order: 'post',
      handler: () => [
        { tag: 'meta', attrs: { 'http-equiv': 'Content-Security-Policy', content: CSP }, injectTo: 'head-prepend' },
      ],
    },
    closeBundle() {
      writeFileSync(join(outDir, '_headers'), HEADERS);
      const r = precompress(outDir);
      const mb = (b: number) => (b / 1e6).toFixed(2);
      console.log(
        `precompressed ${r.files} files in ${relative('.', outDir) || '.'}: ${mb(r.bytes)} MB → ${mb(r.br)} MB with brotli`,
      );
    },
  };
}
