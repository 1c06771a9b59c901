/**
 * The SSRF guard at the edge (SPEC rule 20): resolves a webhook's host, every address of
 * it, and judges them (engine/webhook-address.ts). At registration a refusal is a
 * ValidationError naming the URL field; at delivery the request then connects to the very
 * address that was judged (send.ts pins it), so a name that resolves to another address by
 * the time of the connection (DNS rebinding) reaches nothing unchecked.
 */
import { lookup } from 'node:dns/promises';
import { checkDestination, normalHost, parseIp, type AllowList } from '../engine/webhook-address.ts';
import { ValidationError } from '../errors.ts';
import type { UrlCheck } from '../store/webhooks.ts';

export type Destination = { ok: true; host: string; address: string; family: 4 | 6 } | { ok: false; message: string };

/** The host of `url` as connected to: an IP literal without brackets, or a name. */
export function hostOf(url: URL): string {
  return normalHost(url.hostname);
}

/** Resolves and judges `url`'s host; the first address is the one to connect to. */
export async function resolveDestination(url: URL, list: AllowList): Promise<Destination> {
  const host = hostOf(url);
  const literal = parseIp(host);
  let addresses: Array<{ address: string; family: 4 | 6 }>;
  if (literal) {
    addresses = [{ address: host, family: literal.family }];
  } else {
    try {
      addresses = (await lookup(host, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      return { ok: false, message: `The host ${host} could not be resolved (${code}): check the name, and that this service's DNS knows it.` };
    }
    if (addresses.length === 0) return { ok: false, message: `The host ${host} resolved to no address.` };
  }
  const verdict = checkDestination(host, addresses.map((a) => a.address), list);
  if (!verdict.allowed) return { ok: false, message: verdict.message };
  return { ok: true, host, address: addresses[0]!.address, family: addresses[0]!.family };
}

/** The registration check: a host that may not be reached is a ValidationError naming `field`. */
export function urlCheck(list: AllowList): UrlCheck {
  return async (field, url) => {
    const destination = await resolveDestination(url, list);
    if (!destination.ok) throw new ValidationError(field, destination.message);
  };
}
