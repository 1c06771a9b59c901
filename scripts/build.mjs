#!/usr/bin/env node
/**
 * The production build: bundles the service, its launcher, pipectl and the token tool into
 * dist/ with esbuild (packages stay in node_modules), so that a start loads a few built files
 * instead of compiling TypeScript through tsx. `npm ci` runs it (postinstall); `npm start`
 * runs it with --if-stale, which rebuilds only when a source file changed since the last
 * build (a stat of each input, a few milliseconds), so a start never runs stale code.
 *
 * Plain JavaScript on purpose: it runs before anything is compiled, without tsx.
 */
import { chmodSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = path.join(root, 'dist');
const manifestFile = path.join(outdir, 'build.json');

/** dist/<name>.js from src/<entry>; packages load from node_modules. */
const entries = {
  server: 'src/server.ts',
  pipectl: 'src/cli/pipectl.ts',
  'token-cli': 'src/token-cli.ts',
};
/**
 * The launcher bundles its few packages (execa and its helpers) too: it starts with every
 * service and should be small and quick, and one file is read and compiled faster than the
 * dozens of modules execa spreads over.
 */
const launcherEntry = 'src/executor/launcher.ts';

/** Whether some input of the last build changed (or is gone) since, or there is none. */
function stale() {
  if (!existsSync(manifestFile)) return true;
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));
  } catch {
    return true;
  }
  for (const name of [...Object.keys(entries), 'launcher']) if (!existsSync(path.join(outdir, `${name}.js`))) return true;
  for (const input of [...manifest.inputs, 'package-lock.json', 'scripts/build.mjs']) {
    try {
      if (statSync(path.join(root, input)).mtimeMs > manifest.builtAt) return true;
    } catch {
      return true;
    }
  }
  return false;
}

if (process.argv.includes('--if-stale') && !stale()) process.exit(0);

const started = performance.now();
const builtAt = Date.now();
rmSync(outdir, { recursive: true, force: true });
const common = {
  absWorkingDir: root,
  outdir,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
};
const [service, launcher] = await Promise.all([
  build({
    ...common,
    entryPoints: entries,
    // Dependencies load from node_modules as they are (better-sqlite3 is native, and Prisma's
    // runtime finds its files relative to itself); only the project's own code is bundled.
    packages: 'external',
    banner: { js: '#!/usr/bin/env node' },
  }),
  build({
    ...common,
    entryPoints: { launcher: launcherEntry },
    // Bundled CommonJS packages call require(): give the ES module one.
    banner: { js: "import { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);" },
  }),
]);
const inputs = [...new Set([...Object.keys(service.metafile.inputs), ...Object.keys(launcher.metafile.inputs)])].filter((input) => !input.startsWith('node_modules/'));
writeFileSync(manifestFile, `${JSON.stringify({ builtAt, inputs }, null, 2)}\n`);
chmodSync(path.join(outdir, 'pipectl.js'), 0o755);
const seconds = ((performance.now() - started) / 1000).toFixed(2);
process.stderr.write(`built dist/ (${[...Object.keys(entries), 'launcher'].join(', ')}; ${inputs.length} source files) in ${seconds} s\n`);
