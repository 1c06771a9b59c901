/**
 * A TCP proxy on loopback to stand between a service and Redis (or anything), to make its
 * connection fail the ways networks do: cut (every connection closed, new ones refused,
 * as when the server or the link goes down), black-holed (open connections stay open and
 * nothing gets through, as behind a NAT that forgot them; new ones work) or slow (what
 * the service sends arrives late).
 */
import { connect, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  /** The proxy's address, in the scheme of the target URL (redis://127.0.0.1:port). */
  url: string;
  /** Closes every connection and refuses new ones until restore(). */
  cut(): void;
  /** Keeps the open connections open and passes nothing through them any more; new connections work. */
  blackhole(): void;
  /** Holds what clients send for `ms` before passing it on (in order), until restore(). */
  delay(ms: number): void;
  /** Passes new connections through again, at once. */
  restore(): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream?: Socket;
  /** When the last chunk held for the target goes out: later ones never overtake it. */
  sendAt: number;
  held: Set<NodeJS.Timeout>;
}

export async function startTcpProxy(targetUrl: string): Promise<TcpProxy> {
  const target = new URL(targetUrl);
  let mode: 'open' | 'cut' = 'open';
  let delayMs = 0;
  const pairs = new Set<Pair>();
  const end = (pair: Pair) => {
    pair.client.destroy();
    pair.upstream?.destroy();
    for (const timer of pair.held) clearTimeout(timer);
    pairs.delete(pair);
  };
  const server = createServer((client) => {
    const pair: Pair = { client, sendAt: 0, held: new Set() };
    pairs.add(pair);
    client.on('error', () => end(pair)).on('close', () => end(pair));
    if (mode === 'cut') return end(pair);
    const upstream = connect(Number(target.port), target.hostname);
    pair.upstream = upstream;
    upstream.on('error', () => end(pair)).on('close', () => end(pair));
    client.on('data', (chunk) => {
      const now = Date.now();
      pair.sendAt = Math.max(pair.sendAt, now + delayMs);
      if (pair.sendAt <= now) return void upstream.write(chunk);
      const timer = setTimeout(() => {
        pair.held.delete(timer);
        upstream.write(chunk);
      }, pair.sendAt - now);
      pair.held.add(timer);
    });
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `${target.protocol}//127.0.0.1:${port}`,
    cut() {
      mode = 'cut';
      for (const pair of [...pairs]) end(pair);
    },
    blackhole() {
      for (const { client, upstream } of pairs) {
        upstream?.unpipe();
        client.pause();
        upstream?.pause();
      }
    },
    delay(ms) {
      delayMs = ms;
    },
    restore() {
      mode = 'open';
      delayMs = 0;
    },
    async close() {
      for (const pair of [...pairs]) end(pair);
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
