import { describe, expect, it } from 'vitest';
import type { KernelBan } from '../../../src/firewall/ban-backend.js';
import { parseTarget } from '../../../src/escalation/ban-target.js';
import { canonicalTarget, validateBackendOptions, validateBan } from '../../../src/firewall/ban-validation.js';

const ban = (target: string, overrides: Partial<KernelBan> = {}): KernelBan => ({
  target,
  family: target.includes(':') ? 6 : 4,
  scope: target.includes('/') ? 'prefix' : 'ip',
  timeoutSec: 600,
  ...overrides,
});

describe('validateBan', () => {
  it.each([
    ['192.0.2.7', '192.0.2.7', 32],
    ['0.0.0.0', '0.0.0.0', 32],
    ['255.255.255.255', '255.255.255.255', 32],
    ['2001:db8::7', '2001:db8::7', 128],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1', 128],
    ['198.51.100.0/24', '198.51.100.0', 24],
    ['10.0.0.0/8', '10.0.0.0', 8],
    ['192.0.2.7/32', '192.0.2.7', 32],
    ['2001:db8:1:2::/64', '2001:db8:1:2::', 64],
    ['2001:db8::/32', '2001:db8::', 32],
  ])('accepts %s', (target, address, prefixLength) => {
    expect(validateBan(ban(target))).toMatchObject({ target, address, prefixLength });
  });

  it.each([
    ['a newline and a second command', '192.0.2.7\nflush ruleset'],
    ['a closing brace', '192.0.2.7 }'],
    ['a brace inside', '192.0.2.7}; flush ruleset; add element inet portcullis addr4 {1.1.1.1'],
    ['a space', '192.0.2.7 timeout 1s'],
    ['a comma (a second element)', '192.0.2.7,192.0.2.8'],
    ['an empty string', ''],
    ['leading zeros (octal to some tools)', '192.000.2.7'],
    ['a short IPv4 form', '127.1'],
    ['upper-case IPv6', '2001:DB8::7'],
    ['non-compressed IPv6', '2001:db8:0:0:0:0:0:7'],
    ['IPv4-mapped IPv6', '::ffff:192.0.2.7'],
    ['a zone id', 'fe80::1%eth0'],
    ['brackets', '[2001:db8::7]'],
    ['a port', '192.0.2.7:80'],
    ['a hostname', 'example.com'],
  ])('refuses a target with %s', (_what, target) => {
    expect(() => validateBan(ban(target, { scope: 'ip' }))).toThrow(RangeError);
  });

  it.each([
    ['host bits set', '198.51.100.7/24', /host bits set: the network is 198\.51\.100\.0\/24/],
    ['a /0 (the whole Internet)', '0.0.0.0/0', /prefix length "0"/],
    ['an IPv4 prefix shorter than /8', '10.0.0.0/7', /8–32/],
    ['an IPv6 prefix shorter than /16', '2000::/15', /16–128/],
    ['a length over 32', '192.0.2.0/33', /8–32/],
    ['a length with a leading zero', '192.0.2.0/024', /prefix length/],
    ['a length with a sign', '192.0.2.0/+24', /prefix length/],
    ['host bits in IPv6', '2001:db8::1/64', /host bits set/],
  ])('refuses a prefix with %s', (_what, target, message) => {
    expect(() => validateBan(ban(target))).toThrow(message);
  });

  it('refuses a family or scope that does not match the target', () => {
    expect(() => validateBan(ban('192.0.2.7', { family: 6 }))).toThrow(/IPv4 address, but the ban says family 6/);
    expect(() => validateBan(ban('192.0.2.0/24', { scope: 'ip' }))).toThrow(/scope 'ip' but is a network/);
    expect(() => validateBan(ban('192.0.2.7', { scope: 'prefix' }))).toThrow(/no \/length/);
    expect(() => validateBan(ban('192.0.2.7', { scope: 'net' as never }))).toThrow(/scope must be/);
    expect(() => validateBan(ban('192.0.2.7', { family: 5 as never }))).toThrow(/family must be 4 or 6/);
    expect(() => validateBan({ ...ban('192.0.2.7'), target: 7 as never })).toThrow(/must be a string/);
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '600' as never])('refuses timeoutSec %s', (timeoutSec) => {
    expect(() => validateBan(ban('192.0.2.7', { timeoutSec }))).toThrow(/timeoutSec must be a whole number of seconds 1–2147483647/);
  });

  it('accepts timeouts from 1 s to 2^31 − 1 s', () => {
    expect(validateBan(ban('192.0.2.7', { timeoutSec: 1 })).timeoutSec).toBe(1);
    expect(validateBan(ban('192.0.2.7', { timeoutSec: 2 ** 31 - 1 })).timeoutSec).toBe(2 ** 31 - 1);
  });
});

describe('parseTarget', () => {
  it('tells addresses from networks', () => {
    expect(parseTarget('2001:db8::/48')).toEqual({ family: 6, isPrefix: true, address: '2001:db8::', prefixLength: 48 });
    expect(parseTarget('192.0.2.1')).toEqual({ family: 4, isPrefix: false, address: '192.0.2.1', prefixLength: 32 });
  });
});

describe('validateBackendOptions', () => {
  it('sorts and deduplicates ports and freezes the result', () => {
    const options = validateBackendOptions({ ports: [443, 80, 443], maxBans: 10 });
    expect(options).toEqual({ ports: [80, 443], maxBans: 10 });
    expect(Object.isFrozen(options)).toBe(true);
  });

  it.each([[[]], [[0]], [[65_536]], [[80.5]], [['80' as never]], [[-1]]])('refuses ports %j', (ports) => {
    expect(() => validateBackendOptions({ ports, maxBans: 10 })).toThrow(RangeError);
  });

  it.each([0, -1, 1.5, 2 ** 31, Number.NaN])('refuses maxBans %s', (maxBans) => {
    expect(() => validateBackendOptions({ ports: [80], maxBans })).toThrow(/maxBans must be a whole number/);
  });
});

describe('canonicalTarget', () => {
  it('reads what the tools print', () => {
    expect(canonicalTarget('192.0.2.7/32', 'ip')).toBe('192.0.2.7');
    expect(canonicalTarget('192.0.2.7', 'prefix')).toBe('192.0.2.7/32');
    expect(canonicalTarget('2001:0db8:0:0::5/128', 'ip')).toBe('2001:db8::5');
    expect(canonicalTarget('2001:db8::/64', 'prefix')).toBe('2001:db8::/64');
    expect(canonicalTarget('192.0.2.0/24', 'ip')).toBeNull();
    expect(canonicalTarget('not an address', 'ip')).toBeNull();
    expect(canonicalTarget('192.0.2.0/40', 'prefix')).toBeNull();
  });
});
