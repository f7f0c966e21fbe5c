import { describe, expect, it } from 'vitest';
import { HostNameIndex, isServableHostName, normaliseHostName } from '../../../src/tls/host-name-index.js';

describe('HostNameIndex (RFC 6125 matching)', () => {
  const index = new HostNameIndex<string>();
  index.add(['example.org', '*.example.org'], 'main');
  index.add(['a.test', '*.b.test'], 'tests');
  index.add(['exact.b.test'], 'exact');

  it('finds an exact name, case-insensitively and with a trailing dot', () => {
    expect(index.lookup('example.org')).toBe('main');
    expect(index.lookup('EXAMPLE.Org')).toBe('main');
    expect(index.lookup('a.test.')).toBe('tests');
  });

  it('lets a wildcard stand for exactly one left-most label', () => {
    expect(index.lookup('www.example.org')).toBe('main');
    expect(index.lookup('x.b.test')).toBe('tests');
    // Not the bare domain, not two labels deep.
    expect(index.lookup('b.test')).toBeUndefined();
    expect(index.lookup('a.b.example.org')).toBeUndefined();
    expect(index.lookup('y.x.b.test')).toBeUndefined();
  });

  it('prefers an exact name to a wildcard, whatever the order they were added in', () => {
    expect(index.lookup('exact.b.test')).toBe('exact');
  });

  it('keeps a name for the first value that claimed it', () => {
    const first = new HostNameIndex<string>();
    first.add(['a.test'], 'one');
    first.add(['a.test', 'c.test'], 'two');
    expect(first.lookup('a.test')).toBe('one');
    expect(first.lookup('c.test')).toBe('two');
  });

  it('covers nothing for an unknown name or an empty one', () => {
    expect(index.lookup('other.test')).toBeUndefined();
    expect(index.lookup('')).toBeUndefined();
    expect(index.lookup('.example.org')).toBeUndefined();
  });

  it('refuses names it could never serve, and says which', () => {
    const refusing = new HostNameIndex<string>();
    expect(refusing.add(['*.org', 'w*.example.org', 'a.*.example.org', '*', 'ok.test', 'bad name.test', ''], 'x')).toEqual(['*.org', 'w*.example.org', 'a.*.example.org', '*', 'bad name.test', '']);
    expect(refusing.lookup('example.org')).toBeUndefined();
    expect(refusing.lookup('ok.test')).toBe('x');
  });
});

describe('isServableHostName', () => {
  it('accepts host names and whole-label wildcards with two labels under them', () => {
    for (const name of ['a.test', 'xn--bcher-kva.example', 'localhost', '*.example.org', 'A.TEST', '_dmarc.example.org']) expect(isServableHostName(name), name).toBe(true);
  });

  it('refuses wildcards over a whole top-level domain, partial wildcards and malformed labels', () => {
    for (const name of ['*.org', '*', 'f*o.example.org', 'a.*.org', '-a.test', 'a-.test', 'a..test', '192.0.2.1 ']) expect(isServableHostName(name), name).toBe(false);
  });
});

describe('normaliseHostName', () => {
  it('lower-cases and drops one trailing dot', () => {
    expect(normaliseHostName('WWW.Example.ORG.')).toBe('www.example.org');
  });
});
