import { describe, expect, it } from 'vitest';
import { decodePathOnce, normalizeRequestPath, REQUEST_PATH_REASONS } from '../../../src/policy/request-path.js';

function views(target: string): readonly string[] {
  const result = normalizeRequestPath(target);
  if (!result.ok) throw new Error(`expected ${JSON.stringify(target)} to be ok, got: ${result.reason}`);
  return result.views;
}

describe('normalizeRequestPath: plain paths (the hot path)', () => {
  it.each([
    ['/', '/'],
    ['/xmlrpc.php', '/xmlrpc.php'],
    ['/wp-admin/admin-ajax.php', '/wp-admin/admin-ajax.php'],
    ['/a/b?x=1&y=/../z', '/a/b'],
    ['/a/b#frag', '/a/b'],
    ['/a/b?q#f', '/a/b'],
    ['/.well-known/acme-challenge/x', '/.well-known/acme-challenge/x'],
    ['/a/.hidden/..x/...', '/a/.hidden/..x/...'],
    ['/file.', '/file.'],
    ['/xmlrpc.php;x', '/xmlrpc.php;x'],
    ['/a\\..\\xmlrpc.php', '/a\\..\\xmlrpc.php'], // backslash is a literal character on Linux
    ['/XMLRPC.PHP', '/XMLRPC.PHP'], // case is kept; the matcher folds it
    ['/caf\xc3\xa9', '/caf\xc3\xa9'], // raw UTF-8 bytes as Node's req.url (latin1) shows them
  ])('%j → [%j]', (target, view) => {
    expect(views(target)).toEqual([view]);
  });

  it('returns the very same string when there is nothing to cut or normalise', () => {
    const target = '/wp-content/themes/x/style.css';
    expect(views(target)[0]).toBe(target);
  });
});

describe('normalizeRequestPath: decoding (exactly once) and dot segments', () => {
  it.each([
    // [target, all views]
    ['/./xmlrpc.php', ['/xmlrpc.php']],
    ['/foo/../xmlrpc.php', ['/xmlrpc.php']],
    ['/foo/bar/../../xmlrpc.php', ['/xmlrpc.php']],
    ['/../xmlrpc.php', ['/xmlrpc.php']], // Apache: 400 (above root); for matching it stays at the root
    ['/..', ['/']],
    ['/.', ['/']],
    ['/a/.', ['/a/']],
    ['/a/..', ['/']],
    ['/a/b/..', ['/a/']],
    ['/xmlrpc.php/.', ['/xmlrpc.php/']],
    ['/xmlrpc.php/..', ['/']],
    ['/%2e%2e/xmlrpc.php', ['/xmlrpc.php']],
    ['/.%2E/xmlrpc.php', ['/xmlrpc.php']],
    ['/%2e/xmlrpc.php', ['/xmlrpc.php']],
    ['/xmlrpc%2ephp', ['/xmlrpc.php']],
    ['/%78mlrpc.php', ['/xmlrpc.php']],
    ['/xmlrpc.%70%68%70', ['/xmlrpc.php']],
    ['/%252e/xmlrpc.php', ['/%2e/xmlrpc.php']], // once: %25 → %, never further
    ['/%252e%252e/xmlrpc.php', ['/%2e%2e/xmlrpc.php']],
    ['/xmlrpc.php%2500', ['/xmlrpc.php%00']],
    ['/a%3Fb%23c', ['/a?b#c']], // encoded ? and # are path characters
    ['/a%5c..%5cxmlrpc.php', ['/a\\..\\xmlrpc.php']], // encoded backslash: literal too
    ['/caf%C3%A9', ['/caf\xc3\xa9']], // same view as the raw bytes
    ['/xmlrpc.php%0a', ['/xmlrpc.php\n']], // encoded control characters are decoded (Apache: 404)
    ['/%c0%ae%c0%ae/xmlrpc.php', ['/\xc0\xae\xc0\xae/xmlrpc.php']], // overlong UTF-8 is not a dot
  ])('%j → %j', (target, expected) => {
    expect(views(target)).toEqual(expected);
  });
});

describe('normalizeRequestPath: slashes (MergeSlashes On and Off)', () => {
  it.each([
    ['//xmlrpc.php', ['/xmlrpc.php']],
    ['///xmlrpc.php', ['/xmlrpc.php']],
    ['/a//xmlrpc.php', ['/a/xmlrpc.php']],
    ['/xmlrpc.php//', ['/xmlrpc.php/']],
    ['/.//xmlrpc.php', ['/xmlrpc.php']],
    // An origin-form target is never //authority: Apache reduces leading slashes to one.
    ['//x/../xmlrpc.php', ['/xmlrpc.php']],
    // MergeSlashes Off: ".." removes the empty segment first, the filesystem merges later.
    ['/xmlrpc.php//..', ['/', '/xmlrpc.php/']],
    ['/a//../xmlrpc.php', ['/xmlrpc.php', '/a/xmlrpc.php']],
  ])('%j → %j', (target, expected) => {
    expect(views(target)).toEqual(expected);
  });
});

describe('normalizeRequestPath: encoded slashes (AllowEncodedSlashes Off / On / NoDecode)', () => {
  it.each([
    ['/xmlrpc.php%2F', ['/xmlrpc.php/']],
    ['/xmlrpc.php%2fanything', ['/xmlrpc.php/anything']],
    ['/%2Fxmlrpc.php', ['/xmlrpc.php']],
    // (a) decoded then resolved; (b) resolved with %2F kept, then decoded (PATH_INFO "/..").
    ['/xmlrpc.php%2F..', ['/', '/xmlrpc.php/..']],
    ['/xmlrpc.php%2f%2e%2e', ['/', '/xmlrpc.php/..']],
    ['/foo%2F..%2Fxmlrpc.php', ['/xmlrpc.php', '/foo/../xmlrpc.php']],
    ['/%2e%2e%2fxmlrpc.php', ['/xmlrpc.php', '/../xmlrpc.php']],
    // Apache >= 2.4.49 resolves with %2F kept, decodes, then resolves again: /a/xmlrpc.php.
    ['/a/b%2F../../xmlrpc.php', ['/xmlrpc.php', '/a/xmlrpc.php']],
    ['/a%2F%2F..', ['/', '/a/', '/a/..']],
    ['/%252F', ['/%2F']], // an encoded "%2F" is a literal name, not a slash
  ])('%j → %j', (target, expected) => {
    expect(views(target)).toEqual(expected);
  });

  it('puts the canonical view (decode all, resolve, merge) first', () => {
    expect(views('/x/..%2Fxmlrpc.php')[0]).toBe('/xmlrpc.php');
    expect(views('/xmlrpc.php//..')[0]).toBe('/');
  });
});

describe('normalizeRequestPath: absolute-form and *', () => {
  it.each([
    ['http://x/xmlrpc.php', ['/xmlrpc.php']],
    ['HTTP://x/xmlrpc.php', ['/xmlrpc.php']],
    ['https://x:8443/xmlrpc.php?q', ['/xmlrpc.php']],
    ['http://x//xmlrpc.php', ['/xmlrpc.php']],
    ['http://x/./a/../xmlrpc.php', ['/xmlrpc.php']],
    ['http://x/%78mlrpc.php', ['/xmlrpc.php']],
    ['http://x', ['/']],
    ['http://x?/xmlrpc.php', ['/']],
    ['http://x#/xmlrpc.php', ['/']],
    ['http:/xmlrpc.php', ['/xmlrpc.php']], // no authority: Apache serves the path
    ['*', ['*']],
  ])('%j → %j', (target, expected) => {
    expect(views(target)).toEqual(expected);
  });
});

describe('normalizeRequestPath: refused targets (Apache answers 400, or 404 for %00)', () => {
  it.each([
    ['', REQUEST_PATH_REASONS.badForm],
    ['xmlrpc.php', REQUEST_PATH_REASONS.badForm],
    // The authority becomes the Host Apache sees: userinfo or an empty host is refused, never guessed.
    ['https://user@x:8443/xmlrpc.php', REQUEST_PATH_REASONS.badForm],
    ['http:///xmlrpc.php', REQUEST_PATH_REASONS.badForm],
    ['\\xmlrpc.php', REQUEST_PATH_REASONS.badForm],
    ['./xmlrpc.php', REQUEST_PATH_REASONS.badForm],
    ['**', REQUEST_PATH_REASONS.badForm],
    ['http:xmlrpc.php', REQUEST_PATH_REASONS.badForm],
    ['1http://x/a', REQUEST_PATH_REASONS.badForm],
    ['foo://x/xmlrpc.php', REQUEST_PATH_REASONS.badScheme],
    ['x:/xmlrpc.php', REQUEST_PATH_REASONS.badScheme],
    ['/xmlrpc.php%zz', REQUEST_PATH_REASONS.badEscape],
    ['/xmlrpc.php%4', REQUEST_PATH_REASONS.badEscape],
    ['/xmlrpc.php%', REQUEST_PATH_REASONS.badEscape],
    ['/%G0', REQUEST_PATH_REASONS.badEscape],
    ['http://x/%zz', REQUEST_PATH_REASONS.badEscape],
    ['/xmlrpc.php%00', REQUEST_PATH_REASONS.encodedNul],
    ['/%00/../xmlrpc.php', REQUEST_PATH_REASONS.encodedNul],
    ['/xmlrpc.php\u0000', REQUEST_PATH_REASONS.controlChar],
    ['/xmlrpc.php\u0001', REQUEST_PATH_REASONS.controlChar],
    ['/xmlrpc.php\t', REQUEST_PATH_REASONS.controlChar],
    ['/xmlrpc.php\r\n', REQUEST_PATH_REASONS.controlChar],
    ['/xmlrpc.php\u007f', REQUEST_PATH_REASONS.controlChar],
    ['/xmlrpc.php x', REQUEST_PATH_REASONS.controlChar],
  ])('%j is refused', (target, reason) => {
    expect(normalizeRequestPath(target)).toEqual({ ok: false, reason });
  });

  it('does not look at the query (Apache refuses bad request lines itself)', () => {
    expect(normalizeRequestPath('/a?%zz')).toEqual({ ok: true, views: ['/a'] });
  });
});

describe('normalizeRequestPath: invariants', () => {
  const samples = [
    '/xmlrpc.php%2F..',
    '/a//../b/./c%2f..%2F%2e%2e/d',
    '/%2e%2e%2f%2e%2e%2fxmlrpc.php',
    '//a//b/..//../c',
    '/a/b/c/../../../../x',
    'http://h/a%2F..//./b',
  ];

  it.each(samples)('the canonical view of %j normalises to itself', (target) => {
    const [canonical] = views(target);
    expect(views(canonical!.replaceAll('%', '%25'))).toEqual([canonical]);
  });

  it.each(samples)('views of %j are distinct and start with /', (target) => {
    const v = views(target);
    expect(new Set(v).size).toBe(v.length);
    for (const view of v) expect(view.startsWith('/')).toBe(true);
  });
});

describe('normalizeRequestPath: long targets keep their meaning (linear-time paths, issue 9 item 8)', () => {
  const n = 3_000;
  it.each([
    ['segments then as many `..`', `/${'a/'.repeat(n)}${'../'.repeat(n)}xmlrpc.php`, ['/xmlrpc.php']],
    ['encoded `..` one short', `/${'a/'.repeat(n)}${'%2e%2e/'.repeat(n - 1)}xmlrpc.php`, ['/a/xmlrpc.php']],
    ['empty segments removed by `..` (MergeSlashes Off)', `/xmlrpc.php${'//..'.repeat(n)}`, ['/', '/xmlrpc.php/']],
    ['encoded slashes', `/${'a%2f'.repeat(n)}xmlrpc.php`, [`/${'a/'.repeat(n)}xmlrpc.php`]],
    ['encoded-slash dot segments', `/${'a%2f..%2f'.repeat(n)}xmlrpc.php`, ['/xmlrpc.php', `/${'a/../'.repeat(n)}xmlrpc.php`]],
    ['`.` between empty segments', `/${'/./'.repeat(n)}xmlrpc.php`, ['/xmlrpc.php']],
  ])('%s', (_name, target, expected) => {
    expect(views(target)).toEqual(expected);
  });
});

describe('decodePathOnce', () => {
  it.each([
    ['/a%2Fb', '/a/b'],
    ['/%252e', '/%2e'],
    ['/plain', '/plain'],
  ])('%j → %j', (input, expected) => {
    expect(decodePathOnce(input)).toBe(expected);
  });

  it.each(['/%zz', '/%0', '/%00'])('%j → null', (input) => {
    expect(decodePathOnce(input)).toBeNull();
  });
});
