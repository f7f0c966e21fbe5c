import { describe, expect, it } from 'vitest';
import { compilePathPattern, type PathPatternSpec } from '../../../src/policy/path-pattern.js';
import { normalizeRequestPath } from '../../../src/policy/request-path.js';

/** What the proxy does: normalise the raw target, then match its views. */
function matchesTarget(spec: PathPatternSpec, target: string): boolean {
  const result = normalizeRequestPath(target);
  if (!result.ok) throw new Error(`${JSON.stringify(target)} is refused before matching: ${result.reason}`);
  return compilePathPattern(spec).matches(result.views);
}

const XMLRPC: PathPatternSpec = { kind: 'exact', path: '/xmlrpc.php', caseSensitive: false };

describe('exact /xmlrpc.php (case-insensitive): bypass attempts all match', () => {
  it.each([
    '/xmlrpc.php',
    '/xmlrpc.php?foo=bar',
    '/xmlrpc.php#frag',
    // PATH_INFO: the script runs for these (AcceptPathInfo; default for PHP handlers)
    '/xmlrpc.php/',
    '/xmlrpc.php/anything',
    '/xmlrpc.php/.',
    '/xmlrpc.php//',
    '/xmlrpc.php/a/b/../c',
    // dot segments and slashes
    '/./xmlrpc.php',
    '//xmlrpc.php',
    '///xmlrpc.php',
    '/foo/../xmlrpc.php',
    '/foo/bar/../../xmlrpc.php',
    '/../xmlrpc.php',
    '/.//xmlrpc.php',
    '/a//../xmlrpc.php',
    '//x/../xmlrpc.php',
    '/xmlrpc.php//..', // MergeSlashes Off: /xmlrpc.php/ (PATH_INFO "/")
    // percent-encoding
    '/%2e%2e/xmlrpc.php',
    '/.%2e/xmlrpc.php',
    '/%2e/xmlrpc.php',
    '/xmlrpc%2ephp',
    '/%78mlrpc.php',
    '/%78%6D%6C%72%70%63%2E%70%68%70',
    '/xmlrpc.ph%70',
    // encoded slashes (AllowEncodedSlashes On)
    '/xmlrpc.php%2F',
    '/xmlrpc.php%2fanything',
    '/xmlrpc.php%2F..', // older Apache: xmlrpc.php with PATH_INFO "/.."
    '/%2Fxmlrpc.php',
    '/foo%2F..%2Fxmlrpc.php',
    '/x/..%2Fxmlrpc.php',
    '/%2e%2e%2fxmlrpc.php',
    // case (case-insensitive filesystems)
    '/XMLRPC.PHP',
    '/XmlRpc.Php',
    '/XMLRPC.PHP/x',
    // MultiViews: /xmlrpc negotiates to xmlrpc.php
    '/xmlrpc',
    '/xmlrpc/',
    '/xmlrpc/anything',
    '/XMLRPC',
    '/xmlrpc%2Fx',
    // absolute-form
    'http://x/xmlrpc.php',
    'HTTPS://x:443/xmlrpc.php?x',
    'http://x//./xmlrpc.php',
    'http:/xmlrpc.php',
  ])('%j matches', (target) => {
    expect(matchesTarget(XMLRPC, target)).toBe(true);
  });
});

describe('exact /xmlrpc.php: other resources do not match', () => {
  it.each([
    '/',
    '/index.html',
    '/xmlrpc.phpx',
    '/xmlrpc.php.bak', // a different file (a backup is a problem of its own, not this rule's)
    '/xmlrpc.php.', // a different file on Linux (Windows would strip the dot; Apache on Linux does not)
    '/xmlrpc.php%20',
    '/xmlrpc.php;x', // ";" is literal in Apache: another file name, not a parameter
    '/xmlrpc.php%3Bx',
    '/xmlrpc.php%3F', // an encoded "?" is part of the file name
    '/xmlrpc.ph',
    '/xmlrpcphp',
    '/xmlrpcx', // the MultiViews name must be a whole segment
    '/xmlrpc.',
    '/xmlrpc_php',
    // A different file in another directory. (WordPress multisite with sub-directory
    // sites routes /blog/xmlrpc.php to xmlrpc.php through rewrite rules: users block
    // those with a regex rule, e.g. `(^|/)xmlrpc\.php(/|$)`, see below.)
    '/blog/xmlrpc.php',
    '/wp/xmlrpc',
    '/%252e/xmlrpc.php', // decoded once: a directory literally named "%2e"
    '/xmlrpc.php%2500', // a file literally named "xmlrpc.php%00"
    '/\\xmlrpc.php', // backslash is literal on Linux
    '/xmlrpc.php\\',
    '/..%5cxmlrpc.php',
    '/%c0%ae%c0%ae/xmlrpc.php', // overlong UTF-8 is not a dot for Apache
    'http://x/?/xmlrpc.php',
    '*',
  ])('%j does not match', (target) => {
    expect(matchesTarget(XMLRPC, target)).toBe(false);
  });
});

describe('exact: case sensitivity', () => {
  const sensitive: PathPatternSpec = { kind: 'exact', path: '/xmlrpc.php', caseSensitive: true };

  it.each([
    ['/xmlrpc.php', true],
    ['/xmlrpc.php/x', true],
    ['/xmlrpc', true],
    ['/XMLRPC.PHP', false],
    ['/Xmlrpc.php', false],
  ])('case-sensitive: %j → %s', (target, expected) => {
    expect(matchesTarget(sensitive, target)).toBe(expected);
  });

  it('folds a mixed-case pattern when case-insensitive', () => {
    expect(matchesTarget({ kind: 'exact', path: '/Wp-Login.PHP', caseSensitive: false }, '/wp-login.php')).toBe(true);
  });

  it('folds ASCII only: non-ASCII bytes are compared exactly', () => {
    const cafe: PathPatternSpec = { kind: 'exact', path: '/café', caseSensitive: false };
    expect(matchesTarget(cafe, '/caf%C3%A9')).toBe(true);
    expect(matchesTarget(cafe, '/CAF\xc3\xa9')).toBe(true); // raw bytes, as Node's req.url shows them
    expect(matchesTarget(cafe, '/caf%C3%89')).toBe(false); // É: another byte sequence
  });
});

describe('exact: MultiViews names', () => {
  it.each([
    ['/a/b.tar.gz', '/a/b', true],
    ['/a/b.tar.gz', '/a/b.tar', true],
    ['/a/b.tar.gz', '/a/b.tar/x', true],
    ['/a/b.tar.gz', '/a/b.gz', false],
    ['/a/b.tar.gz', '/a/b.', false],
    ['/.env', '/', false], // a leading dot is not an extension
    ['/.env', '/.env/x', true],
    ['/.env.local', '/.env', true],
    ['/README', '/README/x', true],
    ['/README', '/READMEx', false],
  ])('exact %j vs %j → %s', (path, target, expected) => {
    expect(matchesTarget({ kind: 'exact', path, caseSensitive: false }, target)).toBe(expected);
  });
});

describe('exact: a path ending in "/" is that directory only', () => {
  const admin: PathPatternSpec = { kind: 'exact', path: '/admin/', caseSensitive: false };

  it.each([
    ['/admin/', true],
    ['/admin', true], // the same directory (mod_dir redirects, or serves it with DirectorySlash Off)
    ['/ADMIN/', true],
    ['/admin/./', true],
    ['/admin//', true],
    ['/admin/index.php', false], // the DirectoryIndex file is another URL: add a rule or use prefix
    ['/admin/x', false],
    ['/administrator', false],
  ])('%j → %s', (target, expected) => {
    expect(matchesTarget(admin, target)).toBe(expected);
  });

  it('exact "/" is the root only', () => {
    const root: PathPatternSpec = { kind: 'exact', path: '/', caseSensitive: false };
    expect(matchesTarget(root, '/')).toBe(true);
    expect(matchesTarget(root, '/./')).toBe(true);
    expect(matchesTarget(root, '/index.html')).toBe(false);
  });
});

describe('prefix', () => {
  const wpAdmin: PathPatternSpec = { kind: 'prefix', prefix: '/wp-admin/', caseSensitive: false };

  it.each([
    ['/wp-admin/', true],
    ['/wp-admin/admin-ajax.php', true],
    ['/WP-ADMIN/x', true],
    ['//wp-admin//x', true],
    ['/x/../wp-admin/x', true],
    ['/wp-admin%2Fx', true],
    ['/%77p-admin/x', true],
    ['/wp-admin/../index.html', false], // resolves outside the prefix
    ['/wp-admin', false], // not under the prefix (mod_dir only redirects it to /wp-admin/)
    ['/wp-admins/x', false],
    ['/blog/wp-admin/x', false],
  ])('%j → %s', (target, expected) => {
    expect(matchesTarget(wpAdmin, target)).toBe(expected);
  });

  it('is case-sensitive when asked', () => {
    const sensitive: PathPatternSpec = { kind: 'prefix', prefix: '/wp-admin/', caseSensitive: true };
    expect(matchesTarget(sensitive, '/wp-admin/x')).toBe(true);
    expect(matchesTarget(sensitive, '/WP-ADMIN/x')).toBe(false);
  });
});

describe('regex', () => {
  // How to block xmlrpc.php in every WordPress multisite sub-directory site.
  const anyXmlrpc: PathPatternSpec = { kind: 'regex', regex: '(^|/)xmlrpc\\.php(/|$)', caseSensitive: false };

  it.each([
    ['/xmlrpc.php', true],
    ['/blog/xmlrpc.php', true],
    ['/blog/XMLRPC.PHP/x', true],
    ['/blog/%78mlrpc.php', true],
    ['/blog/xmlrpc.phpx', false],
    ['/blog/xmlrpc.php.bak', false],
  ])('%j → %s', (target, expected) => {
    expect(matchesTarget(anyXmlrpc, target)).toBe(expected);
  });

  it('is not anchored unless the regex anchors itself', () => {
    const loose: PathPatternSpec = { kind: 'regex', regex: 'admin', caseSensitive: true };
    expect(matchesTarget(loose, '/x/admin-panel')).toBe(true);
    const anchored: PathPatternSpec = { kind: 'regex', regex: '^/admin', caseSensitive: true };
    expect(matchesTarget(anchored, '/x/admin-panel')).toBe(false);
  });

  it('uses the i flag only when case-insensitive', () => {
    expect(matchesTarget({ kind: 'regex', regex: '^/Admin$', caseSensitive: false }, '/ADMIN')).toBe(true);
    expect(matchesTarget({ kind: 'regex', regex: '^/Admin$', caseSensitive: true }, '/ADMIN')).toBe(false);
  });

  it('sees decoded, normalised views and every one of them', () => {
    const dotdot: PathPatternSpec = { kind: 'regex', regex: '/\\.\\.$', caseSensitive: true };
    // Only the AllowEncodedSlashes-without-renormalisation view keeps the "..".
    expect(matchesTarget(dotdot, '/xmlrpc.php%2F..')).toBe(true);
    expect(matchesTarget(dotdot, '/xmlrpc.php/..')).toBe(false);
  });

  it('matches non-ASCII as UTF-8 bytes', () => {
    expect(matchesTarget({ kind: 'regex', regex: '^/caf\\xC3\\xA9$', caseSensitive: true }, '/caf%C3%A9')).toBe(true);
  });

  it('keeps no state between calls (no g or y flag)', () => {
    const p = compilePathPattern({ kind: 'regex', regex: 'a', caseSensitive: true });
    for (let i = 0; i < 3; i++) expect(p.matches(['/a'])).toBe(true);
  });
});

describe('matches(): any view', () => {
  it('is true if any view matches and false for no views', () => {
    const p = compilePathPattern(XMLRPC);
    expect(p.matches(['/', '/xmlrpc.php/..'])).toBe(true);
    expect(p.matches(['/', '/index.html'])).toBe(false);
    expect(p.matches([])).toBe(false);
  });

  it('exposes a frozen copy of its spec', () => {
    const spec = { kind: 'prefix', prefix: '/a/', caseSensitive: false } as const;
    const p = compilePathPattern(spec);
    expect(p.spec).toEqual(spec);
    expect(Object.isFrozen(p.spec)).toBe(true);
  });
});

describe('compilePathPattern: validation', () => {
  it.each<[PathPatternSpec, RegExp]>([
    [{ kind: 'exact', path: 'xmlrpc.php', caseSensitive: false }, /exact path must start with "\/", got "xmlrpc.php"/],
    [{ kind: 'exact', path: '', caseSensitive: false }, /must start with "\/"/],
    [{ kind: 'prefix', prefix: 'wp-admin/', caseSensitive: false }, /prefix must start with "\/"/],
    [{ kind: 'exact', path: '/a?b=1', caseSensitive: false }, /contains "\?" or "#"/],
    [{ kind: 'exact', path: '/a#b', caseSensitive: false }, /contains "\?" or "#"/],
    [{ kind: 'exact', path: '/100%', caseSensitive: false }, /not a valid URL path: .*percent-encoding/],
    [{ kind: 'exact', path: '/a%00', caseSensitive: false }, /not a valid URL path/],
    [{ kind: 'exact', path: '/a%0a', caseSensitive: false }, /control character/],
    [{ kind: 'exact', path: '/a b', caseSensitive: false }, /not a valid URL path/],
    [{ kind: 'exact', path: '/a/../xmlrpc.php', caseSensitive: false }, /not a normalised path .* did you mean "\/xmlrpc.php"/],
    [{ kind: 'exact', path: '//xmlrpc.php', caseSensitive: false }, /did you mean "\/xmlrpc.php"/],
    [{ kind: 'prefix', prefix: '/wp-admin/.', caseSensitive: false }, /did you mean "\/wp-admin\/"/],
    [{ kind: 'exact', path: '/a%2F..%2Fb', caseSensitive: false }, /not a normalised path/],
    [{ kind: 'regex', regex: '(', caseSensitive: false }, /path regex "\(" is not a valid JavaScript regular expression/],
    [{ kind: 'regex', regex: '', caseSensitive: false }, /non-empty/],
    [{ kind: 'regex', regex: '^/café$', caseSensitive: false }, /non-ASCII/],
  ])('%j is refused', (spec, message) => {
    expect(() => compilePathPattern(spec)).toThrow(message);
  });

  it('refuses an unknown kind and a non-boolean caseSensitive', () => {
    expect(() => compilePathPattern({ kind: 'glob', path: '/a', caseSensitive: false } as unknown as PathPatternSpec)).toThrow(
      /kind must be "exact", "prefix" or "regex", got "glob"/,
    );
    expect(() => compilePathPattern({ kind: 'exact', path: '/a' } as unknown as PathPatternSpec)).toThrow(/caseSensitive must be a boolean/);
  });

  it('throws plain Errors (the config layer adds the location)', () => {
    try {
      compilePathPattern({ kind: 'exact', path: 'x', caseSensitive: false });
      expect.unreachable();
    } catch (err) {
      expect(Object.getPrototypeOf(err)).toBe(Error.prototype);
    }
  });

  it('accepts percent-encoded and non-ASCII paths, decoded once', () => {
    expect(compilePathPattern({ kind: 'exact', path: '/a%20b', caseSensitive: false }).matches(['/a b'])).toBe(true);
    expect(compilePathPattern({ kind: 'exact', path: '/100%25', caseSensitive: false }).matches(['/100%'])).toBe(true);
    expect(compilePathPattern({ kind: 'prefix', prefix: '/über/', caseSensitive: false }).matches(['/\xc3\xbcber/x'])).toBe(true);
  });
});
