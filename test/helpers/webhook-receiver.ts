/**
 * A real webhook receiver for tests: node:http on loopback, recording every request with
 * its raw body bytes, answering as the test says. It also watches that no delivery is ever
 * attempted twice at once (`overlaps`).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  /** The body exactly as received. */
  raw: Buffer;
  body: any;
  deliveryId: string;
  at: number;
  /** When its connection closed (set later). */
  closedAt?: number;
}

/** Answers a request: a status and a body, or nothing at all (the request is held open). */
export type Responder = (request: ReceivedRequest, res: ServerResponse) => { status: number; body?: string; headers?: Record<string, string> } | 'hold';

export interface WebhookReceiver {
  /** e.g. http://127.0.0.1:PORT/hook */
  url: string;
  requests: ReceivedRequest[];
  /** Requests for a delivery id that arrived while another one for it was still open. */
  overlaps: string[];
  respond: Responder;
  /** Requests held open now. */
  held(): ReceivedRequest[];
  close(): Promise<void>;
}

export async function startWebhookReceiver(respond: Responder = () => ({ status: 200, body: 'ok' })): Promise<WebhookReceiver> {
  const requests: ReceivedRequest[] = [];
  const overlaps: string[] = [];
  const open = new Map<string, number>();
  const holding = new Set<ServerResponse>();
  const heldRequests = new Map<ServerResponse, ReceivedRequest>();
  const receiver: WebhookReceiver = {
    url: '',
    requests,
    overlaps,
    respond,
    held: () => [...heldRequests.values()],
    close: async () => {
      for (const res of holding) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const deliveryId = String(req.headers['x-dagpipe-delivery'] ?? '');
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        body = undefined;
      }
      const request: ReceivedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, raw, body, deliveryId, at: Date.now() };
      requests.push(request);
      if ((open.get(deliveryId) ?? 0) > 0) overlaps.push(deliveryId);
      open.set(deliveryId, (open.get(deliveryId) ?? 0) + 1);
      let closed = false;
      const onClose = () => {
        if (closed) return;
        closed = true;
        request.closedAt = Date.now();
        open.set(deliveryId, open.get(deliveryId)! - 1);
        holding.delete(res);
        heldRequests.delete(res);
      };
      res.on('close', onClose);
      req.socket.on('close', onClose);
      const answer = receiver.respond(request, res);
      if (answer === 'hold') {
        holding.add(res);
        heldRequests.set(res, request);
        return;
      }
      res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers });
      res.end(answer.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return receiver;
}
