import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { clientAgent, request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

// Small numbers so a handful of requests earn a ban; a long ban so nothing expires mid-test;
// no tarpit, so banned answers come at once (the tarpit has its own tests below).
const POLICY = `
block:
  - path: /xmlrpc.php
    strikes: 5
limits:
  - name: read
    methods: [GET]
    per_ip: { rate: 1/min, burst: 3 }
escalation: { strikes: 10, window: 60s, ban: 10m, prefix_after: 2, tarpit: 0s }
`;

describe('proxy-level bans in front of a real Apache', () => {
  let apache: ApacheHandle;
  let stateDir: string;
  let proxy: TestProxy;

  beforeAll(async () => {
    apache = await startApacheWithScripts();
    stateDir = await mkdtemp(join(tmpdir(), 'portcullis-bans-'));
    proxy = await startTestProxy(apache.url, POLICY, { stateDir });
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
    await rm(stateDir, { recursive: true, force: true });
  });

  /** POSTs to /xmlrpc.php over one keep-alive connection until the connection is cut; returns the statuses seen. */
  async function flood(localAddress: string, max = 20): Promise<number[]> {
    const agent = clientAgent(localAddress);
    const statuses: number[] = [];
    try {
      for (let i = 0; i < max; i++) {
        try {
          statuses.push((await request(proxy.url, { method: 'POST', path: '/xmlrpc.php', body: '<x/>', agent })).status);
        } catch {
          statuses.push(0);
          break;
        }
      }
    } finally {
      agent.destroy();
    }
    return statuses;
  }

  it('bans a flooder: its keep-alive connection is cut and it is refused before Apache from then on', async () => {
    const statuses = await flood('127.50.1.1');
    // Two blocked requests (5 strikes each) earn the ban; the connection that carried them is closed.
    expect(statuses).toEqual([403, 0]);
    const after = await request(proxy.url, { path: '/index.html', localAddress: '127.50.1.1' });
    expect(after.status).toBe(403);
    expect(Number(after.headers['retry-after'])).toBeGreaterThan(500);
    expect(after.headers['connection']).toBe('close');
    expect(proxy.logs.some((line) => line['msg'] === 'banned' && line['target'] === '127.50.1.1')).toBe(true);
    expect((await apache.accessLog()).filter((line) => line.urlPath === '/index.html' && line.remoteAddr === '127.50.1.1')).toEqual([]);
  });

  it('bans the /24 when a second address of it is banned: a third address never gets an answer from Apache', async () => {
    await flood('127.50.1.2');
    const neighbour = await request(proxy.url, { path: '/index.html?neighbour', localAddress: '127.50.1.3' });
    expect(neighbour.status).toBe(403);
    expect(proxy.logs.some((line) => line['msg'] === 'banned' && line['target'] === '127.50.1.0/24' && line['scope'] === 'prefix')).toBe(true);
    const other = await request(proxy.url, { path: '/index.html?other', localAddress: '127.50.2.1' });
    expect(other.status).toBe(200);
    const log = await apache.waitForAccessLog((entries) => entries.some((line) => line.requestLine.includes('?other')));
    expect(log.some((line) => line.requestLine.includes('?neighbour'))).toBe(false);
  });

  it('counts rate-limit refusals as strikes too', async () => {
    const agent = clientAgent('127.50.3.1');
    const statuses: number[] = [];
    try {
      for (let i = 0; i < 30 && statuses.at(-1) !== 0; i++) {
        statuses.push(await request(proxy.url, { path: '/index.html', agent }).then((response) => response.status, () => 0));
      }
    } finally {
      agent.destroy();
    }
    // 3 admitted, 10 refused (the 10th refusal earns the ban and cuts the connection).
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
    expect(statuses.filter((status) => status === 429)).toHaveLength(9);
    expect(statuses.at(-1)).toBe(0);
  });

  it('keeps its bans across a restart', async () => {
    await proxy.close();
    proxy = await startTestProxy(apache.url, POLICY, { stateDir });
    expect((await request(proxy.url, { path: '/index.html', localAddress: '127.50.1.1' })).status).toBe(403);
    expect((await request(proxy.url, { path: '/index.html', localAddress: '127.50.1.99' })).status).toBe(403);
    expect((await request(proxy.url, { path: '/index.html', localAddress: '127.50.2.1' })).status).toBe(200);
    expect(proxy.logs.some((line) => line['msg'] === 'restored active bans from the state file' && line['bans'] === 4)).toBe(true);
  });

  it('counts bans in its metrics, by scope, never by address', async () => {
    const text = await proxy.running.registry.metrics();
    expect(text).toMatch(/^portcullis_bans_active\{scope="ip"\} 3$/m);
    expect(text).toMatch(/^portcullis_bans_active\{scope="prefix"\} 1$/m);
    expect(text).not.toContain('127.50.');
  });
});

describe('dry run', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy;

  beforeAll(async () => {
    apache = await startApacheWithScripts();
    proxy = await startTestProxy(apache.url, POLICY.replace('tarpit: 0s }', 'tarpit: 0s, dry_run: true }'));
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
  });

  it('logs the bans it would make and enforces none', async () => {
    const agent = new http.Agent({ keepAlive: true, localAddress: '127.51.1.1' } as http.AgentOptions);
    try {
      for (let i = 0; i < 6; i++) expect((await request(proxy.url, { method: 'POST', path: '/xmlrpc.php', body: 'x', agent })).status).toBe(403);
      expect((await request(proxy.url, { path: '/index.html', agent })).status).toBe(200);
    } finally {
      agent.destroy();
    }
    expect(proxy.logs.some((line) => line['msg'] === 'would ban (dry run)' && line['target'] === '127.51.1.1')).toBe(true);
  });
});

describe('tarpit: a banned client waits for its answer', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy;
  // Long enough that a busy machine answers the other requests well within it.
  const TARPIT_MS = 1_500;

  beforeAll(async () => {
    apache = await startApacheWithScripts();
    proxy = await startTestProxy(apache.url, POLICY.replace('tarpit: 0s }', `tarpit: ${TARPIT_MS}ms, tarpit_max: 2 }`));
    // Two blocked POSTs (5 strikes each) ban 127.53.1.1; one more address of the /24 would ban the prefix.
    for (let i = 0; i < 2; i++) await request(proxy.url, { method: 'POST', path: '/xmlrpc.php', body: 'x', localAddress: '127.53.1.1' }).catch(() => undefined);
    expect(proxy.logs.some((line) => line['msg'] === 'banned' && line['target'] === '127.53.1.1')).toBe(true);
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
  });

  async function heldNow(): Promise<number> {
    const text = await proxy.running.registry.metrics();
    return Number(/^portcullis_tarpit_connections (\d+)$/m.exec(text)?.[1]);
  }

  /** A request that records when it was answered; `hangUp()` drops it unanswered. */
  function timedRequest(localAddress: string): { answered: Promise<{ status: number; connection: string | undefined; ms: number }>; hangUp(): void } {
    const url = new URL(proxy.url);
    const started = performance.now();
    const req = http.get({ host: url.hostname, port: url.port, path: '/index.html', localAddress, agent: false });
    const answered = new Promise<{ status: number; connection: string | undefined; ms: number }>((resolve, reject) => {
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers['connection'], ms: performance.now() - started }));
      });
      req.on('error', reject);
    });
    return { answered, hangUp: () => req.destroy() };
  }

  it('holds the answer for escalation.tarpit, then says 403 and closes; other clients are answered meanwhile', async () => {
    const banned = timedRequest('127.53.1.1');
    const visitor = timedRequest('127.53.9.1');
    const visitorAnswer = await visitor.answered;
    expect(visitorAnswer.status).toBe(200);
    expect(await heldNow()).toBe(1);
    const bannedAnswer = await banned.answered;
    expect(bannedAnswer.status).toBe(403);
    expect(bannedAnswer.connection).toBe('close');
    expect(bannedAnswer.ms).toBeGreaterThanOrEqual(TARPIT_MS - 20);
    expect(visitorAnswer.ms).toBeLessThan(bannedAnswer.ms);
    expect(await heldNow()).toBe(0);
  });

  it('holds at most tarpit_max connections: past the cap a banned client is answered at once', async () => {
    const held = [timedRequest('127.53.1.1'), timedRequest('127.53.1.1')];
    await expect.poll(heldNow, { timeout: 2_000 }).toBe(2);
    const third = await timedRequest('127.53.1.1').answered;
    expect(third.status).toBe(403);
    // Answered while the two held ones are still waiting.
    expect(await heldNow()).toBe(2);
    for (const request of held) expect((await request.answered).status).toBe(403);
  });

  /** Writes `text` on a new connection from `localAddress`; resolves with all it got back once the proxy closes it. */
  function rawExchange(localAddress: string, text: string): Promise<string> {
    const url = new URL(proxy.url);
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: url.hostname, port: Number(url.port), localAddress }, () => socket.write(text));
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      socket.on('error', reject);
      socket.setTimeout(5_000, () => socket.destroy(new Error('no close within 5 s')));
    });
  }

  it('holds a connection once however many requests are pipelined on it, and answers one 403 before closing', async () => {
    const request = 'GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n';
    const exchange = rawExchange('127.53.1.1', request.repeat(5));
    await expect.poll(heldNow, { timeout: 2_000 }).toBe(1);
    const answer = await exchange;
    expect(answer.match(/^HTTP\/1\.1 403 /gm)).toHaveLength(1);
    expect(answer).toMatch(/^connection: close$/im);
    expect(await heldNow()).toBe(0);
  });

  it('holds an Upgrade request from a banned client too', async () => {
    const exchange = rawExchange('127.53.1.1', 'GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    await expect.poll(heldNow, { timeout: 2_000 }).toBe(1);
    expect(await exchange).toMatch(/^HTTP\/1\.1 403 /);
    expect(await heldNow()).toBe(0);
  });

  it('a banned client that hangs up frees its place at once', async () => {
    const held = timedRequest('127.53.1.1');
    held.answered.catch(() => undefined);
    await expect.poll(heldNow, { timeout: 2_000 }).toBe(1);
    held.hangUp();
    await expect.poll(heldNow, { timeout: TARPIT_MS / 2 }).toBe(0);
  });
});
