import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { CidrSet } from '../../../src/identity/cidr-set.js';
import { ClientResolver, type ClientResolverOptions } from '../../../src/identity/client-resolver.js';

const HOUR_MS = 60 * 60 * 1000;

/** A resolver trusting a CDN range and a local load balancer, recording reports. */
function makeResolver(overrides: Partial<ClientResolverOptions> = {}) {
  const reports: string[] = [];
  const clock = new ManualClock(1_000_000);
  const resolver = new ClientResolver({
    trustedProxies: CidrSet.parse(['10.0.0.0/8', '2001:db8:cd0::/48', '127.0.0.1']),
    prefix: { ipv4: 24, ipv6: 64 },
    onUntrustedForwardedFor: (peerIp) => reports.push(peerIp),
    clock,
    ...overrides,
  });
  const ipOf = (peer: string | undefined, xff?: string | string[]) => resolver.resolve(peer, xff)?.ip ?? null;
  return { resolver, reports, clock, ipOf };
}

describe('ClientResolver: untrusted peers', () => {
  it('uses the peer and ignores a spoofed X-Forwarded-For', () => {
    const { resolver, ipOf } = makeResolver();
    expect(ipOf('203.0.113.9', '10.0.0.1')).toBe('203.0.113.9');
    expect(ipOf('203.0.113.9', '198.51.100.1, 10.0.0.2')).toBe('203.0.113.9');
    expect(resolver.resolve('203.0.113.9', '1.1.1.1')).toMatchObject({ ip: '203.0.113.9', prefix: '203.0.113.0/24', family: 4 });
  });

  it('reports an untrusted peer sending X-Forwarded-For once per hour, and each peer separately', () => {
    const { reports, clock, ipOf } = makeResolver();
    ipOf('203.0.113.9', '1.1.1.1');
    ipOf('203.0.113.9', '1.1.1.2');
    ipOf('::ffff:203.0.113.9', '1.1.1.3'); // the same peer, seen on a dual-stack socket
    ipOf('203.0.113.10', '1.1.1.1');
    expect(reports).toEqual(['203.0.113.9', '203.0.113.10']);

    clock.advance(HOUR_MS - 1);
    ipOf('203.0.113.9', '1.1.1.1');
    expect(reports).toEqual(['203.0.113.9', '203.0.113.10']);

    clock.advance(1);
    ipOf('203.0.113.9', '1.1.1.1');
    expect(reports).toEqual(['203.0.113.9', '203.0.113.10', '203.0.113.9']);

    clock.advance(HOUR_MS / 2);
    ipOf('203.0.113.9', '1.1.1.1');
    expect(reports).toHaveLength(3);
  });

  it('works with a clock that starts at zero', () => {
    const reports: string[] = [];
    const clock = new ManualClock(0);
    const resolver = new ClientResolver({
      trustedProxies: new CidrSet(),
      prefix: { ipv4: 24, ipv6: 64 },
      onUntrustedForwardedFor: (peerIp) => reports.push(peerIp),
      clock,
    });
    resolver.resolve('192.0.2.1', 'x');
    clock.advance(HOUR_MS);
    resolver.resolve('192.0.2.1', 'x');
    expect(reports).toEqual(['192.0.2.1', '192.0.2.1']);
  });

  it('does not report when there is no header, an empty one, or when the peer is trusted', () => {
    const { reports, ipOf } = makeResolver();
    ipOf('203.0.113.9', undefined);
    ipOf('203.0.113.9', '');
    ipOf('203.0.113.9', ['  ', '']);
    ipOf('203.0.113.9', []);
    ipOf('10.1.1.1', '198.51.100.7');
    expect(reports).toEqual([]);
  });

  it('forgets the least recent peer beyond reportCacheMax, so it may be reported again', () => {
    const { reports, ipOf } = makeResolver({ reportCacheMax: 2 });
    ipOf('192.0.2.1', 'x');
    ipOf('192.0.2.2', 'x');
    ipOf('192.0.2.3', 'x'); // pushes out 192.0.2.1
    ipOf('192.0.2.3', 'x');
    ipOf('192.0.2.1', 'x');
    expect(reports).toEqual(['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.1']);
  });
});

describe('ClientResolver: trusted proxies', () => {
  it('takes the entry a trusted peer appended', () => {
    const { ipOf } = makeResolver();
    expect(ipOf('10.0.0.1', '198.51.100.7')).toBe('198.51.100.7');
    expect(ipOf('10.0.0.1', undefined)).toBe('10.0.0.1');
    expect(ipOf('10.0.0.1', '')).toBe('10.0.0.1');
  });

  it('walks right to left past several trusted hops and ignores what the client wrote further left', () => {
    const { ipOf } = makeResolver();
    // spoof (client-written), client, CDN edge, CDN shield, local balancer; peer is nginx on localhost.
    expect(ipOf('127.0.0.1', '6.6.6.6, 198.51.100.7, 2001:db8:cd0::5, 10.2.3.4, 10.0.0.1')).toBe('198.51.100.7');
  });

  it('returns the leftmost entry when every hop is trusted', () => {
    const { ipOf } = makeResolver();
    expect(ipOf('10.0.0.1', '10.9.9.9, 10.0.0.2')).toBe('10.9.9.9');
    expect(ipOf('10.0.0.1', '127.0.0.1')).toBe('127.0.0.1');
  });

  it('reads several header lines as one list in order', () => {
    const { ipOf } = makeResolver();
    expect(ipOf('10.0.0.1', ['6.6.6.6, 198.51.100.7', '10.0.0.3', '10.0.0.2'])).toBe('198.51.100.7');
    expect(ipOf('10.0.0.1', ['198.51.100.7', '10.0.0.3, 10.0.0.2'])).toBe('198.51.100.7');
    expect(ipOf('10.0.0.1', ['198.51.100.7', ''])).toBe('198.51.100.7');
    expect(ipOf('10.0.0.1', ['10.0.0.9', '198.51.100.7'])).toBe('198.51.100.7');
  });

  it('stops at a junk entry and charges the last good address (fail closed)', () => {
    const { ipOf } = makeResolver();
    // The balancer 10.0.0.2 reported its peer as "unknown": whatever is left of it is unvouched for.
    expect(ipOf('10.0.0.1', '198.51.100.7, unknown, 10.0.0.2')).toBe('10.0.0.2');
    // Junk right next to the peer: the peer itself.
    expect(ipOf('10.0.0.1', '198.51.100.7, not-an-ip')).toBe('10.0.0.1');
    expect(ipOf('10.0.0.1', '198.51.100.7, 127.1')).toBe('10.0.0.1');
    expect(ipOf('10.0.0.1', '198.51.100.7, 1.2.3.4:port')).toBe('10.0.0.1');
    expect(ipOf('10.0.0.1', '198.51.100.7, [2001:db8::1')).toBe('10.0.0.1');
    // Junk beyond the first untrusted address is never reached.
    expect(ipOf('10.0.0.1', 'junk, 198.51.100.7')).toBe('198.51.100.7');
  });

  it('skips empty list elements and surrounding whitespace', () => {
    const { ipOf } = makeResolver();
    expect(ipOf('10.0.0.1', ' 198.51.100.7 ,\t, 10.0.0.2 ,')).toBe('198.51.100.7');
    expect(ipOf('10.0.0.1', ',,')).toBe('10.0.0.1');
  });

  it('strips ports from IPv4 and bracketed IPv6 entries', () => {
    const { ipOf } = makeResolver();
    expect(ipOf('10.0.0.1', '198.51.100.7:51234')).toBe('198.51.100.7');
    expect(ipOf('10.0.0.1', '[2001:db8:1:2::7]:443')).toBe('2001:db8:1:2::7');
    expect(ipOf('10.0.0.1', '[2001:db8:1:2::7]')).toBe('2001:db8:1:2::7');
    expect(ipOf('10.0.0.1', '2001:db8:1:2::7')).toBe('2001:db8:1:2::7');
    expect(ipOf('10.0.0.1', '198.51.100.7, 10.0.0.2:8080')).toBe('198.51.100.7');
    expect(ipOf('10.0.0.1', '198.51.100.7, [2001:db8:cd0::9]:80')).toBe('198.51.100.7');
  });

  it('turns IPv4-mapped addresses into IPv4, in the peer and in the header', () => {
    const { resolver, ipOf } = makeResolver();
    expect(ipOf('::ffff:10.0.0.1', '::ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(resolver.resolve('::ffff:203.0.113.9', undefined)).toMatchObject({ ip: '203.0.113.9', family: 4, prefix: '203.0.113.0/24' });
    // A mapped trusted hop is trusted.
    expect(ipOf('10.0.0.1', '198.51.100.7, ::ffff:10.0.0.2')).toBe('198.51.100.7');
  });

  it('drops zone ids', () => {
    const { resolver } = makeResolver();
    expect(resolver.resolve('fe80::1%eth0', undefined)).toMatchObject({ ip: 'fe80::1', prefix: 'fe80::/64', family: 6 });
    expect(resolver.resolve('fe80::1%eth0.100', undefined)?.ip).toBe('fe80::1');
  });

  it('groups IPv6 clients by /64', () => {
    const { resolver } = makeResolver();
    const a = resolver.resolve('2001:db8:cd0::1', '2001:db8:aaaa:1::1');
    const b = resolver.resolve('2001:db8:cd0::1', '2001:db8:aaaa:1:ffff::2');
    const c = resolver.resolve('2001:db8:cd0::1', '2001:db8:aaaa:2::1');
    expect(a?.prefix).toBe('2001:db8:aaaa:1::/64');
    expect(b?.prefix).toBe('2001:db8:aaaa:1::/64');
    expect(c?.prefix).toBe('2001:db8:aaaa:2::/64');
  });

  it('uses custom prefix lengths', () => {
    const { resolver } = makeResolver({ prefix: { ipv4: 16, ipv6: 48 } });
    expect(resolver.resolve('198.51.100.7', undefined)?.prefix).toBe('198.51.0.0/16');
    expect(resolver.resolve('2001:db8:aaaa:1::1', undefined)?.prefix).toBe('2001:db8:aaaa::/48');
  });
});

describe('ClientResolver: peers and caching', () => {
  it('returns null for a missing or unparsable peer', () => {
    const { resolver } = makeResolver();
    expect(resolver.resolve(undefined, '198.51.100.7')).toBeNull();
    expect(resolver.resolve('', undefined)).toBeNull();
    expect(resolver.resolve('garbage', undefined)).toBeNull();
  });

  it('lets the proxy resolve the peer once per socket', () => {
    const { resolver } = makeResolver();
    const trusted = resolver.lookupPeer('10.0.0.1');
    const direct = resolver.lookupPeer('203.0.113.9');
    expect(trusted).toMatchObject({ trusted: true, key: { ip: '10.0.0.1' } });
    expect(direct).toMatchObject({ trusted: false, key: { ip: '203.0.113.9' } });
    expect(resolver.resolveFromPeer(trusted!, '198.51.100.7').ip).toBe('198.51.100.7');
    expect(resolver.resolveFromPeer(direct!, '198.51.100.7').ip).toBe('203.0.113.9');
  });

  it('hands out one ClientKey object per address while it is cached, and stays correct past the cap', () => {
    const { resolver } = makeResolver({ addressCacheMax: 2 });
    const first = resolver.resolve('192.0.2.1', undefined);
    expect(resolver.resolve('192.0.2.1', undefined)).toBe(first);
    resolver.resolve('192.0.2.2', undefined);
    resolver.resolve('192.0.2.3', undefined); // evicts 192.0.2.1
    const again = resolver.resolve('192.0.2.1', undefined);
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
    expect(Object.isFrozen(again)).toBe(true);
  });

  it('refuses unbounded or invalid settings', () => {
    const trustedProxies = new CidrSet();
    expect(() => new ClientResolver({ trustedProxies, prefix: { ipv4: 24, ipv6: 64 }, addressCacheMax: 0 })).toThrow(/addressCacheMax/);
    expect(() => new ClientResolver({ trustedProxies, prefix: { ipv4: 24, ipv6: 64 }, reportCacheMax: Infinity })).toThrow(
      /reportCacheMax/,
    );
    expect(() => new ClientResolver({ trustedProxies, prefix: { ipv4: 40, ipv6: 64 } })).toThrow(/prefix\.ipv4/);
  });
});
