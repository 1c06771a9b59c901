/**
 * One delivery attempt over HTTP(S) (node:http, no dependency): the SSRF guard's address,
 * pinned for the connection; the signed JSON body; redirects not followed (node:http never
 * does); one deadline for everything, from resolving the host to the answer's first KiB.
 */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { AllowList } from '../engine/webhook-address.ts';
import { answerOutcome, RESPONSE_BODY_BYTES, responseBodyText, signature, SIGNATURE_HEADER } from '../engine/webhook-attempts.ts';
import type { ClaimedDelivery } from '../store/webhooks.ts';
import { resolveDestination } from './guard.ts';

export const USER_AGENT = 'dagpipe-webhooks';

export interface SendOptions {
  allowList: AllowList;
  timeoutMs: number;
  /** Aborted when the service stops: the attempt ends at once, `aborted` set. */
  signal?: AbortSignal;
}

export interface SendResult {
  delivered: boolean;
  /** The answer's status; null when none came. */
  statusCode: number | null;
  durationMs: number;
  /** The first KiB of the answer's body. */
  responseBody: string | null;
  /** Why it failed, in the operator's words; null when delivered. */
  error: string | null;
  /** Ended because the service is stopping: not an attempt to count. */
  aborted?: boolean;
}

/** The socket connects to `address` whatever the name resolves to now (Node asks with `all` when it tries several families). */
function pinnedLookup(address: string, family: 4 | 6): LookupFunction {
  return ((_hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options?.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  }) as unknown as LookupFunction;
}

function describeError(error: NodeJS.ErrnoException, where: string): string {
  switch (error.code) {
    case 'ECONNREFUSED':
      return `Could not connect to ${where}: the connection was refused (nothing listens there?).`;
    case 'ECONNRESET':
      return `The connection to ${where} was reset before the receiver answered.`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `Could not reach ${where}: no route to the host.`;
    case 'ETIMEDOUT':
      return `Connecting to ${where} timed out.`;
    default:
      if (typeof error.code === 'string' && /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO/.test(error.code)) {
        return `The TLS connection to ${where} failed: ${error.message} (${error.code}).`;
      }
      return `The request to ${where} failed: ${error.message}${error.code ? ` (${error.code})` : ''}.`;
  }
}

/** POSTs the delivery's payload to its webhook's URL. Never throws: a failure is the result's `error`. */
export async function sendDelivery(delivery: ClaimedDelivery, options: SendOptions): Promise<SendResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const failed = (error: string, extra: Partial<SendResult> = {}): SendResult => ({
    delivered: false,
    statusCode: null,
    durationMs: elapsed(),
    responseBody: null,
    error,
    ...extra,
  });
  let url: URL;
  try {
    url = new URL(delivery.url);
  } catch {
    return failed('The webhook URL is not a valid URL: correct it with updateWebhook.');
  }
  const timeout = `No answer within ${options.timeoutMs} ms (WEBHOOK_TIMEOUT_MS).`;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), options.timeoutMs)));
  try {
    const destination = await Promise.race([resolveDestination(url, options.allowList), deadline]);
    if (destination === 'timeout') return failed(`${timeout} (resolving ${url.hostname})`);
    if (!destination.ok) return failed(destination.message);
    if (options.signal?.aborted) return failed('The service stopped before the attempt.', { aborted: true });
    const where = `${url.host} (${destination.address})`;
    const body = Buffer.from(delivery.payload);
    const headers: Record<string, string | number> = {
      'Content-Type': 'application/json',
      'Content-Length': body.length,
      'User-Agent': USER_AGENT,
      'X-Dagpipe-Event': delivery.event,
      'X-Dagpipe-Delivery': delivery.deliveryId,
      ...(delivery.secret !== null && { [SIGNATURE_HEADER]: signature(delivery.secret, body) }),
    };
    return await new Promise<SendResult>((resolve) => {
      let statusCode: number | null = null;
      let location: string | undefined;
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const finish = (error?: string, extra: Partial<SendResult> = {}) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        request.destroy();
        const responseBody = statusCode === null ? null : responseBodyText(Buffer.concat(chunks));
        if (statusCode === null) {
          resolve(failed(error ?? 'No answer.', extra));
          return;
        }
        // An answer came: its status decides, even if reading its body was cut short.
        const outcome = answerOutcome(statusCode, location);
        resolve({
          delivered: outcome.delivered,
          statusCode,
          durationMs: elapsed(),
          responseBody,
          error: outcome.delivered ? null : outcome.error,
          ...extra,
        });
      };
      const onAbort = () => finish('The service stopped during the attempt.', { aborted: true });
      const request = (url.protocol === 'https:' ? https : http).request(
        {
          protocol: url.protocol,
          hostname: destination.host,
          port: url.port === '' ? undefined : Number(url.port),
          path: `${url.pathname}${url.search}`,
          method: 'POST',
          headers,
          lookup: pinnedLookup(destination.address, destination.family),
          // A connection of its own: a pooled one could have been made to another address.
          agent: false,
        },
        (response) => {
          statusCode = response.statusCode ?? null;
          const header = response.headers.location;
          location = Array.isArray(header) ? header[0] : header;
          response.on('data', (chunk: Buffer) => {
            if (size < RESPONSE_BODY_BYTES) chunks.push(chunk);
            size += chunk.length;
            if (size >= RESPONSE_BODY_BYTES) finish();
          });
          response.on('end', () => finish());
          response.on('error', () => finish());
          response.on('close', () => finish());
        },
      );
      request.on('error', (error: NodeJS.ErrnoException) => finish(describeError(error, where)));
      options.signal?.addEventListener('abort', onAbort);
      void deadline.then(() => finish(timeout));
      request.end(body);
    });
  } finally {
    clearTimeout(timer);
  }
}
