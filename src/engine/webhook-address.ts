/**
 * The SSRF guard's pure parts (SPEC rule 20): what kind of address an IP is, the
 * WEBHOOK_ALLOWED_HOSTS list, and whether a webhook may reach a host at the addresses it
 * resolved to. The resolving and the connecting are webhooks/guard.ts's.
 *
 * A webhook may reach public addresses. Loopback, private, link-local, unspecified,
 * multicast and reserved addresses are refused unless WEBHOOK_ALLOWED_HOSTS lists the host
 * name or a range holding the address: on the service's machine and network they reach
 * what the internet cannot (a database, a cloud's metadata service at 169.254.169.254).
 * IPv6 forms that carry an IPv4 address (::ffff:a.b.c.d, ::a.b.c.d, 64:ff9b::a.b.c.d,
 * 2002:aabb:ccdd::) are judged by that IPv4 address.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type AddressKind = 'public' | 'loopback' | 'private' | 'link-local' | 'unspecified' | 'multicast' | 'reserved';

/** An IP address as a number: 32 bits for IPv4, 128 for IPv6. */
export interface Ip {
  family: 4 | 6;
  value: bigint;
}

/** A range of addresses: an address and how many leading bits of it count. */
export interface Cidr {
  family: 4 | 6;
  value: bigint;
  prefix: number;
  /** As written in the list, for messages. */
  text: string;
}

/** Parses an IPv4 or IPv6 address (brackets and an IPv6 zone allowed); undefined if it is none. */
export function parseIp(text: string): Ip | undefined {
  let host = text.trim();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (isIPv4(host)) return { family: 4, value: ipv4Value(host) };
  const zone = host.indexOf('%');
  if (zone !== -1) host = host.slice(0, zone);
  if (!isIPv6(host)) return undefined;
  return { family: 6, value: ipv6Value(host) };
}

function ipv4Value(text: string): bigint {
  return text.split('.').reduce((value, part) => (value << 8n) | BigInt(Number(part)), 0n);
}

/** Valid IPv6 text (net.isIPv6 said so) as a 128-bit number. */
function ipv6Value(text: string): bigint {
  const groups = (part: string): number[] => {
    if (part === '') return [];
    const pieces = part.split(':');
    const last = pieces.at(-1)!;
    if (!last.includes('.')) return pieces.map((g) => Number.parseInt(g, 16));
    const v4 = Number(ipv4Value(last));
    return [...pieces.slice(0, -1).map((g) => Number.parseInt(g, 16)), v4 >>> 16, v4 & 0xffff];
  };
  const [head = '', tail] = text.split('::');
  const front = groups(head);
  const back = tail === undefined ? [] : groups(tail);
  const all = [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  return all.reduce((value, group) => (value << 16n) | BigInt(group), 0n);
}

/** The address as people write it (IPv6: the longest run of zero groups as "::"). */
export function formatIp(ip: Ip): string {
  if (ip.family === 4) return [24n, 16n, 8n, 0n].map((shift) => String((ip.value >> shift) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((ip.value >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = { start: -1, length: 1 };
  for (let start = 0; start < 8; start++) {
    let length = 0;
    while (start + length < 8 && groups[start + length] === 0) length++;
    if (length > best.length) best = { start, length };
  }
  const hex = (part: number[]) => part.map((g) => g.toString(16)).join(':');
  if (best.start === -1) return hex(groups);
  return `${hex(groups.slice(0, best.start))}::${hex(groups.slice(best.start + best.length))}`;
}

const bits = (family: 4 | 6) => (family === 4 ? 32 : 128);

function inRange(ip: Ip, range: { family: 4 | 6; value: bigint; prefix: number }): boolean {
  if (ip.family !== range.family) return false;
  const shift = BigInt(bits(ip.family) - range.prefix);
  return ip.value >> shift === range.value >> shift;
}

const v4 = (text: string, prefix: number) => ({ family: 4 as const, value: ipv4Value(text), prefix });
const v6 = (text: string, prefix: number) => ({ family: 6 as const, value: ipv6Value(text), prefix });

/** The IPv4 ranges that are not public, most specific first. */
const IPV4_RANGES: ReadonlyArray<readonly [ReturnType<typeof v4>, AddressKind]> = [
  [v4('0.0.0.0', 32), 'unspecified'],
  [v4('255.255.255.255', 32), 'reserved'], // broadcast
  [v4('0.0.0.0', 8), 'reserved'], // "this network"
  [v4('127.0.0.0', 8), 'loopback'],
  [v4('10.0.0.0', 8), 'private'],
  [v4('172.16.0.0', 12), 'private'],
  [v4('192.168.0.0', 16), 'private'],
  [v4('100.64.0.0', 10), 'private'], // carrier-grade NAT, shared address space
  [v4('169.254.0.0', 16), 'link-local'], // cloud metadata services live here
  [v4('192.0.0.0', 24), 'reserved'],
  [v4('192.0.2.0', 24), 'reserved'], // documentation
  [v4('198.51.100.0', 24), 'reserved'],
  [v4('203.0.113.0', 24), 'reserved'],
  [v4('198.18.0.0', 15), 'reserved'], // benchmarking
  [v4('224.0.0.0', 4), 'multicast'],
  [v4('240.0.0.0', 4), 'reserved'],
];

const IPV6_RANGES: ReadonlyArray<readonly [ReturnType<typeof v6>, AddressKind]> = [
  [v6('::', 128), 'unspecified'],
  [v6('::1', 128), 'loopback'],
  [v6('64:ff9b:1::', 48), 'private'], // local-use NAT64
  [v6('fc00::', 7), 'private'], // unique local
  [v6('fec0::', 10), 'private'], // site-local (deprecated)
  [v6('fe80::', 10), 'link-local'],
  [v6('ff00::', 8), 'multicast'],
  [v6('100::', 64), 'reserved'], // discard-only
  [v6('2001:db8::', 32), 'reserved'], // documentation
];

/**
 * The IPv4 address an IPv6 one stands for, if any: IPv4-mapped (::ffff:a.b.c.d, how a
 * dual-stack socket shows IPv4 peers), IPv4-compatible (::a.b.c.d, deprecated), NAT64
 * (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::, the IPv4 address in bits 16-47).
 */
export function embeddedIpv4(ip: Ip): Ip | undefined {
  if (ip.family !== 6) return undefined;
  const low32 = { family: 4 as const, value: ip.value & 0xffffffffn };
  if (inRange(ip, v6('::ffff:0:0', 96)) || inRange(ip, v6('64:ff9b::', 96))) return low32;
  // ::/96 holds :: and ::1 too, which are IPv6's own unspecified and loopback addresses.
  if (inRange(ip, v6('::', 96)) && ip.value > 1n) return low32;
  if (inRange(ip, v6('2002::', 16))) return { family: 4, value: (ip.value >> 80n) & 0xffffffffn };
  return undefined;
}

/** What kind of address `ip` is; an IPv6 address carrying an IPv4 one is judged by that one. */
export function addressKind(ip: Ip): AddressKind {
  const inner = embeddedIpv4(ip);
  if (inner) return addressKind(inner);
  const ranges = ip.family === 4 ? IPV4_RANGES : IPV6_RANGES;
  return ranges.find(([range]) => inRange(ip, range))?.[1] ?? 'public';
}

/** WEBHOOK_ALLOWED_HOSTS, parsed. */
export interface AllowList {
  /** Host names, lower case, without a trailing dot. */
  hosts: ReadonlySet<string>;
  /** `*.example.internal` entries, as the suffix ".example.internal". */
  suffixes: readonly string[];
  ranges: readonly Cidr[];
}

export const EMPTY_ALLOW_LIST: AllowList = { hosts: new Set(), suffixes: [], ranges: [] };

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/** Lower case, without brackets around an IPv6 literal or a trailing dot. */
export function normalHost(host: string): string {
  const lower = host.trim().toLowerCase();
  const unbracketed = lower.startsWith('[') && lower.endsWith(']') ? lower.slice(1, -1) : lower;
  return unbracketed.endsWith('.') ? unbracketed.slice(0, -1) : unbracketed;
}

/**
 * Parses WEBHOOK_ALLOWED_HOSTS: comma-separated host names (`hooks.internal`, or
 * `*.internal` for every name under it), IP addresses (`127.0.0.1`, `::1`, `[::1]`) and
 * CIDR ranges (`10.0.0.0/8`, `fd00::/8`). Returns the list, or every entry that is none of
 * these with what is wrong with it.
 */
export function parseAllowList(text: string): { list: AllowList } | { problems: string[] } {
  const hosts = new Set<string>();
  const suffixes: string[] = [];
  const ranges: Cidr[] = [];
  const problems: string[] = [];
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const slash = entry.indexOf('/');
    if (slash !== -1) {
      const ip = parseIp(entry.slice(0, slash));
      const prefixText = entry.slice(slash + 1);
      const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
      if (!ip) problems.push(`"${entry}" is not a CIDR range: the part before "/" must be an IP address, e.g. 10.0.0.0/8 or fd00::/8`);
      else if (!(prefix >= 0 && prefix <= bits(ip.family))) problems.push(`"${entry}" has a prefix length out of range: 0 to ${bits(ip.family)} for IPv${ip.family}`);
      else ranges.push({ ...ip, prefix, text: entry });
      continue;
    }
    const ip = parseIp(entry);
    if (ip) {
      ranges.push({ ...ip, prefix: bits(ip.family), text: entry });
      continue;
    }
    const host = normalHost(entry);
    if (host.startsWith('*.') && HOST_NAME.test(host.slice(2))) suffixes.push(host.slice(1));
    else if (HOST_NAME.test(host)) hosts.add(host);
    else problems.push(`"${entry}" is neither a host name, an IP address nor a CIDR range (e.g. hooks.internal, *.internal, 127.0.0.1, 10.0.0.0/8)`);
  }
  return problems.length > 0 ? { problems } : { list: { hosts, suffixes, ranges } };
}

function hostListed(list: AllowList, host: string): boolean {
  const name = normalHost(host);
  return list.hosts.has(name) || list.suffixes.some((suffix) => name.endsWith(suffix));
}

function addressListed(list: AllowList, ip: Ip): boolean {
  const inner = embeddedIpv4(ip);
  return list.ranges.some((range) => inRange(ip, range) || (inner !== undefined && inRange(inner, range)));
}

export type Destination = { allowed: true } | { allowed: false; address: string; kind: Exclude<AddressKind, 'public'>; message: string };

const KIND_WORDS: Record<Exclude<AddressKind, 'public'>, string> = {
  loopback: 'a loopback address (this machine)',
  private: 'a private-network address',
  'link-local': 'a link-local address (where cloud metadata services answer)',
  unspecified: 'the unspecified address',
  multicast: 'a multicast address',
  reserved: 'a reserved address',
};

/**
 * Whether a webhook may reach `host` at `addresses` (what it resolved to, or the host itself
 * when it is an IP literal): yes if the allow list names the host, else only if every address
 * is public or in a listed range. Every address counts, not just the first: a connection may
 * use any of them.
 */
export function checkDestination(host: string, addresses: readonly string[], list: AllowList): Destination {
  if (hostListed(list, host)) return { allowed: true };
  for (const address of addresses) {
    const ip = parseIp(address);
    if (!ip) return { allowed: false, address, kind: 'reserved', message: `${host} resolved to "${address}", which is not an IP address.` };
    const kind = addressKind(ip);
    if (kind === 'public' || addressListed(list, ip)) continue;
    const shown = formatIp(embeddedIpv4(ip) ?? ip);
    const resolved = normalHost(host) === normalHost(address) ? `${shown} is` : `${normalHost(host)} resolves to ${shown},`;
    return {
      allowed: false,
      address: shown,
      kind,
      message:
        `${resolved} ${KIND_WORDS[kind]}. Webhooks may not reach loopback, private, link-local or other non-public addresses ` +
        `unless the service's WEBHOOK_ALLOWED_HOSTS lists the host name or the address (e.g. WEBHOOK_ALLOWED_HOSTS=${parseIp(host) ? shown : normalHost(host)}).`,
    };
  }
  return { allowed: true };
}
