import { defineConfig } from 'vite';
import { deploy } from './scripts/vite-deploy.ts';

// The site is static: index.html at the root, TypeScript in web/, the wasm-pack output in
// pkg/, models and test subsets in public/ (served as-is).
export default defineConfig({
  root: '.',
  publicDir: 'public',
  // relative URLs: dist/ works from any sub-path of any static host
  base: './',
  plugins: [deploy()],
  build: {
    outDir: 'dist',
    target: 'es2022',
    rollupOptions: { input: { main: 'index.html', bench: 'bench.html', 'bench-gpu': 'bench-gpu.html' } },
  },
  worker: { format: 'es' },
  server: { port: 5173, strictPort: true },
  preview: { port: 4173, strictPort: true },
});
