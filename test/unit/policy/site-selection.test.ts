import { describe, expect, it } from 'vitest';
import { parseHostPattern, type HostPattern } from '../../../src/policy/host-pattern.js';
import { canonicalRequestHost, hostApacheUses } from '../../../src/policy/request-host.js';
import { SiteSelector } from '../../../src/policy/site-selection.js';

const patterns = (...texts: string[]): HostPattern[] => texts.map((text) => parseHostPattern(text) as HostPattern);

describe('hostApacheUses', () => {
  it('takes an absolute-form authority first (RFC 9112 §3.2.2), else Host, and :authority only without Host', () => {
    expect(hostApacheUses({ authority: 'a.example', host: 'b.example', h2Authority: 'c.example' })).toBe('a.example');
    expect(hostApacheUses({ authority: null, host: 'b.example', h2Authority: 'c.example' })).toBe('b.example');
    expect(hostApacheUses({ authority: null, host: undefined, h2Authority: 'c.example' })).toBe('c.example');
    expect(hostApacheUses({ authority: null, host: undefined })).toBeUndefined();
  });
});

describe('canonicalRequestHost', () => {
  it.each([
    ['blog.example.org', 'blog.example.org'],
    ['BLOG.Example.ORG', 'blog.example.org'],
    ['blog.example.org:8080', 'blog.example.org'],
    ['blog.example.org.', 'blog.example.org'],
    ['Blog.Example.Org.:80', 'blog.example.org'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['XN--BCHER-KVA.example', 'xn--bcher-kva.example'],
    ['192.0.2.7:80', '192.0.2.7'],
    ['[2001:DB8::1]:80', '2001:db8::1'],
    // Apache 2.4 serves these (seen in test/integration/sites-apache.test.ts), so they are names like any other.
    ['My_Host.example.org', 'my_host.example.org'],
  ])('reads %s as %s', (value, expected) => {
    expect(canonicalRequestHost(value)).toBe(expected);
  });

  it.each([
    ['empty', ''],
    ['two trailing dots', 'blog.example.org..'],
    ['an empty label', 'blog..example.org'],
    ['an empty port', 'blog.example.org:'],
    ['a port past 65535', 'blog.example.org:70000'],
    ['a user part', 'user@blog.example.org'],
    ['raw UTF-8 (Apache refuses it; clients send punycode)', 'bücher.example'],
    ['a space', 'blog.example.org evil.example'],
    ['a comma (two Hosts folded into one)', 'a.example, b.example'],
    ['a slash', 'blog.example.org/x'],
    ['a short IPv4 form', '127.1'],
    // Apache serves a leading dot from its default vhost; portcullis refuses it rather than guess (no browser sends one).
    ['a leading dot', '.example.org'],
  ])('refuses %s', (_, value) => {
    expect(canonicalRequestHost(value)).toBeNull();
  });
});

describe('SiteSelector', () => {
  const selector = new SiteSelector(
    [
      { site: 'shop', patterns: patterns('shop.example.org') },
      { site: 'all', patterns: patterns('*.example.org') },
      { site: 'blog', patterns: patterns('blog.example.net', 'bücher.example', '*.blog.example.net') },
      { site: 'late', patterns: patterns('shop.example.org') },
    ],
    'default',
  );

  it('picks the first matching site in policy order, as Apache picks the first matching vhost', () => {
    expect(selector.select('shop.example.org')).toBe('shop');
    expect(selector.select('www.example.org')).toBe('all');
    expect(selector.select('my_shop.example.org')).toBe('all');
    expect(selector.select('a.b.example.org')).toBe('all');
    expect(selector.select('blog.example.net')).toBe('blog');
    expect(selector.select('x.y.blog.example.net')).toBe('blog');
    expect(selector.select('xn--bcher-kva.example')).toBe('blog');
  });

  it('compares as Apache does: case, port and one trailing dot do not matter', () => {
    expect(selector.select('SHOP.example.ORG.:8443')).toBe('shop');
    expect(selector.select('Blog.Example.Net:80')).toBe('blog');
  });

  it('serves names no site has, a wildcard base itself, and no Host at all (HTTP/1.0) from the default site', () => {
    expect(selector.select('example.org')).toBe('default');
    expect(selector.select('blog.example.net.evil.example')).toBe('default');
    expect(selector.select('192.0.2.7')).toBe('default');
    expect(selector.select(undefined)).toBe('default');
  });

  it('chooses nothing for a Host that is not usable: the request gets 400', () => {
    expect(selector.select('shop.example.org..')).toBeNull();
    expect(selector.select('')).toBeNull();
    expect(selector.select('.shop.example.org')).toBeNull();
  });

  it('gives a Host value the same site when asked again, also after thousands of other values passed through its memo', () => {
    const spellings = ['SHOP.example.ORG.:8443', 'www.example.org', 'x.y.blog.example.net', 'example.org', '192.0.2.7', '', 'shop.example.org..'];
    const first = spellings.map((value) => selector.select(value));
    expect(first).toEqual(['shop', 'all', 'blog', 'default', 'default', null, null]);
    expect(spellings.map((value) => selector.select(value))).toEqual(first);
    // Far more distinct values than the memo holds: it forgets, and answers stay right.
    for (let i = 0; i < 20_000; i++) expect(selector.select(`h${i}.example.org`)).toBe('all');
    expect(spellings.map((value) => selector.select(value))).toEqual(first);
  });
});
