import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // One copy of graphql: the one Pothos and Yoga load (Node resolves its "main"), not
    // Vite's pick of the "module" build, or types from two realms would meet.
    alias: [{ find: /^graphql$/, replacement: createRequire(import.meta.url).resolve('graphql') }],
  },
  test: {
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each file gets its own database and server; two cores run two files at once.
    pool: 'forks',
    maxWorkers: 2,
  },
});
