/** The SSRF guard's pure parts: address kinds, WEBHOOK_ALLOWED_HOSTS, and the verdict on a destination. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addressKind,
  checkDestination,
  EMPTY_ALLOW_LIST,
  formatIp,
  parseAllowList,
  parseIp,
  type AllowList,
} from '../../src/engine/webhook-address.ts';

const kind = (text: string) => addressKind(parseIp(text)!);

const allowList = (text: string): AllowList => {
  const parsed = parseAllowList(text);
  if ('problems' in parsed) throw new Error(parsed.problems.join('; '));
  return parsed.list;
};

describe('address kinds', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.3.4', 'loopback'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['0.1.2.3', 'reserved'],
    ['240.0.0.1', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['8.8.8.8', 'public'],
    ['172.32.0.1', 'public'],
    ['172.15.255.255', 'public'],
    ['2606:4700::1111', 'public'],
  ] as const)('%s is %s', (address, expected) => {
    expect(kind(address)).toBe(expected);
  });

  it.each([
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::127.0.0.1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
    ['2002:7f00:1::', 'loopback'],
    ['2002:0a00:0001::1', 'private'],
    ['::ffff:8.8.8.8', 'public'],
  ] as const)('the IPv4 address inside %s decides: %s', (address, expected) => {
    expect(kind(address)).toBe(expected);
  });

  it('an IPv4-mapped address is of the kind of the IPv4 address it carries', () => {
    fc.assert(
      fc.property(fc.ipV4(), (address) => {
        expect(kind(`::ffff:${address}`)).toBe(kind(address));
      }),
    );
  });

  it('parses what it formats', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (address) => {
        const ip = parseIp(address)!;
        expect(ip).toBeDefined();
        expect(parseIp(formatIp(ip))).toEqual(ip);
      }),
    );
    expect(formatIp(parseIp('fe80:0:0:0:0:0:0:1')!)).toBe('fe80::1');
    expect(formatIp(parseIp('1:0:0:2:0:0:0:3')!)).toBe('1:0:0:2::3');
  });

  it('refuses what is not an address', () => {
    for (const text of ['', 'localhost', '1.2.3', '01.2.3.4', '1.2.3.256', '::g', '1::2::3']) expect(parseIp(text)).toBeUndefined();
  });
});

describe('WEBHOOK_ALLOWED_HOSTS', () => {
  it('takes host names, wildcards, addresses and ranges, comma-separated, spaces and empty entries ignored', () => {
    const list = allowList(' localhost, *.internal ,127.0.0.1,[::1], 10.0.0.0/8, fd00::/8,, Hooks.Example.');
    expect([...list.hosts]).toEqual(['localhost', 'hooks.example']);
    expect(list.suffixes).toEqual(['.internal']);
    expect(list.ranges.map((r) => `${r.text}:${r.prefix}`)).toEqual(['127.0.0.1:32', '[::1]:128', '10.0.0.0/8:8', 'fd00::/8:8']);
    expect(allowList('')).toEqual(EMPTY_ALLOW_LIST);
  });

  it('names every entry that is wrong, with what would be right', () => {
    const parsed = parseAllowList('10.0.0.0/33, nope!, 1.2.3.4/x, ::1/129, ok.example');
    expect('problems' in parsed && parsed.problems).toEqual([
      expect.stringMatching(/^"10\.0\.0\.0\/33" has a prefix length out of range: 0 to 32/),
      expect.stringMatching(/^"nope!" is neither a host name, an IP address nor a CIDR range/),
      expect.stringMatching(/^"1\.2\.3\.4\/x" has a prefix length out of range/),
      expect.stringMatching(/^"::1\/129" has a prefix length out of range: 0 to 128/),
    ]);
  });
});

describe('destinations', () => {
  it('allows public addresses without any entry', () => {
    expect(checkDestination('hooks.example.com', ['93.184.216.34', '2606:2800:220:1::1'], EMPTY_ALLOW_LIST)).toEqual({ allowed: true });
  });

  it('refuses a host if any of its addresses is not public, naming it and what would allow it', () => {
    const verdict = checkDestination('rebind.example.com', ['93.184.216.34', '127.0.0.1'], EMPTY_ALLOW_LIST);
    expect(verdict).toMatchObject({ allowed: false, address: '127.0.0.1', kind: 'loopback' });
    expect(!verdict.allowed && verdict.message).toBe(
      'rebind.example.com resolves to 127.0.0.1, a loopback address (this machine). Webhooks may not reach loopback, private, link-local or other non-public addresses ' +
        "unless the service's WEBHOOK_ALLOWED_HOSTS lists the host name or the address (e.g. WEBHOOK_ALLOWED_HOSTS=rebind.example.com).",
    );
    const literal = checkDestination('169.254.169.254', ['169.254.169.254'], EMPTY_ALLOW_LIST);
    expect(!literal.allowed && literal.message).toMatch(/^169\.254\.169\.254 is a link-local address .* \(e\.g\. WEBHOOK_ALLOWED_HOSTS=169\.254\.169\.254\)\.$/);
    const mapped = checkDestination('::ffff:7f00:1', ['::ffff:7f00:1'], EMPTY_ALLOW_LIST);
    expect(mapped).toMatchObject({ allowed: false, address: '127.0.0.1', kind: 'loopback' });
  });

  it('allows a listed host name whatever it resolves to, and a listed range for any host', () => {
    const list = allowList('localhost,*.internal,10.0.0.0/8,::1');
    expect(checkDestination('LOCALHOST.', ['127.0.0.1', '::1'], list)).toEqual({ allowed: true });
    expect(checkDestination('ci.build.internal', ['192.168.1.5'], list)).toEqual({ allowed: true });
    expect(checkDestination('internal', ['192.168.1.5'], list)).toMatchObject({ allowed: false });
    expect(checkDestination('anything.example', ['10.9.8.7', '::1'], list)).toEqual({ allowed: true });
    expect(checkDestination('anything.example', ['::ffff:10.9.8.7'], list)).toEqual({ allowed: true });
    expect(checkDestination('anything.example', ['10.9.8.7', '127.0.0.1'], list)).toMatchObject({ allowed: false, address: '127.0.0.1' });
    expect(checkDestination('127.0.0.1', ['127.0.0.1'], allowList('127.0.0.1'))).toEqual({ allowed: true });
    expect(checkDestination('127.0.0.2', ['127.0.0.2'], allowList('127.0.0.1'))).toMatchObject({ allowed: false });
  });
});
