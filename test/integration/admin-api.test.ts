import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { clientAgent, request, type TestResponse } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

const TOKEN = 'test-admin-token-0123456789abcdef';

const POLICY = `
clients:
  allow: ["127.0.0.77"]
limits:
  - name: read
    methods: [GET]
    per_ip: { rate: 1/min, burst: 3 }
    per_prefix: { rate: 1/min, burst: 50 }
block:
  - path: /xmlrpc.php
    strikes: 1
# tarpit 0s: these tests check that a ban is answered, not how slowly.
escalation: { strikes: 100, window: 60s, ban: 10m, tarpit: 0s }
`;

/** Calls the admin API; `token` adds the Authorization header. */
function admin(proxy: TestProxy, method: string, path: string, options: { token?: string; body?: unknown; rawBody?: string } = {}): Promise<TestResponse> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  return request(proxy.adminUrl, { method, path, headers, ...(body === undefined ? {} : { body }) });
}

const json = (response: TestResponse) => JSON.parse(response.body) as Record<string, any>;

describe('admin API', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy;

  beforeAll(async () => {
    apache = await startApacheWithScripts();
    proxy = await startTestProxy(apache.url, POLICY, { adminToken: TOKEN });
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
  });

  it('answers /healthz, and /readyz while the upstream and the backend work', async () => {
    expect(json(await admin(proxy, 'GET', '/healthz'))).toEqual({ status: 'ok' });
    const ready = await admin(proxy, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(json(ready)).toMatchObject({ ready: true, checks: { upstream: { ok: true }, firewall: { ok: true } } });
  });

  it('refuses changes without the right bearer token, and says how to give one', async () => {
    const body = { ip: '127.0.0.40', duration: '1h' };
    const none = await admin(proxy, 'POST', '/bans', { body });
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toContain('Bearer');
    expect(json(none).error).toMatchObject({ code: 'PC_ERR_ADMIN_REQUEST', message: expect.stringContaining('Authorization: Bearer') });
    const wrong = await admin(proxy, 'POST', '/bans', { body, token: `${TOKEN}x` });
    expect(wrong.status).toBe(401);
    expect(json(wrong).error.message).toContain('wrong');
    expect(json(await admin(proxy, 'GET', '/bans')).bans).toEqual([]);
    expect((await admin(proxy, 'DELETE', '/bans/127.0.0.40')).status).toBe(401);
  });

  it('answers bad input with a 4xx JSON error naming the problem', async () => {
    const cases: [string, string, { body?: unknown; rawBody?: string }, number, string][] = [
      ['POST', '/bans', { rawBody: '{"ip": ' }, 400, 'not valid JSON'],
      ['POST', '/bans', { body: ['127.0.0.1'] }, 400, 'JSON object'],
      ['POST', '/bans', { body: { ip: 'not-an-ip' } }, 400, 'not an IP address'],
      ['POST', '/bans', { body: { ip: '127.0.0.1', duration: '100y' } }, 400, '"duration"'],
      ['POST', '/bans', { body: { ip: '127.0.0.1', duration: 3600 } }, 400, '"duration"'],
      ['POST', '/bans', { body: { ip: '127.0.0.1', duraton: '1h' } }, 400, 'unknown field(s) "duraton"'],
      ['POST', '/bans', { body: { ip: '127.0.0.0/33' } }, 400, 'prefix length'],
      ['POST', '/bans', { body: { ip: '10.0.0.0/4' } }, 400, 'host bits'],
      ['POST', '/bans', { body: { ip: '0.0.0.0/0' } }, 400, 'wider than /8'],
      ['POST', '/bans', { body: { ip: '127.0.0.77' } }, 409, 'never banned'],
      ['DELETE', '/bans/198.51.100.9', {}, 404, 'is not banned'],
      ['DELETE', '/bans/1.2.3.4%zz', {}, 400, 'percent-encoding'],
      ['GET', '/nope', {}, 404, 'no such endpoint'],
      ['PUT', '/bans', {}, 405, 'PUT is not allowed'],
      ['GET', '/explain/banana', {}, 400, 'not an IP address'],
    ];
    for (const [method, path, options, status, message] of cases) {
      const response = await admin(proxy, method, path, { ...options, token: TOKEN });
      expect({ method, path, status: response.status }).toEqual({ method, path, status });
      expect(json(response).error.message).toContain(message);
    }
    // The proxy is unharmed by all that.
    expect(json(await admin(proxy, 'GET', '/healthz')).status).toBe('ok');
  });

  it('bans and unbans by hand, and the proxy follows at once', async () => {
    const client = { localAddress: '127.0.0.41' };
    expect((await request(proxy.url, { path: '/index.html', ...client })).status).toBe(200);

    const added = await admin(proxy, 'POST', '/bans', { token: TOKEN, body: { ip: '127.0.0.41', duration: '1h', reason: 'seen in the log' } });
    expect(added.status).toBe(201);
    expect(json(added).ban).toMatchObject({ target: '127.0.0.41', scope: 'ip', source: 'manual', reason: 'seen in the log', remaining_seconds: 3600 });
    expect((await request(proxy.url, { path: '/index.html', ...client })).status).toBe(403);
    expect(json(await admin(proxy, 'GET', '/bans')).bans.map((ban: { target: string }) => ban.target)).toEqual(['127.0.0.41']);

    const lifted = await admin(proxy, 'DELETE', '/bans/127.0.0.41', { token: TOKEN });
    expect(lifted.status).toBe(200);
    expect((await request(proxy.url, { path: '/index.html', ...client })).status).toBe(200);
    expect(json(await admin(proxy, 'GET', '/bans')).bans).toEqual([]);
  });

  it('bans a network given as CIDR (slash percent-encoded or not)', async () => {
    const added = await admin(proxy, 'POST', '/bans', { token: TOKEN, body: { ip: '127.0.42.0/24', duration: '10m' } });
    expect(json(added).ban).toMatchObject({ target: '127.0.42.0/24', scope: 'prefix' });
    expect((await request(proxy.url, { path: '/index.html', localAddress: '127.0.42.9' })).status).toBe(403);
    expect((await admin(proxy, 'DELETE', '/bans/127.0.42.0%2F24', { token: TOKEN })).status).toBe(200);
    expect((await request(proxy.url, { path: '/index.html', localAddress: '127.0.42.9' })).status).toBe(200);
  });

  it('explains a client: its bucket levels, strikes and what its next ban would be', async () => {
    const agent = clientAgent('127.0.43.5');
    for (let i = 0; i < 2; i++) await request(proxy.url, { path: '/index.html', agent });
    await request(proxy.url, { path: '/xmlrpc.php', agent });
    const report = json(await admin(proxy, 'GET', '/explain/127.0.43.5'));
    expect(report.client).toEqual({ ip: '127.0.43.5', prefix: '127.0.43.0/24' });
    const bucket = (scope: string) => report.buckets.find((entry: { rule: string; scope: string }) => entry.rule === 'read' && entry.scope === scope);
    expect(bucket('ip')).toMatchObject({ key: '127.0.43.5', burst: 3, tracked: true });
    expect(bucket('ip').tokens).toBeGreaterThanOrEqual(1);
    expect(bucket('ip').tokens).toBeLessThan(1.1);
    expect(bucket('prefix')).toMatchObject({ key: '127.0.43.0/24', burst: 50 });
    expect(report.strikes).toMatchObject({ threshold: 100, window_seconds: 60 });
    expect(report.strikes.count).toBeCloseTo(1, 1);
    expect(report.history[0]).toMatchObject({ target: '127.0.43.5', past_bans: 0, next_ban: { nth: 1, duration_seconds: 600 } });
    agent.destroy();
  });

  it('counts real traffic in /metrics by decision and rule, and in /status', async () => {
    const scrape = async () => (await admin(proxy, 'GET', '/metrics')).body;
    const sample = (text: string, series: string): number => {
      const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
      return line === undefined ? 0 : Number(line.split(' ')[1]);
    };
    const before = await scrape();
    const agent = clientAgent('127.0.44.5');
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await request(proxy.url, { path: '/index.html', agent })).status);
    statuses.push((await request(proxy.url, { path: '/xmlrpc.php', agent })).status);
    agent.destroy();
    expect(statuses).toEqual([200, 200, 200, 429, 429, 403]);

    const after = await scrape();
    const delta = (series: string) => sample(after, series) - sample(before, series);
    expect(delta('portcullis_requests_total{decision="allowed",rule=""}')).toBe(3);
    expect(delta('portcullis_requests_total{decision="limited",rule="read"}')).toBe(2);
    expect(delta('portcullis_requests_total{decision="blocked",rule="/xmlrpc.php"}')).toBe(1);
    expect(delta('portcullis_strikes_total{rule="read"}')).toBe(2);
    expect(delta('portcullis_upstream_request_duration_seconds_count')).toBe(3);
    expect(sample(after, 'portcullis_tracked_clients{table="ip"}')).toBeGreaterThanOrEqual(1);
    expect(sample(after, 'portcullis_upstream_in_flight')).toBe(0);
    expect(after).toContain('process_cpu_user_seconds_total');

    const status = json(await admin(proxy, 'GET', '/status'));
    expect(status.top_refused_addresses[0]).toMatchObject({ key: '127.0.44.5', refused: 3 });
    expect(status.top_refused_prefixes.map((entry: { key: string }) => entry.key)).toContain('127.0.44.0/24');
    expect(status.upstream).toMatchObject({ in_flight: 0, max: 32 });
    expect(status.bans).toMatchObject({ active: 0, firewall: { active: 'none', ok: true } });
    // The first refusal of a client in a window is logged, not each one.
    const refusalLogs = proxy.logs.filter((line) => line.client === '127.0.44.5' && line.decision !== undefined);
    expect(refusalLogs).toHaveLength(1);
    expect(refusalLogs[0]).toMatchObject({ decision: 'limited', rule: 'read', target: '/index.html' });
  });
});

describe('admin API without a token', () => {
  it('refuses every change with a message saying how to enable them, and /readyz says when the upstream is down', async () => {
    const proxy = await startTestProxy('http://127.0.0.1:9', '');
    try {
      const response = await request(proxy.adminUrl, { method: 'POST', path: '/bans', body: '{"ip":"127.0.0.9"}', headers: { authorization: 'Bearer anything-at-all-long' } });
      expect(response.status).toBe(403);
      expect(JSON.parse(response.body).error.message).toContain('admin.token_file');
      const ready = await request(proxy.adminUrl, { path: '/readyz' });
      expect(ready.status).toBe(503);
      expect(JSON.parse(ready.body)).toMatchObject({ ready: false, checks: { upstream: { ok: false } } });
    } finally {
      await proxy.close();
    }
  });
});
