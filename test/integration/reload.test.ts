import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { clientAgent, request } from '../support/http-client.js';
import { startTestProxy } from '../support/portcullis.js';

const BASE = `
concurrency: { upstream_max: 32, per_client_max: 32 }
limits:
  - name: read
    methods: [GET]
    per_ip: { rate: 1/min, burst: 3 }
`;
const WITH_BLOCK = `${BASE}block:\n  - path: /index.html\n`;

/** Polls `check` every 50 ms until it returns true, for at most `timeoutMs`. */
async function eventually(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

describe('policy reload', () => {
  let apache: ApacheHandle;

  beforeAll(async () => {
    apache = await startApacheWithScripts();
  });

  afterAll(async () => {
    await apache?.stop();
  });

  it('swaps the policy while requests are in flight, and none of them fails', async () => {
    const proxy = await startTestProxy(apache.url, BASE.replace('burst: 3', 'burst: 100'));
    try {
      const inFlight = Array.from({ length: 20 }, (_, i) => request(proxy.url, { path: '/slow.cgi?1', localAddress: `127.0.50.${i + 1}` }));
      await eventually(async () => proxy.running.slots.inFlight === 20, 3_000);
      expect(proxy.running.slots.inFlight).toBe(20);
      await proxy.writePolicy(WITH_BLOCK.replace('burst: 3', 'burst: 100'));
      expect(await proxy.running.reload('test')).toEqual({ ok: true, restartNeeded: [] });

      const answers = await Promise.all(inFlight);
      expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(200));
      expect(answers.every((answer) => answer.body.includes('slept 1'))).toBe(true);
      expect((await request(proxy.url, { path: '/index.html', localAddress: '127.0.50.99' })).status).toBe(403);
      expect(proxy.logs.some((line) => line.msg === 'policy reloaded' && line.trigger === 'test')).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('keeps the bucket levels of rules the reload did not change', async () => {
    const proxy = await startTestProxy(apache.url, BASE);
    try {
      const agent = clientAgent('127.0.51.1');
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await request(proxy.url, { path: '/index.html', agent })).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
      await proxy.writePolicy(`${BASE}  - name: write\n    methods: [POST]\n    per_ip: { rate: 1/s, burst: 5 }\n`);
      expect((await proxy.running.reload('test')).ok).toBe(true);
      // `read` is unchanged: still empty. A fresh client is unaffected.
      expect((await request(proxy.url, { path: '/index.html', agent })).status).toBe(429);
      expect((await request(proxy.url, { path: '/index.html', localAddress: '127.0.51.2' })).status).toBe(200);
      agent.destroy();
    } finally {
      await proxy.close();
    }
  });

  it('applies a new escalation.tarpit to banned clients without a restart', async () => {
    const banning = (tarpit: string) => `${BASE}block:\n  - path: /xmlrpc.php\n    strikes: 5\nescalation: { strikes: 10, window: 60s, ban: 10m, tarpit: ${tarpit} }\n`;
    const proxy = await startTestProxy(apache.url, banning('0s'));
    try {
      for (let i = 0; i < 2; i++) await request(proxy.url, { method: 'POST', path: '/xmlrpc.php', body: 'x', localAddress: '127.0.52.1' }).catch(() => undefined);
      const timed = async () => {
        const started = performance.now();
        const { status } = await request(proxy.url, { path: '/index.html', localAddress: '127.0.52.1' });
        return { status, ms: performance.now() - started };
      };
      const before = await timed();
      expect(before.status).toBe(403);
      expect(before.ms).toBeLessThan(1_500);
      await proxy.writePolicy(banning('1500ms'));
      expect(await proxy.running.reload('test')).toEqual({ ok: true, restartNeeded: [] });
      const after = await timed();
      expect(after.status).toBe(403);
      expect(after.ms).toBeGreaterThanOrEqual(1_480);
    } finally {
      await proxy.close();
    }
  });

  it('rejects an invalid file with FILE:LINE:COL, counts the failure and keeps the running policy', async () => {
    const proxy = await startTestProxy(apache.url, WITH_BLOCK);
    try {
      await proxy.writePolicy(`${WITH_BLOCK}  - path: /other\n    stauts: 404\n`);
      const result = await proxy.running.reload('test');
      expect(result.ok).toBe(false);
      const problems = result.ok ? [] : result.problems;
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(new RegExp(`^${proxy.policyFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:5: .*stauts.*status`));
      const logged = proxy.logs.find((line) => line.msg?.toString().startsWith('policy reload rejected'));
      expect(logged).toMatchObject({ level: 50, problems });
      expect((await request(proxy.url, { path: '/index.html', localAddress: '127.0.52.1' })).status).toBe(403);

      const metrics = (await request(proxy.adminUrl, { path: '/metrics' })).body;
      expect(metrics).toContain('portcullis_config_reloads_total{result="failure"} 1');
      expect(metrics).toContain('portcullis_config_last_reload_successful 0');
    } finally {
      await proxy.close();
    }
  });

  it('keeps running values of restart-only keys and says which they are', async () => {
    const proxy = await startTestProxy(apache.url, BASE);
    try {
      await proxy.writePolicy(`${BASE}clients: { max_tracked: 5000 }\nconcurrency: { upstream_max: 8, per_client_max: 4 }\n`.replace('concurrency: { upstream_max: 32, per_client_max: 32 }\n', ''));
      expect(await proxy.running.reload('test')).toEqual({ ok: true, restartNeeded: ['clients.max_tracked', 'concurrency.upstream_max'] });
      expect(proxy.running.config.clients.max_tracked).toBe(1_000_000);
      expect(proxy.running.config.concurrency).toMatchObject({ upstream_max: 32, per_client_max: 4 });
      expect(proxy.logs.some((line) => line.level === 40 && String(line.msg).includes('only change at restart'))).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('reloads by itself when the policy file is saved', async () => {
    const proxy = await startTestProxy(apache.url, BASE, { watchPolicy: true });
    try {
      expect((await request(proxy.url, { path: '/index.html', localAddress: '127.0.53.1' })).status).toBe(200);
      await proxy.writePolicy(WITH_BLOCK);
      const blocked = await eventually(async () => (await request(proxy.url, { path: '/index.html', localAddress: '127.0.53.2' })).status === 403);
      expect(blocked).toBe(true);
      expect(proxy.logs.filter((line) => line.msg === 'policy reloaded').map((line) => line.trigger)).toContain('file changed');
    } finally {
      await proxy.close();
    }
  });
});

describe('portcullis serve', () => {
  it('reloads the policy on SIGHUP', async () => {
    const apache = await startApacheWithScripts();
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-sighup-'));
    const file = join(dir, 'policy.yaml');
    const policy = (extra: string) =>
      `listen: "127.0.0.1:0"\nupstream: "${apache.url}"\nstate_dir: "${join(dir, 'state')}"\nadmin: { listen: "127.0.0.1:0" }\n${extra}`;
    await writeFile(file, policy(''));
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../../src/cli/main.ts'), 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const lines: Record<string, unknown>[] = [];
    const waiters: { predicate: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }[] = [];
    createInterface({ input: child.stdout }).on('line', (text) => {
      const line = JSON.parse(text) as Record<string, unknown>;
      lines.push(line);
      for (const waiter of waiters.filter((candidate) => candidate.predicate(line))) waiter.resolve(line);
    });
    const waitFor = (predicate: (line: Record<string, unknown>) => boolean) =>
      new Promise<Record<string, unknown>>((resolve) => {
        const seen = lines.find(predicate);
        if (seen) resolve(seen);
        else waiters.push({ predicate, resolve });
      });
    try {
      const listening = await waitFor((line) => line.msg === 'portcullis is listening');
      const url = `http://${String(listening.listen)}`;
      expect((await request(url, { path: '/index.html' })).status).toBe(200);
      await writeFile(file, policy('block:\n  - path: /index.html\n'));
      child.kill('SIGHUP');
      await waitFor((line) => line.msg === 'policy reloaded' && line.trigger === 'SIGHUP');
      expect((await request(url, { path: '/index.html' })).status).toBe(403);
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      expect(child.exitCode).toBe(0);
    } finally {
      clearTimeout(killer);
      if (child.exitCode === null) child.kill('SIGKILL');
      await apache.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
