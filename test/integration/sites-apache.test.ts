import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApacheHandle, AccessLogEntry } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { rawRequest, request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

/*
 * Per-site policy end to end: portcullis in front of a real Apache with
 * name-based vhosts (blog.test first, so it serves unknown names, and
 * jetpack.test), and a second Apache for the site with its own upstream
 * (phab.test). Which vhost served a request is read from Apache's own log
 * (%v), never inferred.
 */

const policy = (phabUrl: string, jetpackBurst = 3, extra = '') => `
concurrency: { upstream_max: 4, per_client_max: 4, queue_max: 16, per_client_queue_max: 16, queue_timeout: 500ms }
escalation: { strikes: 10000 }
limits:
  - name: read
    methods: [GET]
    per_ip: { rate: 1/min, burst: 4 }
block:
  - path: /xmlrpc.php
  - name: secret
    path: /secret.txt
${extra}sites:
  - name: blog
    hosts: [blog.test, "*.blog.test"]
    default: true
    disable: [secret]
  - name: jetpack
    hosts: [jetpack.test, bücher.test]
    disable: [/xmlrpc.php]
    limits:
      - name: xmlrpc
        methods: [POST]
        paths: [/xmlrpc.php]
        per_ip: { rate: 1/min, burst: ${jetpackBurst} }
      - name: read
        methods: [GET]
        per_ip: { rate: 1/min, burst: 8 }
  - name: phab
    hosts: [phab.test]
    upstream: "${phabUrl}"
    concurrency: { upstream_max: 2, queue_timeout: 500ms }
`;

/** The site each Apache vhost is in the policy. */
const SITE_OF_VHOST: Readonly<Record<string, string>> = { 'blog.test': 'blog', 'jetpack.test': 'jetpack', 'phab.test': 'phab' };

describe('several sites in front of a real Apache with name-based vhosts', () => {
  let apache: ApacheHandle;
  let phabApache: ApacheHandle;
  let proxy: TestProxy;

  beforeAll(async () => {
    apache = await startApacheWithScripts({
      files: { 'secret.txt': 'secret\n' },
      virtualHosts: [
        { serverName: 'blog.test', aliases: ['*.blog.test'] },
        { serverName: 'jetpack.test', aliases: ['xn--bcher-kva.test'] },
      ],
    });
    phabApache = await startApacheWithScripts({ virtualHosts: [{ serverName: 'phab.test' }] });
    proxy = await startTestProxy(apache.url, policy(phabApache.url));
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
    await phabApache?.stop();
  });

  const send = (host: string, path: string, localAddress: string, method = 'GET') => request(proxy.url, { method, path, headers: { host }, localAddress });
  /** Apache's log lines whose request line carries `marker`. */
  const linesWith = async (server: ApacheHandle, marker: string): Promise<AccessLogEntry[]> => (await server.accessLog()).filter((line) => line.requestLine.includes(marker));
  /** portcullis_site_requests_total by `site decision`, summed over rules. */
  const siteCounts = async (): Promise<Map<string, number>> => {
    const body = (await request(proxy.adminUrl, { path: '/metrics' })).body;
    const counts = new Map<string, number>();
    for (const match of body.matchAll(/^portcullis_site_requests_total\{site="([^"]*)",decision="([^"]+)",rule="[^"]*"\} (\d+)$/gm)) {
      const key = `${match[1]} ${match[2]}`;
      counts.set(key, (counts.get(key) ?? 0) + Number(match[3]));
    }
    return counts;
  };

  it('blocks xmlrpc.php on one site and limits it on the Jetpack site, which Apache serves', async () => {
    expect((await send('blog.test', '/xmlrpc.php?xb', '127.40.1.1', 'POST')).status).toBe(403);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await send('jetpack.test', `/xmlrpc.php?xj${i}`, '127.40.1.2', 'POST')).status);
    // The first three reach Apache (jetpack.test's vhost serves the stand-in); the fourth never does.
    expect(statuses).toEqual([200, 200, 200, 429]);
    await apache.waitForAccessLog((entries) => entries.filter((line) => line.requestLine.includes('?xj')).length >= 3);
    expect((await linesWith(apache, '?xj')).map((line) => line.vhost)).toEqual(['jetpack.test', 'jetpack.test', 'jetpack.test']);
    expect(await linesWith(apache, '?xb')).toEqual([]);
  });

  it('lets a site rule replace the global one of the same name, on that site only', async () => {
    const blog: number[] = [];
    const jetpack: number[] = [];
    for (let i = 0; i < 9; i++) {
      blog.push((await send('blog.test', `/index.html?rb${i}`, '127.40.2.1')).status);
      jetpack.push((await send('jetpack.test', `/index.html?rj${i}`, '127.40.2.2')).status);
    }
    expect(blog).toEqual([200, 200, 200, 200, 429, 429, 429, 429, 429]);
    expect(jetpack).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 429]);
  });

  it('switches a global rule off on the site that disables it', async () => {
    const onBlog = await send('www.blog.test', '/secret.txt?db', '127.40.3.1');
    expect([onBlog.status, onBlog.body]).toEqual([200, 'secret\n']);
    expect((await send('jetpack.test', '/secret.txt?dj', '127.40.3.2')).status).toBe(403);
    await apache.waitForAccessLog((entries) => entries.some((line) => line.requestLine.includes('?db')));
    expect((await linesWith(apache, '?db')).map((line) => line.vhost)).toEqual(['blog.test']);
    expect(await linesWith(apache, '?dj')).toEqual([]);
  });

  it('chooses, for every spelling of the host, the site Apache serves, or refuses it unforwarded', async () => {
    const port = apache.port;
    const hostSpellings = [
      'jetpack.test', 'JetPack.TEST', 'jetpack.test:80', `jetpack.test:${port}`, 'jetpack.test.', 'JETPACK.test.:80',
      'www.blog.test', 'a.b.blog.test', 'BLOG.TEST.', 'blog.test', 'unknown.test', 'test', '127.0.0.1', `127.0.0.1:${port}`,
      'xn--bcher-kva.test', 'XN--BCHER-KVA.TEST:80', 'www.jetpack.test', 'jetpack.test.blog.test',
      // Spellings Apache refuses (400): portcullis must refuse them too, and never forward them.
      'jetpack.test..', '.jetpack.test', 'jet_pack.test', 'a_b.blog.test', 'bücher.test', 'jetpack..test', 'jetpack.test:', 'jetpack.test:99999', 'jet pack.test', 'jetpack.test, blog.test', 'jetpack.test/x',
    ];
    const cases = [
      ...hostSpellings.map((host) => ({ label: `Host: ${host}`, head: (target: string) => `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n` })),
      { label: 'absolute-form jetpack, Host blog', head: (target: string) => `GET http://jetpack.test${target} HTTP/1.1\r\nHost: blog.test\r\n` },
      { label: 'absolute-form JETPACK:80 uppercase scheme, Host blog', head: (target: string) => `GET HTTP://JETPACK.TEST:80${target} HTTP/1.1\r\nHost: blog.test\r\n` },
      { label: 'absolute-form blog, Host jetpack', head: (target: string) => `GET http://blog.test${target} HTTP/1.1\r\nHost: jetpack.test\r\n` },
      { label: 'two Host headers', head: (target: string) => `GET ${target} HTTP/1.1\r\nHost: jetpack.test\r\nHost: blog.test\r\n` },
      { label: 'HTTP/1.0 without Host', head: (target: string) => `GET ${target} HTTP/1.0\r\n` },
    ];
    const outcomes: string[] = [];
    for (const [index, { label, head }] of cases.entries()) {
      const marker = `spell${index}x`;
      const target = `/index.html?${marker}`;
      const before = await siteCounts();
      const answer = await rawRequest(proxy.port, `${head(target)}Connection: close\r\n\r\n`, 5_000, `127.41.${index}.1`);
      const after = await siteCounts();
      const chosen = [...after].filter(([key, count]) => count > (before.get(key) ?? 0)).map(([key]) => key);
      expect(chosen, label).toHaveLength(1);
      const [site, decision] = (chosen[0] as string).split(' ') as [string, string];
      if (answer.status === 400) {
        expect(decision, label).toBe('rejected');
        expect(await linesWith(apache, marker), label).toEqual([]);
        const direct = await rawRequest(port, `${head(target)}Connection: close\r\n\r\n`);
        const served = direct.status === 400 ? '' : ` (Apache: ${direct.status} ${(await linesWith(apache, marker)).map((entry) => entry.vhost).join()})`;
        outcomes.push(`${label} -> 400${served}`);
        continue;
      }
      expect([answer.status, decision], label).toEqual([200, 'allowed']);
      const [line] = await apache.waitForAccessLog((entries) => entries.some((entry) => entry.requestLine.includes(marker))).then((entries) => entries.filter((entry) => entry.requestLine.includes(marker)));
      expect(SITE_OF_VHOST[line?.vhost ?? ''], `${label}: Apache served ${line?.vhost}`).toBe(site);
      outcomes.push(`${label} -> ${site}`);
    }
    // The table itself, so a change in what is chosen is seen in review. The only spelling
    // portcullis refuses that Apache serves is a leading dot (from its default vhost).
    expect(outcomes.map((outcome) => outcome.replaceAll(String(port), 'PORT'))).toEqual([
      'Host: jetpack.test -> jetpack',
      'Host: JetPack.TEST -> jetpack',
      'Host: jetpack.test:80 -> jetpack',
      'Host: jetpack.test:PORT -> jetpack',
      'Host: jetpack.test. -> jetpack',
      'Host: JETPACK.test.:80 -> jetpack',
      'Host: www.blog.test -> blog',
      'Host: a.b.blog.test -> blog',
      'Host: BLOG.TEST. -> blog',
      'Host: blog.test -> blog',
      'Host: unknown.test -> blog',
      'Host: test -> blog',
      'Host: 127.0.0.1 -> blog',
      'Host: 127.0.0.1:PORT -> blog',
      'Host: xn--bcher-kva.test -> jetpack',
      'Host: XN--BCHER-KVA.TEST:80 -> jetpack',
      'Host: www.jetpack.test -> blog',
      'Host: jetpack.test.blog.test -> blog',
      'Host: jetpack.test.. -> 400',
      'Host: .jetpack.test -> 400 (Apache: 200 blog.test)',
      'Host: jet_pack.test -> blog',
      'Host: a_b.blog.test -> blog',
      'Host: bücher.test -> 400',
      'Host: jetpack..test -> 400',
      'Host: jetpack.test: -> 400',
      'Host: jetpack.test:99999 -> 400',
      'Host: jet pack.test -> 400',
      'Host: jetpack.test, blog.test -> 400',
      'Host: jetpack.test/x -> 400',
      'absolute-form jetpack, Host blog -> jetpack',
      'absolute-form JETPACK:80 uppercase scheme, Host blog -> jetpack',
      'absolute-form blog, Host jetpack -> blog',
      'two Host headers -> 400',
      'HTTP/1.0 without Host -> blog',
    ]);
  });

  it('isolates a flood on one site from the visitors of the other with per-site upstream caps', async () => {
    // Six slow requests on blog: four fill the default cap, two wait and get 503.
    const flood = Array.from({ length: 6 }, (_, i) => send('blog.test', `/slow.cgi?1&f${i}`, `127.42.1.${i + 1}`));
    await new Promise((resolve) => setTimeout(resolve, 150));
    const startedMs = Date.now();
    const visitor = await send('phab.test', '/index.html?pv', '127.42.2.1');
    expect(visitor.status).toBe(200);
    expect(Date.now() - startedMs).toBeLessThan(400);
    expect((await flood.reduce<Promise<number[]>>(async (all, next) => [...(await all), (await next).status], Promise.resolve([]))).sort()).toEqual([200, 200, 200, 200, 503, 503]);
    await phabApache.waitForAccessLog((entries) => entries.some((line) => line.requestLine.includes('?pv')));
    expect((await linesWith(phabApache, '?pv')).map((line) => line.vhost)).toEqual(['phab.test']);

    // And the other way round: phab's cap of two is full, blog's visitors do not wait.
    const phabFlood = Array.from({ length: 4 }, (_, i) => send('phab.test', `/slow.cgi?1&p${i}`, `127.42.3.${i + 1}`));
    await new Promise((resolve) => setTimeout(resolve, 150));
    const blogStartedMs = Date.now();
    expect((await send('blog.test', '/index.html?bv', '127.42.4.1')).status).toBe(200);
    expect(Date.now() - blogStartedMs).toBeLessThan(400);
    expect((await Promise.all(phabFlood)).map((answer) => answer.status).sort()).toEqual([200, 200, 503, 503]);
  });

  it('keeps each site\'s bucket levels across a reload; a site rule that changed starts full', async () => {
    const ip = '127.43.1.1';
    for (let i = 0; i < 3; i++) expect((await send('jetpack.test', `/xmlrpc.php?r${i}`, ip, 'POST')).status).toBe(200);
    expect((await send('jetpack.test', '/xmlrpc.php?r3', ip, 'POST')).status).toBe(429);
    for (let i = 0; i < 4; i++) await send('blog.test', `/index.html?rl${i}`, ip);
    await proxy.writePolicy(policy(phabApache.url, 3, '  - path: /unrelated.txt\n'));
    expect((await proxy.running.reload('test')).ok).toBe(true);
    expect((await send('jetpack.test', '/xmlrpc.php?r4', ip, 'POST')).status).toBe(429);
    expect((await send('blog.test', '/index.html?rl4', ip)).status).toBe(429);
    await proxy.writePolicy(policy(phabApache.url, 4));
    expect((await proxy.running.reload('test')).ok).toBe(true);
    expect((await send('jetpack.test', '/xmlrpc.php?r5', ip, 'POST')).status).toBe(200);
    expect((await send('blog.test', '/index.html?rl5', ip)).status).toBe(429);
  });
});
