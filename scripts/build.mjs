#!/usr/bin/env node
/**
 * The production build: bundles the service, its launcher, pipectl and the token tool into
 * dist/ with esbuild, each with the packages it uses, so that a start loads a few built files
 * instead of compiling TypeScript through tsx. `npm ci` runs it (postinstall); `npm start`
 * runs it with --if-stale, which rebuilds only when a source file changed since the last
 * build (a stat of each input, a few milliseconds), so a start never runs stale code.
 *
 * Plain JavaScript on purpose: it runs before anything is compiled, without tsx.
 */
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { DASHBOARD_JS_BUDGET_BYTES, initialDashboardJs } from './dashboard-size.mjs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = path.join(root, 'dist');
const manifestFile = path.join(outdir, 'build.json');

/** dist/<name>.js from src/<entry>. */
const entries = {
  server: 'src/server.ts',
  pipectl: 'src/cli/pipectl.ts',
  'token-cli': 'src/token-cli.ts',
};

/**
 * dist/launcher.cjs: CommonJS, so the launcher never loads Node's ES module loader (1.5 MB
 * of its RSS); it imports nothing that needs ESM.
 */
const launcherEntry = 'src/executor/launcher.ts';
const outputs = [...Object.keys(entries).map((name) => `${name}.js`), 'launcher.cjs', 'dashboard/index.html'];

/** The dashboard's sources (dashboard/, built by Vite into dist/dashboard), relative to the root. */
const dashboardDir = 'dashboard';
function dashboardInputs() {
  return readdirSync(path.join(root, dashboardDir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)));
}


/**
 * Left in node_modules: better-sqlite3 is native, Prisma's runtime loads its query compiler
 * from files beside itself, pg is what Prisma's PostgreSQL adapter (left there too) loads,
 * and bundled it misreads its own options, and GraphiQL's self-contained page (4 MB of script) is imported
 * on the first visit only, not read at every start. Everything else is bundled: resolving
 * and reading the service's ~1,200 module files took about half of a start's CPU time.
 */
const external = ['@prisma/*', 'better-sqlite3', '@graphql-yoga/render-graphiql', 'pg'];

/** Installing or updating packages rewrites this file: a build older than it is stale. */
const installed = 'node_modules/.package-lock.json';

/** Whether some input of the last build changed (or is gone) since, or there is none. */
function stale() {
  if (!existsSync(manifestFile)) return true;
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));
  } catch {
    return true;
  }
  for (const output of outputs) if (!existsSync(path.join(outdir, output))) return true;
  for (const input of [...manifest.inputs, installed, 'scripts/build.mjs']) {
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
// Loaded only now: a start whose build is current need not load esbuild at all.
const { build } = await import('esbuild');
const common = {
  absWorkingDir: root,
  bundle: true,
  external,
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
};
const [result, launcher] = await Promise.all([
  build({
    ...common,
    entryPoints: entries,
    outdir,
    format: 'esm',
    // One self-contained file per entry: the service finds its launcher beside itself.
    splitting: false,
    // pipectl is run as an executable; bundled CommonJS packages call require().
    banner: {
      js: "#!/usr/bin/env node\nimport { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);",
    },
  }),
  build({ ...common, entryPoints: [launcherEntry], outfile: path.join(outdir, 'launcher.cjs'), format: 'cjs' }),
]);
// The dashboard after the service: Vite is loaded only for a build, like esbuild.
const { build: viteBuild } = await import('vite');
// Always the production build: under vitest (NODE_ENV=test) Vite would keep Preact's debug code.
process.env.NODE_ENV = 'production';
await viteBuild({ configFile: path.join(root, dashboardDir, 'vite.config.ts'), mode: 'production', logLevel: 'warn' });
const initialJs = initialDashboardJs(path.join(outdir, 'dashboard'));
const inputs = [...new Set([...Object.keys(result.metafile.inputs), ...Object.keys(launcher.metafile.inputs), ...dashboardInputs()])].filter(
  (input) => !input.startsWith('node_modules/'),
);
writeFileSync(manifestFile, `${JSON.stringify({ builtAt, inputs }, null, 2)}\n`);
chmodSync(path.join(outdir, 'pipectl.js'), 0o755);
const seconds = ((performance.now() - started) / 1000).toFixed(2);
process.stderr.write(
  `built dist/ (${Object.keys(entries).join(', ')}, launcher, dashboard; ${inputs.length} source files) in ${seconds} s; ` +
    `the dashboard's initial JavaScript is ${(initialJs / 1000).toFixed(1)} kB gzip (budget ${DASHBOARD_JS_BUDGET_BYTES / 1000} kB)\n`,
);
if (initialJs > DASHBOARD_JS_BUDGET_BYTES) {
  process.stderr.write(`The dashboard's initial JavaScript is over its budget: lazy-load what the first page does not need.\n`);
  process.exit(1);
}

