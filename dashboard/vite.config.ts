/**
 * The dashboard's build: scripts/build.mjs runs it (at `npm ci`, and at `npm start` when a
 * source changed) into dist/dashboard, which the API role serves at `/` (src/http/dashboard.ts).
 * Asset names carry a content hash, so the service may let browsers keep them for good.
 */
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  plugins: [preact()],
  build: {
    outDir: '../dist/dashboard',
    emptyOutDir: true,
    // The service serves what is here and nothing more: no source maps to leak the source.
    sourcemap: false,
    manifest: true,
    reportCompressedSize: false,
  },
  logLevel: 'warn',
});
