import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { clientAgent, request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';
import { promtoolPath } from '../support/promtool.js';

const POLICY = `
limits:
  - name: read
    methods: [GET]
    per_ip: { rate: 1/min, burst: 2 }
  - name: read-shadow
    methods: [GET]
    per_ip: { rate: 1/min, burst: 1 }
    mode: shadow
block:
  - path: /xmlrpc.php
    strikes: 5
escalation: { strikes: 10, window: 60s, ban: 10m }
`;

/** Feeds `input` to `promtool check metrics`; resolves with its exit code and output. */
function checkMetrics(input: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile(promtoolPath(), ['check', 'metrics'], { timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, output: `${stdout}${stderr}` });
    });
    child.stdin?.end(input);
  });
}

describe('/metrics, checked by promtool', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy;

  beforeAll(async () => {
    apache = await startApacheWithScripts();
    proxy = await startTestProxy(apache.url, POLICY);
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
  });

  it('has no parse error and no lint problem in any portcullis_* family after real traffic', async () => {
    // Traffic that touches every family: allowed, shadowed, limited, blocked, banned, a reload.
    const agent = clientAgent('127.0.90.1');
    for (let i = 0; i < 4; i++) await request(proxy.url, { path: '/index.html', agent });
    agent.destroy();
    const flooder = clientAgent('127.0.91.1');
    for (let i = 0; i < 3; i++) await request(proxy.url, { method: 'POST', path: '/xmlrpc.php', body: '<x/>', agent: flooder }).catch(() => undefined);
    flooder.destroy();
    expect((await proxy.running.reload('test')).ok).toBe(true);

    const scrape = await request(proxy.adminUrl, { path: '/metrics' });
    expect(scrape.headers['content-type']).toContain('text/plain; version=0.0.4');
    for (const family of [
      'portcullis_requests_total',
      'portcullis_shadow_refusals_total',
      'portcullis_strikes_total',
      'portcullis_upstream_request_duration_seconds',
      'portcullis_upstream_in_flight',
      'portcullis_upstream_queue_length',
      'portcullis_tracked_clients',
      'portcullis_buffer_bytes',
      'portcullis_buffer_budget_exhausted_total',
      'portcullis_bans_total',
      'portcullis_bans_active',
      'portcullis_config_reloads_total',
      'portcullis_alerts_total',
      'process_cpu_user_seconds_total',
    ]) {
      expect(scrape.body, family).toContain(`# TYPE ${family} `);
    }
    expect(scrape.body).toMatch(/^portcullis_bans_total\{scope="ip",backend="none",mode="enforced"\} 1$/m);

    const { code, output } = await checkMetrics(scrape.body);
    // 0: clean; 3: lint problems only (prom-client's default Node metrics have some); 1 would be a parse error.
    expect([0, 3], output).toContain(code);
    const ours = output.split('\n').filter((line) => line.startsWith('portcullis_'));
    expect(ours).toEqual([]);
  });
});
