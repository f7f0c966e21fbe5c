import { describe, expect, it } from 'vitest';
import { parseHostAuthority } from '../../../src/config/host-authority.js';
import { parsePolicy } from '../../../src/config/policy-loader.js';
import { ConfigError } from '../../../src/core/errors.js';

describe('parseHostAuthority', () => {
  it.each([
    ['web1', { host: 'web1', port: null }],
    ['WEB1.Example:9181', { host: 'web1.example', port: 9181 }],
    ['192.0.2.7:80', { host: '192.0.2.7', port: 80 }],
    ['[2001:DB8:0::1]:9181', { host: '2001:db8::1', port: 9181 }],
    ['[::ffff:127.0.0.1]', { host: '127.0.0.1', port: null }],
    ['scrape_host-2', { host: 'scrape_host-2', port: null }],
  ])('reads %s', (text, expected) => {
    expect(parseHostAuthority(text)).toEqual(expected);
  });

  it.each([
    ['empty', ''],
    ['an empty port', 'web1:'],
    ['port 0', 'web1:0'],
    ['a port past 65535', 'web1:65536'],
    ['a trailing dot', 'localhost.'],
    ['a user part', 'user@web1'],
    ['a scheme', 'http://web1'],
    ['a path', 'web1/'],
    ['an IPv6 address without brackets', '2001:db8::1'],
    ['IPv4 in brackets', '[127.0.0.1]'],
    ['a zone id', '[fe80::1%25eth0]'],
    ['a short IPv4 form', '127.1'],
    ['a decimal IPv4 form', '2130706433'],
    ['an IPv4 with leading zeros', '127.000.000.001'],
    ['percent-encoding', 'web%31'],
    ['a space', 'web1 '],
    ['an empty label', 'web1..example'],
  ])('refuses %s', (_kind, text) => {
    expect(parseHostAuthority(text)).toBeNull();
  });
});

describe('admin.allowed_hosts', () => {
  it('takes names, name:port and bracketed IPv6, and defaults to none', () => {
    expect(parsePolicy('', 'p.yaml').admin.allowed_hosts).toEqual([]);
    expect(parsePolicy('admin: { allowed_hosts: ["web1", "web1:9181", "[2001:db8::1]:9181"] }', 'p.yaml').admin.allowed_hosts).toHaveLength(3);
  });

  it('refuses an entry that could never match a Host header, saying where and what is expected', () => {
    try {
      parsePolicy('admin:\n  allowed_hosts: ["web1", "http://web1:9181"]\n', 'p.yaml');
      expect.unreachable('the policy must be refused');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const [problem] = (error as ConfigError).problems;
      expect(problem).toMatchObject({ line: 2 });
      expect(problem!.message).toContain('must be a host name or address with an optional port');
      expect(problem!.message).toContain('"http://web1:9181"');
    }
  });
});
