import { describe, expect, it } from 'vitest';
import { toOriginForm } from '../../../src/policy/origin-form.js';
import { normalizeRequestPath } from '../../../src/policy/request-path.js';

describe('toOriginForm', () => {
  it('keeps origin-form and * as they are', () => {
    expect(toOriginForm('/a/../b?x=1')).toEqual({ target: '/a/../b?x=1', authority: null });
    expect(toOriginForm('//x.php')).toEqual({ target: '//x.php', authority: null });
    expect(toOriginForm('*')).toEqual({ target: '*', authority: null });
  });

  it('keeps the path of an absolute-form target byte for byte, backslashes and dot segments included', () => {
    expect(toOriginForm('http://host/foo\\..\\xmlrpc.php')).toEqual({ target: '/foo\\..\\xmlrpc.php', authority: 'host' });
    expect(toOriginForm('HTTPS://Host:8443/a/%2e%2e/xmlrpc.php?q#frag')).toEqual({ target: '/a/%2e%2e/xmlrpc.php?q', authority: 'Host:8443' });
    expect(toOriginForm('http://[::1]:80//x')).toEqual({ target: '//x', authority: '[::1]:80' });
  });

  it('gives an empty path as / and keeps the query', () => {
    expect(toOriginForm('http://host')).toEqual({ target: '/', authority: 'host' });
    expect(toOriginForm('http://host?a=b')).toEqual({ target: '/?a=b', authority: 'host' });
    expect(toOriginForm('http:/a')).toEqual({ target: '/a', authority: null });
  });

  it('refuses what cannot be read unambiguously, as the normaliser does', () => {
    for (const target of ['http://user@host/x', 'http:///x', 'http://ho st/x', 'ftp://host/x', 'host/x', 'http:x', 'http://a:b:c/x']) {
      expect(toOriginForm(target), target).toBeNull();
      expect(normalizeRequestPath(target).ok, target).toBe(false);
    }
  });

  it('decides on the same path it forwards', () => {
    for (const target of ['http://h/foo\\..\\xmlrpc.php', 'http://h/a/..%2fxmlrpc.php', 'http://h//xmlrpc.php/x']) {
      const origin = toOriginForm(target);
      expect(normalizeRequestPath(origin?.target ?? '')).toEqual(normalizeRequestPath(target));
    }
  });
});
