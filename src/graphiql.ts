/**
 * GraphiQL served by the service itself: the self-contained page of
 * @graphql-yoga/render-graphiql (script, styles, fonts and Monaco's workers inline), so it
 * works on a machine without internet, where Yoga's default page (which loads all of
 * them from unpkg.com) stays blank. The page is about 9 MB: it is rendered and compressed
 * once, on the first visit, and sent compressed with an ETag so that a browser's next
 * visit costs a 304.
 */
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { brotliCompress, constants, gzip } from 'node:zlib';
import { shouldRenderGraphiQL, type GraphiQLOptions, type Plugin } from 'graphql-yoga';

/** A small DAG drawn in SVG: GraphiQL's default favicon would be a 150 KB icon. */
export const FAVICON = `data:image/svg+xml,${encodeURIComponent(
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path d="M4 3.5 12 8 4 12.5" fill="none" stroke="#e10098" stroke-width="1.5"/>' +
    '<circle cx="4" cy="3.5" r="2.5" fill="#e10098"/><circle cx="12" cy="8" r="2.5" fill="#e10098"/><circle cx="4" cy="12.5" r="2.5" fill="#e10098"/></svg>',
)}`;

type Encoding = 'br' | 'gzip' | 'identity';

/** A Buffer's bytes as the Uint8Array a Response body takes (no copy). */
const bytesOf = (buffer: Buffer) => new Uint8Array(buffer.buffer as ArrayBuffer, buffer.byteOffset, buffer.byteLength);

const compressors: Record<Exclude<Encoding, 'identity'>, (raw: Buffer) => Promise<Buffer>> = {
  // Quality 6 (0.2 s of CPU for this page): 9 saves 3% more for five times the CPU, 11
  // saves 10% for a hundred times (20 s); much of the page is base64 fonts, which barely shrink.
  br: (raw) =>
    promisify(brotliCompress)(raw, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 6, [constants.BROTLI_PARAM_SIZE_HINT]: raw.length, [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT },
    }),
  gzip: (raw) => promisify(gzip)(raw),
};

export interface ServedGraphiQL {
  /** For createYoga's `graphiql`. */
  options: GraphiQLOptions;
  /** For createYoga's `renderGraphiQL`: the page, uncompressed (UTF-8). */
  render(): Promise<Uint8Array<ArrayBuffer>>;
  /**
   * Adds the page's ETag to Yoga's GraphiQL response, and replaces it with the page
   * compressed as the browser accepts, or with 304 when the browser has it.
   */
  plugin: Plugin;
}

/**
 * The GraphiQL page for fixed `options` (no per-request factory: the page is rendered
 * once). Nothing is loaded before the first visit: the renderer module alone is 4 MB.
 */
export function servedGraphiQL(options: GraphiQLOptions): ServedGraphiQL {
  let page: Promise<{ raw: Uint8Array<ArrayBuffer>; tag: string }> | undefined;
  const rendered = () =>
    (page ??= renderInWorker(options).then((html) => {
      const raw = Buffer.from(html);
      return { raw: bytesOf(raw), tag: createHash('sha256').update(raw).digest('base64url').slice(0, 27) };
    }));
  const compressed = new Map<Exclude<Encoding, 'identity'>, Promise<Uint8Array<ArrayBuffer>>>();
  const compressedPage = (encoding: Exclude<Encoding, 'identity'>) => {
    let bytes = compressed.get(encoding);
    if (!bytes) {
      // Set before any await: visitors arriving together share one compression.
      bytes = rendered().then(({ raw }) => compressors[encoding](Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength)).then(bytesOf));
      compressed.set(encoding, bytes);
    }
    return bytes;
  };

  return {
    options,
    render: async () => (await rendered()).raw,
    plugin: {
      async onResponse({ request, response, setResponse, fetchAPI }) {
        // Only Yoga's GraphiQL answers a GraphiQL request with an HTML page.
        if (!shouldRenderGraphiQL(request) || response.status !== 200 || !response.headers.get('content-type')?.startsWith('text/html')) return;
        const encoding = chooseEncoding(request.headers.get('accept-encoding'));
        const { tag } = await rendered();
        // One ETag per encoding: each is a different sequence of bytes.
        const etag = `"${tag}${encoding === 'identity' ? '' : `-${encoding}`}"`;
        const validated = (headers: Headers) => {
          headers.set('etag', etag);
          // Stored, but checked with the service on every visit: an upgrade shows at once.
          headers.set('cache-control', 'no-cache');
          headers.append('vary', 'Accept-Encoding');
          return headers;
        };
        // Yoga's headers (CORS among them) without those of its uncompressed body.
        const headersWithoutBody = () => {
          const headers = new fetchAPI.Headers();
          response.headers.forEach((value, name) => {
            if (!['content-type', 'content-length', 'content-encoding'].includes(name.toLowerCase())) headers.append(name, value);
          });
          return validated(headers);
        };
        if (matches(request.headers.get('if-none-match'), etag)) {
          setResponse(new fetchAPI.Response(null, { status: 304, headers: headersWithoutBody() }));
          return;
        }
        if (encoding === 'identity') {
          // Yoga's response as it is: the page render() returned.
          validated(response.headers).set('content-type', 'text/html; charset=utf-8');
          return;
        }
        const headers = headersWithoutBody();
        const bytes = await compressedPage(encoding);
        headers.set('content-encoding', encoding);
        headers.set('content-type', 'text/html; charset=utf-8');
        headers.set('content-length', String(bytes.length));
        setResponse(new fetchAPI.Response(bytes, { status: 200, headers }));
      },
    },
  };
}

/**
 * Renders the page in a worker thread that exits when done: the renderer module is 4 MB of
 * script, and loaded in the service itself it stayed in memory for good (about 97 MB more
 * RSS after the first visit); the page it returns is all the service keeps.
 */
function renderInWorker(options: GraphiQLOptions): Promise<string> {
  const renderer = pathToFileURL(createRequire(import.meta.url).resolve('@graphql-yoga/render-graphiql')).href;
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.renderer).then((m) => parentPort.postMessage((m.renderGraphiQL ?? m.default.renderGraphiQL)(workerData.options)));
  `;
  return new Promise<string>((resolve, reject) => {
    const worker = new Worker(code, { eval: true, workerData: { renderer, options } });
    worker.once('message', (html: string) => {
      resolve(html);
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the GraphiQL renderer stopped (exit code ${code}) before it sent the page`)));
  });
}

/** The best encoding the client accepts (RFC 9110 Accept-Encoding, q-values included). */
export function chooseEncoding(header: string | null): Encoding {
  const weights = new Map<string, number>();
  for (const part of (header ?? '').split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (!name) continue;
    const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    weights.set(name, q === undefined ? 1 : Number(q));
  }
  const weight = (name: string) => weights.get(name) ?? weights.get('*') ?? 0;
  const best = (['br', 'gzip'] as const).filter((name) => weight(name) > 0).sort((a, b) => weight(b) - weight(a))[0];
  return best ?? 'identity';
}

/** If-None-Match against our ETag, with the weak comparison RFC 9110 asks for. */
function matches(ifNoneMatch: string | null, etag: string): boolean {
  if (!ifNoneMatch) return false;
  if (ifNoneMatch.trim() === '*') return true;
  return ifNoneMatch.split(',').some((candidate) => candidate.trim().replace(/^W\//, '') === etag);
}
