/**
 * Differential test: what the real Apache serves vs what the proxy's path
 * matching blocks. Every request-target below is sent straight to Apache over
 * a raw socket (fetch/undici would normalise the path first) under several
 * configurations that make bypass vectors live. Whenever Apache serves
 * xmlrpc.php, `exact /xmlrpc.php` must match the target's views; whenever
 * normalizeRequestPath refuses a target, Apache must refuse it too. A bypass,
 * or a refusal of something Apache would serve, fails the test.
 *
 * Set PORTCULLIS_PRINT_PATH_TABLE=1 to print what each Apache did.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePathPattern } from '../../src/policy/path-pattern.js';
import { normalizeRequestPath, REQUEST_PATH_REASONS } from '../../src/policy/request-path.js';
import { startApache, XMLRPC_MARKER, type ApacheHandle, type StartApacheOptions } from '../support/apache.js';

const XMLRPC = compilePathPattern({ kind: 'exact', path: '/xmlrpc.php', caseSensitive: false });

/** Hand-picked attempts to reach /xmlrpc.php (and near misses). */
const VECTORS: readonly string[] = [
  '/xmlrpc.php',
  '/xmlrpc.php?x=1',
  '/xmlrpc.php#f',
  '/xmlrpc.php/',
  '/xmlrpc.php/anything',
  '/xmlrpc.php/.',
  '/xmlrpc.php/..',
  '/xmlrpc.php//',
  '/xmlrpc.php//..',
  '/./xmlrpc.php',
  '//xmlrpc.php',
  '///xmlrpc.php',
  '/.//xmlrpc.php',
  '/foo/../xmlrpc.php',
  '/a//../xmlrpc.php',
  '//x/../xmlrpc.php',
  '/index.html/../xmlrpc.php',
  '/../xmlrpc.php',
  '/%2e%2e/xmlrpc.php',
  '/.%2e/xmlrpc.php',
  '/%2e/xmlrpc.php',
  '/xmlrpc%2ephp',
  '/%78mlrpc.php',
  '/%78%6D%6C%72%70%63%2E%70%68%70',
  '/xmlrpc.php%2F',
  '/xmlrpc.php%2F..',
  '/xmlrpc.php%2fanything',
  '/%2Fxmlrpc.php',
  '/foo%2F..%2Fxmlrpc.php',
  '/x/..%2Fxmlrpc.php',
  '/%2e%2e%2fxmlrpc.php',
  '/a/b%2F../../xmlrpc.php',
  '/a%2F%2F../xmlrpc.php',
  '/xmlrpc.php%2F%2F..',
  '/XMLRPC.PHP',
  '/Xmlrpc.php',
  '/xmlrpc',
  '/xmlrpc/',
  '/xmlrpc/anything',
  '/xmlrpc%2Fx',
  '/xmlrpc//x',
  '/x/../xmlrpc/y',
  '/xmlrpc.',
  '/xmlrpc.ph',
  '/xmlrpc.php.',
  '/xmlrpc.php;x',
  '/xmlrpc.php%3Bx',
  '/xmlrpc.php%20',
  '/xmlrpc.php%3F',
  '/xmlrpc.php%00',
  '/xmlrpc.php%2500',
  '/%252e/xmlrpc.php',
  '/xmlrpc.php%zz',
  '/xmlrpc.php%4',
  '/xmlrpc.php%',
  '/xmlrpc.php\\',
  '/\\xmlrpc.php',
  '\\xmlrpc.php',
  '/..%5cxmlrpc.php',
  '/%c0%ae%c0%ae/xmlrpc.php',
  '/xmlrpc.php%0a',
  '/xmlrpc.php\u0001',
  '/xmlrpc.php\u007f',
  '/xmlrpc.php\u0000',
  'xmlrpc.php',
  'http://x/xmlrpc.php',
  'HTTP://x/xmlrpc.php',
  'https://x/xmlrpc.php',
  'http://x//xmlrpc.php',
  'http://x/./a/../xmlrpc.php',
  'http:/xmlrpc.php',
  'http:xmlrpc.php',
  'foo://x/xmlrpc.php',
  'x:/xmlrpc.php',
  'http://x',
  'http://x?/xmlrpc.php',
  // Backslashes are literal characters to Apache on Linux: never separators, in any form.
  '/foo\\..\\xmlrpc.php',
  '/a/b\\..\\..\\xmlrpc.php',
  '/foo\\../xmlrpc.php',
  '/foo/..\\xmlrpc.php',
  '/.\\xmlrpc.php',
  '/xmlrpc.php\\..',
  '/xmlrpc\\.php',
  '/%5cxmlrpc.php',
  '/xmlrpc.php%5C',
  '/foo%5c..%5cxmlrpc.php',
  // Absolute-form: the path is read as in origin-form, backslashes included.
  'http://x/foo\\..\\xmlrpc.php',
  'http://x/a/b\\..\\..\\xmlrpc.php',
  'http://x/..\\xmlrpc.php',
  'HTTPS://x/.\\xmlrpc.php',
  'http://x/\\xmlrpc.php',
  'http://x/xmlrpc.php\\',
  'http://x/%5c..%5cxmlrpc.php',
  'http://x:80/xmlrpc.php',
  'http://127.0.0.1/./xmlrpc.php',
  'http://x/xmlrpc%2ephp',
  'http://x/xmlrpc.php/anything',
  'http://x/xmlrpc.php%2F..',
  'http://x/foo%2F..%2Fxmlrpc.php',
  'http://x/a//../xmlrpc.php',
  'http://x/xmlrpc.php//..',
  'http://x/xmlrpc',
  'http://x/XMLRPC.PHP',
  'http://x/xmlrpc.php?x=1',
  'http://x/xmlrpc.php#f',
  '*',
];

/** Must not be matched, and Apache must not serve xmlrpc.php for them (checked on the default Apache, which has these files). */
const INNOCENT: readonly string[] = [
  '/',
  '/index.html',
  '/xmlrpc.php.bak',
  '/xmlrpc.phpx',
  '/blog/xmlrpc.php',
  '/xmlrpc.php;x',
  '/%252e/xmlrpc.php',
  '/xmlrpcx',
];
const INNOCENT_FILES: Record<string, string> = {
  'xmlrpc.php.bak': 'backup\n',
  'xmlrpc.phpx': 'phpx\n',
  'blog/xmlrpc.php': 'a blog site, not the marker\n',
  'xmlrpc.php;x': 'semicolon\n',
  '%2e/xmlrpc.php': 'literal %2e directory\n',
  xmlrpcx: 'x\n',
};

const MULTIVIEWS = 'Options +MultiViews\nMultiViewsMatch Any\n# PHP setups give .php a type or handler; without one MultiViews will not pick it.\nAddType application/x-httpd-php .php';

interface ApacheVariant {
  name: string;
  options: StartApacheOptions;
  /** Targets this Apache must serve xmlrpc.php for: proof that the vectors are live. */
  mustServe: readonly string[];
}

const VARIANTS: readonly ApacheVariant[] = [
  {
    name: 'default (MergeSlashes On, AllowEncodedSlashes Off)',
    options: { files: INNOCENT_FILES },
    mustServe: [
      '/xmlrpc.php/anything',
      '/xmlrpc.php/',
      '/./xmlrpc.php',
      '//xmlrpc.php',
      '/foo/../xmlrpc.php',
      '//x/../xmlrpc.php',
      '/xmlrpc%2ephp',
      '/%78mlrpc.php',
      'http://x/xmlrpc.php',
      'http:/xmlrpc.php',
      'http://x:80/xmlrpc.php',
      'http://127.0.0.1/./xmlrpc.php',
      'http://x/xmlrpc%2ephp',
      'http://x/xmlrpc.php/anything',
      'http://x/a//../xmlrpc.php',
    ],
  },
  {
    name: 'MultiViews + AllowEncodedSlashes On',
    options: { modules: ['negotiation'], directoryConfig: MULTIVIEWS, extraConfig: 'AllowEncodedSlashes On\nMergeSlashes On' },
    mustServe: ['/xmlrpc', '/xmlrpc/anything', '/xmlrpc%2Fx', '/xmlrpc.php%2F', '/%2Fxmlrpc.php', '/foo%2F..%2Fxmlrpc.php', '/%2e%2e%2fxmlrpc.php', 'http://x/foo%2F..%2Fxmlrpc.php', 'http://x/xmlrpc'],
  },
  {
    name: 'MergeSlashes Off + AllowEncodedSlashes On + MultiViews',
    options: { modules: ['negotiation'], directoryConfig: MULTIVIEWS, extraConfig: 'AllowEncodedSlashes On\nMergeSlashes Off' },
    mustServe: ['/xmlrpc.php//..', '/xmlrpc.php%2F%2F..', 'http://x/xmlrpc.php//..'],
  },
  {
    // mod_speling redirects (301) or lists choices (300); it never serves another spelling itself.
    name: 'mod_speling CheckSpelling On + AllowEncodedSlashes NoDecode',
    options: { modules: ['speling'], directoryConfig: 'CheckSpelling On', extraConfig: 'AllowEncodedSlashes NoDecode' },
    mustServe: ['/xmlrpc.php/anything'],
  },
];

/** Deterministic random targets built from the pieces bypasses are made of. */
function randomTargets(count: number, seed: number): string[] {
  const pieces = [
    'xmlrpc.php', 'xmlrpc', 'XMLRPC.PHP', '.', '..', '%2e', '%2e%2e', '.%2e', '%2E.', '', 'foo', 'index.html',
    'x%2F..', '%2f', '%2F..', '%2F%2F..', '%78mlrpc.php', 'xmlrpc%2ephp', 'xmlrpc.php;x', '%252e', '..%5c', 'xmlrpc.php%2F..',
  ];
  let state = seed >>> 0;
  const next = (n: number): number => {
    // mulberry32
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * n;
  };
  const out = new Set<string>();
  while (out.size < count) {
    const segments = Array.from({ length: 1 + Math.floor(next(5)) }, () => pieces[Math.floor(next(pieces.length))]!);
    let target = '/' + segments.join('/') + (next(4) < 1 ? '/' : '');
    if (next(8) < 1) target = 'http://x' + target;
    out.add(target);
  }
  return [...out];
}

const RANDOM = randomTargets(150, 20261125);

interface Outcome {
  target: string;
  status: number;
  servedXmlrpc: boolean;
  /** `%f` of the request's access-log line, or undefined if Apache logged none. */
  filename: string | undefined;
}

/** One request over a fresh socket, bytes exactly as given (latin1). */
function rawGet(port: number, target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no response to ${JSON.stringify(target)} within 10 s`)));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3}) /.exec(text);
      if (!status) reject(new Error(`no HTTP status line in the response to ${JSON.stringify(target)}: ${JSON.stringify(text.slice(0, 200))}`));
      else resolve({ status: Number(status[1]), body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
    socket.end(Buffer.from(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 'latin1'));
  });
}

async function probe(apache: ApacheHandle, targets: readonly string[]): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (const target of targets) {
    const before = (await apache.accessLog()).length;
    const { status, body } = await rawGet(apache.port, target);
    // Connection: close and the response has ended: Apache has written the line.
    const entry = (await apache.accessLog())[before];
    outcomes.push({ target, status, servedXmlrpc: status === 200 && body.includes(XMLRPC_MARKER), filename: entry?.filename });
  }
  return outcomes;
}

function verdict(target: string): string {
  const result = normalizeRequestPath(target);
  if (!result.ok) return 'refused';
  return XMLRPC.matches(result.views) ? 'blocked' : 'allowed';
}

describe('Apache path resolution vs normalizeRequestPath + exact /xmlrpc.php', () => {
  const results = new Map<string, Outcome[]>();
  let running: ApacheHandle | undefined;

  beforeAll(async () => {
    for (const variant of VARIANTS) {
      running = await startApache(variant.options);
      try {
        const targets = [...new Set([...VECTORS, ...INNOCENT, ...RANDOM])];
        results.set(variant.name, await probe(running, targets));
      } finally {
        await running.stop();
        running = undefined;
      }
    }
    if (process.env.PORTCULLIS_PRINT_PATH_TABLE) {
      for (const [name, outcomes] of results) {
        console.log(`\n== ${name}`);
        for (const o of outcomes.filter((x) => VECTORS.includes(x.target))) {
          console.log(`${JSON.stringify(o.target).padEnd(36)} ${o.status} ${o.servedXmlrpc ? 'XMLRPC' : '      '} proxy:${verdict(o.target)}`);
        }
      }
    }
  }, 180_000);

  afterAll(async () => {
    await running?.stop(); // only if beforeAll died between start and stop
  });

  it.each(VARIANTS.map((v) => v.name))('%s: every target that reaches xmlrpc.php is matched (no bypass)', (name) => {
    const bypasses = results
      .get(name)!
      .filter((o) => o.servedXmlrpc)
      .map((o) => ({ target: o.target, proxy: verdict(o.target), views: normalizeRequestPath(o.target) }))
      .filter((o) => o.proxy !== 'blocked');
    expect(bypasses).toEqual([]);
  });

  it.each(VARIANTS.map((v) => v.name))('%s: a target is refused only when Apache refuses it too', (name) => {
    const wrongRefusals = results
      .get(name)!
      .map((o) => ({ ...o, result: normalizeRequestPath(o.target) }))
      .filter((o) => !o.result.ok)
      .filter((o) => {
        const reason = (o.result as { reason: string }).reason;
        // Apache answers 400 for these, except an encoded NUL, which ap_unescape_url makes a 404.
        const apacheRefusal = reason === REQUEST_PATH_REASONS.encodedNul ? o.status === 404 : o.status === 400;
        return !apacheRefusal;
      })
      .map((o) => ({ target: o.target, apacheStatus: o.status, reason: (o.result as { reason: string }).reason }));
    expect(wrongRefusals).toEqual([]);
  });

  it.each(VARIANTS.map((v) => [v.name, v.mustServe] as const))('%s: the bypass vectors are live (Apache serves xmlrpc.php for them)', (name, mustServe) => {
    const outcomes = results.get(name)!;
    const notServed = mustServe.filter((t) => !outcomes.find((o) => o.target === t)?.servedXmlrpc);
    expect(notServed).toEqual([]);
    // And the proxy blocks each of them.
    expect(mustServe.filter((t) => verdict(t) !== 'blocked')).toEqual([]);
  });

  it('a backslash is a literal character: no spelling with one reaches xmlrpc.php, in any form or configuration', () => {
    const backslashed = VECTORS.filter((t) => t.includes('\\') || /%5c/i.test(t));
    expect(backslashed.length).toBeGreaterThanOrEqual(20);
    for (const [name, outcomes] of results) {
      expect(outcomes.filter((o) => backslashed.includes(o.target) && o.servedXmlrpc).map((o) => o.target), name).toEqual([]);
    }
  });

  it('reaches xmlrpc.php through many distinct spellings overall', () => {
    const served = new Set<string>();
    for (const outcomes of results.values()) for (const o of outcomes) if (o.servedXmlrpc) served.add(o.target);
    expect(served.size).toBeGreaterThanOrEqual(40);
  });

  it('the access log agrees: a response with the marker was served from xmlrpc.php', () => {
    for (const outcomes of results.values()) {
      for (const o of outcomes.filter((x) => x.servedXmlrpc)) {
        expect(o.filename, o.target).toMatch(/\/htdocs\/xmlrpc\.php$/);
      }
    }
  });

  it('innocent paths are neither served as xmlrpc.php nor matched', () => {
    const outcomes = results.get(VARIANTS[0]!.name)!;
    for (const target of INNOCENT) {
      const outcome = outcomes.find((o) => o.target === target)!;
      expect({ target, served: outcome.servedXmlrpc, proxy: verdict(target) }).toEqual({ target, served: false, proxy: 'allowed' });
    }
    // The files exist, so Apache really serves something else for them.
    for (const target of ['/xmlrpc.php.bak', '/xmlrpc.phpx', '/blog/xmlrpc.php', '/xmlrpc.php;x', '/%252e/xmlrpc.php']) {
      expect(outcomes.find((o) => o.target === target)!.status, target).toBe(200);
    }
  });

  it('mod_speling redirects other spellings instead of serving them', () => {
    const outcomes = results.get(VARIANTS[3]!.name)!;
    expect(outcomes.find((o) => o.target === '/XMLRPC.PHP')!.status).toBe(301);
    expect(outcomes.find((o) => o.target === '/xmlrpc.php.')!.status).toBe(301);
  });
});
