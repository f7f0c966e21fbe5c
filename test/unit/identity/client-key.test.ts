import { describe, expect, it } from 'vitest';
import { IP_KEY, KEY_WORDS, makeClientKey, networkAddress, parseClientAddress, PREFIX_KEY, type IpAddress } from '../../../src/identity/client-key.js';

const DEFAULT_PREFIX = { ipv4: 24, ipv6: 64 };

function parse(text: string): IpAddress {
  const addr = parseClientAddress(text);
  if (addr === null) throw new Error(`test setup: ${text} did not parse`);
  return addr;
}

describe('parseClientAddress', () => {
  it('parses IPv4 and IPv6 as Node reports them', () => {
    expect(parse('192.0.2.7').toString()).toBe('192.0.2.7');
    expect(parse('192.0.2.7').kind()).toBe('ipv4');
    expect(parse('2001:DB8:0:0:0:0:0:1').toString()).toBe('2001:db8::1');
    expect(parse('::1').kind()).toBe('ipv6');
  });

  it('turns IPv4-mapped IPv6 into IPv4', () => {
    const addr = parse('::ffff:192.0.2.7');
    expect(addr.kind()).toBe('ipv4');
    expect(addr.toString()).toBe('192.0.2.7');
    expect(parse('::ffff:c000:207').toString()).toBe('192.0.2.7');
  });

  it('drops zone ids, including interface names ipaddr.js would refuse', () => {
    expect(parse('fe80::1%eth0').toString()).toBe('fe80::1');
    expect(parse('fe80::1%eth0.100').toString()).toBe('fe80::1');
    expect(parse('fe80::1%br-lan').toString()).toBe('fe80::1');
  });

  it.each([
    '127.1', // shorthand that ipaddr.js accepts
    '0x7f.0.0.1',
    '2130706433',
    '010.0.0.1', // octal to ipaddr.js: would be 8.0.0.1
    '::ffff:010.0.0.1', // decimal to ipaddr.js: would be 10.0.0.1
    '256.1.1.1',
    '1.2.3.4%eth0', // a zone on IPv4
    'fe80::1%',
    '%eth0',
    ' 1.2.3.4',
    '1.2.3.4:80',
    '[::1]',
    'unknown',
    '',
  ])('refuses %j', (text) => {
    expect(parseClientAddress(text)).toBeNull();
  });
});

describe('makeClientKey', () => {
  it('keys IPv4 by address and /24', () => {
    const key = makeClientKey(parse('192.0.2.77'), DEFAULT_PREFIX);
    expect(key).toMatchObject({ ip: '192.0.2.77', prefix: '192.0.2.0/24', family: 4 });
    expect(key.addr.toString()).toBe('192.0.2.77');
  });

  it('keys IPv6 by canonical address and /64', () => {
    const key = makeClientKey(parse('2001:0DB8:0001:0002:aaaa:bbbb:cccc:dddd'), DEFAULT_PREFIX);
    expect(key).toMatchObject({ ip: '2001:db8:1:2:aaaa:bbbb:cccc:dddd', prefix: '2001:db8:1:2::/64', family: 6 });
  });

  it('puts two addresses of one /64 in one prefix and of neighbouring /64s in different ones', () => {
    const a = makeClientKey(parse('2001:db8:1:2::1'), DEFAULT_PREFIX);
    const b = makeClientKey(parse('2001:db8:1:2:ffff:ffff:ffff:ffff'), DEFAULT_PREFIX);
    const c = makeClientKey(parse('2001:db8:1:3::1'), DEFAULT_PREFIX);
    expect(a.prefix).toBe('2001:db8:1:2::/64');
    expect(b.prefix).toBe(a.prefix);
    expect(c.prefix).toBe('2001:db8:1:3::/64');
    expect(a.ip).not.toBe(b.ip);
  });

  it('honours custom prefix lengths (/16, /48) and lengths inside a group', () => {
    const prefix = { ipv4: 16, ipv6: 48 };
    expect(makeClientKey(parse('198.51.100.9'), prefix).prefix).toBe('198.51.0.0/16');
    expect(makeClientKey(parse('2001:db8:abcd:12:1::1'), prefix).prefix).toBe('2001:db8:abcd::/48');
    expect(makeClientKey(parse('198.51.100.9'), { ipv4: 20, ipv6: 56 }).prefix).toBe('198.51.96.0/20');
    expect(makeClientKey(parse('2001:db8:abcd:12ff::1'), { ipv4: 20, ipv6: 56 }).prefix).toBe('2001:db8:abcd:1200::/56');
    expect(makeClientKey(parse('198.51.100.9'), { ipv4: 32, ipv6: 128 }).prefix).toBe('198.51.100.9/32');
    expect(makeClientKey(parse('198.51.100.9'), { ipv4: 0, ipv6: 0 }).prefix).toBe('0.0.0.0/0');
  });

  it('normalises a raw mapped or zoned ipaddr value passed directly', async () => {
    const { default: ipaddr } = await import('ipaddr.js');
    expect(makeClientKey(ipaddr.IPv6.parse('::ffff:192.0.2.7'), DEFAULT_PREFIX)).toMatchObject({ ip: '192.0.2.7', family: 4 });
    expect(makeClientKey(ipaddr.IPv6.parse('fe80::1%eth0'), DEFAULT_PREFIX)).toMatchObject({ ip: 'fe80::1', prefix: 'fe80::/64' });
  });

  it('holds the address and the prefix in binary, each a tag (scope, family, length) and four 32-bit words', () => {
    const keyWords = (text: string, at: number, prefix = DEFAULT_PREFIX): number[] => [...makeClientKey(parse(text), prefix).words.subarray(at, at + KEY_WORDS)];
    // IPv4: tag 32 (address) or 512 + length (prefix); the address in the first word.
    expect(keyWords('192.0.2.77', IP_KEY)).toEqual([32, 0xc000024d | 0, 0, 0, 0]);
    expect(keyWords('192.0.2.77', PREFIX_KEY)).toEqual([512 + 24, 0xc0000200 | 0, 0, 0, 0]);
    expect(keyWords('198.51.100.9', PREFIX_KEY, { ipv4: 20, ipv6: 64 })).toEqual([512 + 20, 0xc6336000 | 0, 0, 0, 0]);
    // IPv6: 256 marks the family; 128 bits in four words, the prefix's host bits zero.
    expect(keyWords('2001:db8:1:2:aaaa:bbbb:cccc:dddd', IP_KEY)).toEqual([256 + 128, 0x20010db8, 0x00010002, 0xaaaabbbb | 0, 0xccccdddd | 0]);
    expect(keyWords('2001:db8:1:2:aaaa:bbbb:cccc:dddd', PREFIX_KEY)).toEqual([512 + 256 + 64, 0x20010db8, 0x00010002, 0, 0]);
    // An IPv4-mapped address is keyed as the IPv4 it is.
    expect(keyWords('::ffff:192.0.2.77', IP_KEY)).toEqual(keyWords('192.0.2.77', IP_KEY));
  });

  it('refuses prefix lengths out of range', () => {
    expect(() => makeClientKey(parse('192.0.2.1'), { ipv4: 33, ipv6: 64 })).toThrow(/prefix\.ipv4 .* got 33/);
    expect(() => makeClientKey(parse('192.0.2.1'), { ipv4: 24, ipv6: 64.5 })).toThrow(/prefix\.ipv6 .* got 64\.5/);
  });
});

describe('networkAddress', () => {
  it('zeroes host bits', () => {
    expect(networkAddress(parse('10.255.255.255'), 9).toString()).toBe('10.128.0.0');
    expect(networkAddress(parse('2001:db8:ffff::1'), 33).toString()).toBe('2001:db8:8000::');
  });
});

describe('isIPv4Mapped', () => {
  it('agrees with ipaddr.js on mapped, compatible and ordinary addresses', async () => {
    const { isIPv4Mapped } = await import('../../../src/identity/client-key.js');
    const ipaddr = (await import('ipaddr.js')).default;
    for (const text of ['::ffff:192.0.2.1', '::ffff:0:0', '::192.0.2.1', '2001:db8::1', '::', '::1', '0:0:0:0:1:ffff:c000:201', 'ffff::']) {
      const v6 = ipaddr.IPv6.parse(text);
      expect(isIPv4Mapped(v6), text).toBe(v6.isIPv4MappedAddress());
    }
  });
});
