/**
 * Builds dist/ when a source changed since the last build (tests that start the server, the
 * token tool or pipectl as processes run the built files, as production does), and applies
 * the real migrations (prisma migrate deploy) once to a template database; every test file
 * copies it, so each starts from a fresh, fully migrated file.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    templateDatabase: string;
  }
}

export default function setup(project: TestProject) {
  execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { stdio: 'inherit' });
  const dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-test-'));
  const file = path.join(dir, 'template.db');
  execFileSync('npx', ['prisma', 'migrate', 'deploy'], {
    env: { ...process.env, DATABASE_URL: `file:${file}` },
    stdio: 'pipe',
  });
  project.provide('templateDatabase', file);
  return () => rmSync(dir, { recursive: true, force: true });
}
