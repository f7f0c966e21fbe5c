import { describe, expect, it } from 'vitest';
import { CidrSet, formatCidr, parseCidr } from '../../../src/identity/cidr-set.js';
import { parseClientAddress, type IpAddress } from '../../../src/identity/client-key.js';

function addr(text: string): IpAddress {
  const parsed = parseClientAddress(text);
  if (parsed === null) throw new Error(`test setup: ${text} did not parse`);
  return parsed;
}

describe('parseCidr', () => {
  it.each([
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['2001:db8::/32', '2001:db8::/32'],
    ['2001:DB8:0::/32', '2001:db8::/32'],
    ['127.0.0.1', '127.0.0.1/32'],
    ['::1', '::1/128'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['::/0', '::/0'],
    ['::ffff:10.0.0.0/104', '10.0.0.0/8'],
    ['::ffff:192.0.2.7', '192.0.2.7/32'],
    ['::ffff:0:0/96', '0.0.0.0/0'],
  ])('parses %j as %s', (text, canonical) => {
    expect(formatCidr(parseCidr(text))).toBe(canonical);
  });

  it('refuses host bits set, offering both readings', () => {
    expect(() => parseCidr('1.2.3.4/24')).toThrow(
      '"1.2.3.4/24" has host bits set: write 1.2.3.0/24 for the network or 1.2.3.4/32 for the one address',
    );
    expect(() => parseCidr('2001:db8::1/64')).toThrow('write 2001:db8::/64 for the network or 2001:db8::1/128');
    expect(() => parseCidr('::ffff:10.0.0.1/104')).toThrow('write 10.0.0.0/8 for the network or 10.0.0.1/32');
    expect(() => parseCidr('::ffff:10.0.0.0/95')).toThrow('needs a prefix length of 96 or more');
  });

  it.each([
    ['10.0.0.1/33', /"10\.0\.0\.1\/33" has prefix length "33": expected a whole number 0–32/],
    ['2001:db8::/129', /expected a whole number 0–128/],
    ['10.0.0.0/-1', /prefix length "-1"/],
    ['10.0.0.0/+8', /prefix length "\+8"/],
    ['10.0.0.0/08', /prefix length "08"/],
    ['10.0.0.0/', /prefix length ""/],
    ['10.0.0.0/8/8', /prefix length "8\/8"/],
    ['10/8', /"10\/8" is not an IP address or CIDR/],
    ['010.0.0.0/8', /"010\.0\.0\.0\/8" is not an IP address/],
    ['example.com', /"example\.com" is not an IP address/],
    ['', /"" is not an IP address/],
    [' 10.0.0.0/8', /is not an IP address/],
    ['fe80::/10%eth0', /prefix length "10%eth0"/],
    ['fe80::%eth0/64', /has a zone id/],
  ])('refuses %j', (text, message) => {
    expect(() => parseCidr(text)).toThrow(message);
  });
});

describe('CidrSet', () => {
  const set = CidrSet.parse(['10.0.0.0/8', '192.0.2.7', '198.51.100.0/22', '2001:db8::/32', '2001:db8:ffff:1::/64', '2001:db9:aaaa::/47', '::1']);

  it.each([
    ['10.0.0.1', true],
    ['10.255.255.255', true],
    ['11.0.0.0', false],
    ['9.255.255.255', false],
    ['192.0.2.7', true],
    ['192.0.2.8', false],
    ['198.51.103.255', true],
    ['198.51.104.0', false],
    ['2001:db8:1234::1', true],
    ['2001:db9::', false],
    ['2001:db9:aaab:ffff::1', true], // /47: the last bit of the group is a host bit
    ['2001:db9:aaac::', false],
    ['2001:db9:aaa9::', false],
    ['::1', true],
    ['::2', false],
    ['::ffff:10.1.2.3', true], // normalised to IPv4 by the parser
  ])('has(%s) is %s', (text, expected) => {
    expect(set.has(addr(text))).toBe(expected);
  });

  it('normalises a raw IPv4-mapped ipaddr value in has()', async () => {
    const { default: ipaddr } = await import('ipaddr.js');
    expect(set.has(ipaddr.IPv6.parse('::ffff:10.1.2.3'))).toBe(true);
    expect(set.has(ipaddr.IPv6.parse('::ffff:11.1.2.3'))).toBe(false);
  });

  it('answers an empty set without reading the address (the shipped allowlist is empty, and the read is a cache miss per request)', () => {
    const unreadable = new Proxy({} as ReturnType<typeof addr>, {
      get: () => {
        throw new Error('the address was read');
      },
    });
    expect(CidrSet.parse([]).has(unreadable)).toBe(false);
    expect(() => set.has(unreadable)).toThrow('the address was read');
  });

  it('keeps the families apart: ::/0 does not hold IPv4, 0.0.0.0/0 does not hold IPv6', () => {
    const allV6 = CidrSet.parse(['::/0']);
    expect(allV6.has(addr('2001:db8::1'))).toBe(true);
    expect(allV6.has(addr('192.0.2.1'))).toBe(false);
    expect(allV6.has(addr('::ffff:192.0.2.1'))).toBe(false);
    const allV4 = CidrSet.parse(['0.0.0.0/0']);
    expect(allV4.has(addr('192.0.2.1'))).toBe(true);
    expect(allV4.has(addr('2001:db8::1'))).toBe(false);
  });

  it('stores IPv4-mapped entries as IPv4', () => {
    const mapped = CidrSet.parse(['::ffff:203.0.113.0/120']);
    expect(mapped.entries()).toEqual(['203.0.113.0/24']);
    expect(mapped.has(addr('203.0.113.200'))).toBe(true);
  });

  it('lists canonical entries once', () => {
    expect(CidrSet.parse(['10.0.0.0/8', '::ffff:10.0.0.0/104', '2001:DB8::/32', '2001:db8::/32']).entries()).toEqual([
      '10.0.0.0/8',
      '2001:db8::/32',
    ]);
  });

  it('is empty by default and holds nothing', () => {
    const empty = new CidrSet();
    expect(empty.size).toBe(0);
    expect(empty.has(addr('127.0.0.1'))).toBe(false);
    expect(empty.has(addr('::1'))).toBe(false);
  });

  it('names the bad entry and its index', () => {
    expect(() => CidrSet.parse(['10.0.0.0/8', '10.0.0.1/33'])).toThrow(/^entry 1: "10\.0\.0\.1\/33" has prefix length "33"/);
  });

  it('agrees with ipaddr.js match() on random networks and nearby addresses', async () => {
    const { default: ipaddr } = await import('ipaddr.js');
    // A fixed-seed generator (mulberry32) so that a failure reproduces.
    let seed = 12345;
    const next = (n: number): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * n);
    };
    const networks = Array.from({ length: 40 }, (_, i) => {
      if (i % 2 === 0) {
        const bits = 12 + next(21);
        const raw = `${10 + next(2)}.${next(256)}.${next(256)}.${next(256)}/${bits}`;
        return [ipaddr.IPv4.networkAddressFromCIDR(raw), bits] as const;
      }
      const bits = 33 + next(96);
      const raw = `2001:db8:${Array.from({ length: 6 }, () => next(65536).toString(16)).join(':')}/${bits}`;
      return [ipaddr.IPv6.networkAddressFromCIDR(raw), bits] as const;
    });
    const set = CidrSet.parse(networks.map(([network, bits]) => `${network.toString()}/${bits}`));
    let hits = 0;
    for (let i = 0; i < 4000; i++) {
      // Probe near a network: keep a random number of its leading bits and
      // randomise the rest, so that both answers occur and cuts fall inside
      // bytes and 16-bit groups, not only on their boundaries.
      const [base, baseBits] = networks[next(networks.length)]!;
      const bytes = base.toByteArray();
      const cut = Math.max(0, baseBits - 4) + next(9);
      const probe = ipaddr.fromByteArray(
        bytes.map((byte, j) => {
          const keep = Math.min(8, Math.max(0, cut - 8 * j));
          const mask = (0xff << (8 - keep)) & 0xff;
          return (byte & mask) | (next(256) & ~mask & 0xff);
        }),
      );
      const expected = networks.some(([network, bits]) => network.kind() === probe.kind() && probe.match(network, bits));
      if (expected) hits++;
      expect(set.has(probe), probe.toString()).toBe(expected);
    }
    expect(hits).toBeGreaterThan(400);
    expect(hits).toBeLessThan(3600);
  });
});
