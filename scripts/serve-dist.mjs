// A static host for dist/ as a deployment would see it: the site under a sub-path (default
// /bitsmooth/), precompressed files (.br, .gz) chosen by Accept-Encoding, and the headers of
// dist/_headers applied. Nothing outside the sub-path is served.
//
//   node scripts/serve-dist.mjs [--port 4180] [--base /bitsmooth/] [--dir dist] [--log]
// --log prints one line per file sent: `sent BYTES PATH ENCODING` (scripts/bench-load.mjs).
import { createServer } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve } from 'node:path';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const port = Number(option('port', '4180'));
const base = option('base', '/bitsmooth/').replace(/\/?$/, '/');
const root = resolve(option('dir', 'dist'));
const logging = args.includes('--log');
if (!existsSync(join(root, 'index.html'))) {
  console.error(`${root}/index.html is missing: build the site first (bash scripts/build-site.sh)`);
  process.exit(1);
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** The rules of a Netlify-style _headers file: [path pattern, [[name, value]...]]. */
function readHeaders() {
  const path = join(root, '_headers');
  if (!existsSync(path)) return [];
  const rules = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim() || line.trimStart().startsWith('#')) continue;
    if (!/^\s/.test(line)) rules.push([line.trim(), []]);
    else if (rules.length) {
      const at = line.indexOf(':');
      rules.at(-1)[1].push([line.slice(0, at).trim(), line.slice(at + 1).trim()]);
    }
  }
  return rules;
}
const rules = readHeaders();
const matches = (pattern, path) =>
  pattern.endsWith('/*') ? path.startsWith(pattern.slice(0, -1)) : path === pattern;

createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === base.slice(0, -1)) {
    res.writeHead(301, { Location: base }).end();
    return;
  }
  if (!url.pathname.startsWith(base)) {
    res.writeHead(404).end(`outside ${base}`);
    return;
  }
  let path = '/' + decodeURIComponent(url.pathname.slice(base.length));
  if (path.endsWith('/')) path += 'index.html';
  const file = normalize(join(root, path));
  if (!file.startsWith(root) || !existsSync(file) || !statSync(file).isFile()) {
    res.writeHead(404).end('not found');
    return;
  }
  const headers = { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', Vary: 'Accept-Encoding' };
  for (const [pattern, list] of rules) if (matches(pattern, path)) for (const [k, v] of list) headers[k] = v;
  const accepts = String(req.headers['accept-encoding'] ?? '');
  let body = file;
  for (const [enc, ext] of [['br', '.br'], ['gzip', '.gz']]) {
    if (accepts.includes(enc) && existsSync(file + ext)) {
      headers['Content-Encoding'] = enc;
      body = file + ext;
      break;
    }
  }
  const data = readFileSync(body);
  headers['Content-Length'] = data.length;
  if (logging && req.method !== 'HEAD') console.log(`sent ${data.length} ${path} ${headers['Content-Encoding'] ?? 'identity'}`);
  res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : data);
}).listen(port, '127.0.0.1', () => console.log(`dist/ at http://127.0.0.1:${port}${base}`));
