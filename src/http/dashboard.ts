/**
 * The dashboard's static files (dist/dashboard, built by scripts/build.mjs from dashboard/),
 * served by the API role at `/`. All are read and compressed (brotli, gzip) once, at start:
 * they are a few tens of kB. Hashed assets (/assets/*) never change under their name and
 * are cached for good; index.html is revalidated on every visit (ETag), so an upgrade shows
 * at once. Any other GET for a page is answered with index.html (the client routes), except
 * /graphql, which stays Yoga's (GraphQL, SSE, GraphiQL), and /health and /metrics, which
 * the probes answer before this runs.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { chooseEncoding } from '../graphiql.ts';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

/** Only what the dashboard needs: its own scripts, styles and API (fetch and graphql-ws). */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

interface File {
  type: string;
  cacheControl: string;
  etag: string;
  bodies: { identity: Buffer; gzip: Buffer; br: Buffer };
}

/** dist/dashboard beside the built server (dist/server.js), or from the sources (src/http). */
export function defaultDashboardDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return [path.join(here, 'dashboard'), path.join(here, '..', '..', 'dist', 'dashboard')].find((dir) => existsSync(path.join(dir, 'index.html'))) ?? path.join(here, 'dashboard');
}

/**
 * A request handler for the dashboard: true when it answered. Without a build it answers
 * pages with 503 and says how to build, rather than failing the service's start.
 */
export function createDashboard(dir = defaultDashboardDir()): (req: IncomingMessage, res: ServerResponse) => boolean {
  const files = new Map<string, File>();
  if (existsSync(path.join(dir, 'index.html'))) {
    for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const relative = path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/');
      // Vite's manifest (.vite/) is for the build, not for browsers.
      if (relative.startsWith('.')) continue;
      const identity = readFileSync(path.join(dir, relative));
      files.set(`/${relative}`, {
        type: TYPES[path.extname(relative)] ?? 'application/octet-stream',
        cacheControl: relative.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
        etag: `"${createHash('sha256').update(identity).digest('base64url').slice(0, 27)}"`,
        bodies: {
          identity,
          gzip: gzipSync(identity, { level: 9 }),
          br: brotliCompressSync(identity, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: identity.length } }),
        },
      });
    }
  }

  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const pathname = new URL(req.url ?? '/', 'http://dashboard').pathname;
    if (pathname === '/graphql' || pathname.startsWith('/graphql/')) return false;
    let file = files.get(pathname);
    if (!file) {
      // A missing asset is a 404 (a stale page asking for an old hash); a page is the app's.
      const isPage = !pathname.startsWith('/assets/') && !path.extname(pathname);
      if (!isPage) {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS });
        res.end(`Not found: ${pathname}\n`);
        return true;
      }
      file = files.get('/index.html');
      if (!file) {
        res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
        res.end(`The dashboard is not built (no ${dir}/index.html). Run npm run build. GraphQL is served at /graphql.\n`);
        return true;
      }
    }
    const encoding = chooseEncoding(req.headers['accept-encoding'] ?? null);
    // One ETag per encoding: each is a different sequence of bytes.
    const etag = encoding === 'identity' ? file.etag : `${file.etag.slice(0, -1)}-${encoding}"`;
    const headers: Record<string, string> = { 'content-type': file.type, 'cache-control': file.cacheControl, etag, vary: 'Accept-Encoding', ...SECURITY_HEADERS };
    const ifNoneMatch = req.headers['if-none-match'];
    if (ifNoneMatch && ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag)) {
      res.writeHead(304, headers);
      res.end();
      return true;
    }
    const body = file.bodies[encoding];
    if (encoding !== 'identity') headers['content-encoding'] = encoding;
    headers['content-length'] = String(body.length);
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}
