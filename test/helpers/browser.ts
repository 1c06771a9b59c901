/**
 * Debian's Chromium driven by playwright-core, for the browser tests (GraphiQL, the
 * dashboard): no browser is downloaded, and no request may leave the machine.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export async function launchChromium(what: string): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `The ${what} browser test needs Debian's Chromium at ${CHROMIUM}, which is not installed. ` +
        'Install it (as root): apt-get update && apt-get install -y --no-install-recommends chromium  (.ci/run does this).',
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Loopback, or a URL that never touches the network (inline data, the page's own blobs). */
export function staysOnThisMachine(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  if (protocol === 'data:' || protocol === 'blob:') return true;
  return ['http:', 'https:', 'ws:', 'wss:'].includes(protocol) && ['127.0.0.1', 'localhost', '[::1]'].includes(hostname);
}

export interface Seen {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string | null;
}

/** Records every request of the context, and refuses (aborts) any that would leave the machine. */
export async function recordRequests(context: BrowserContext): Promise<{ seen: Promise<Seen>[]; refused: string[] }> {
  const seen: Promise<Seen>[] = [];
  const refused: string[] = [];
  context.on('request', (request) =>
    seen.push(
      request.allHeaders().then(
        (headers) => ({ url: request.url(), method: request.method(), headers, body: request.postData() }),
        // A page that polls may ask again just before its context closes: the request is
        // still recorded (its URL is what the loopback check needs), without its headers.
        () => ({ url: request.url(), method: request.method(), headers: {}, body: request.postData() }),
      ),
    ),
  );
  context.on('page', (page) => page.on('websocket', (socket) => refused.push(...(staysOnThisMachine(socket.url()) ? [] : [socket.url()]))));
  await context.route('**/*', (route) => {
    if (staysOnThisMachine(route.request().url())) return route.continue();
    refused.push(route.request().url());
    return route.abort('internetdisconnected');
  });
  return { seen, refused };
}

/**
 * With DASHBOARD_SCREENSHOTS=1, the viewport as docs/screenshots/<name>.png (scrolled to the
 * top first with fromTop), for the docs and the README; otherwise nothing, so that a test
 * run never changes the tree.
 */
export async function screenshot(page: Page, name: string, { fromTop = false } = {}): Promise<void> {
  if (process.env.DASHBOARD_SCREENSHOTS !== '1') return;
  const dir = path.join(import.meta.dirname, '../../docs/screenshots');
  mkdirSync(dir, { recursive: true });
  if (fromTop) await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
}
