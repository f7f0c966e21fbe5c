import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { clientAgent, request } from '../support/http-client.js';
import { startTestProxy } from '../support/portcullis.js';

const policy = (webhookUrl: string) => `
block:
  - path: /xmlrpc.php
    strikes: 5
escalation: { strikes: 10, window: 60s, ban: 10m }
alerts:
  webhooks:
    - url: "${webhookUrl}"
      headers: { X-Test: "portcullis" }
  attack_threshold: 1000
`;

interface Received {
  readonly atMs: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Record<string, unknown>;
}

describe('alerts from a running proxy', () => {
  let apache: ApacheHandle;
  let receiver: http.Server;
  let receiverUrl: string;
  const received: Received[] = [];

  beforeAll(async () => {
    apache = await startApacheWithScripts();
    receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push({ atMs: performance.now(), headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  });

  afterAll(async () => {
    receiver?.closeAllConnections();
    await new Promise((resolve) => receiver?.close(resolve));
    await apache?.stop();
  });

  it('posts the ban to the webhook within a second of the ban', async () => {
    const proxy = await startTestProxy(apache.url, policy(receiverUrl));
    try {
      const agent = clientAgent('127.0.70.1');
      for (let i = 0; i < 2; i++) await request(proxy.url, { method: 'POST', path: '/xmlrpc.php', body: '<x/>', agent }).catch(() => undefined);
      const bannedAtMs = performance.now();
      agent.destroy();
      const deadline = bannedAtMs + 1_000;
      while (received.length === 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(received).toHaveLength(1);
      const [alert] = received;
      expect(alert!.atMs - bannedAtMs).toBeLessThan(1_000);
      expect(alert!.headers['x-test']).toBe('portcullis');
      expect(alert!.body).toMatchObject({ source: 'portcullis', event: 'ban', ban: { target: '127.0.70.1', scope: 'ip', duration_seconds: 600 } });
    } finally {
      await proxy.close();
    }
  });

  it('serves at full speed while the webhook receiver is down', async () => {
    const down = http.createServer();
    await new Promise<void>((resolve) => down.listen(0, '127.0.0.1', resolve));
    const deadUrl = `http://127.0.0.1:${(down.address() as AddressInfo).port}/hook`;
    await new Promise((resolve) => down.close(resolve));

    /** Median time of `n` page requests over one keep-alive connection. */
    const medianMs = async (url: string, localAddress: string, n = 60): Promise<number> => {
      const agent = clientAgent(localAddress);
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        const start = performance.now();
        await request(url, { path: '/index.html', agent });
        times.push(performance.now() - start);
      }
      agent.destroy();
      return times.sort((a, b) => a - b)[Math.floor(n / 2)] as number;
    };

    const proxy = await startTestProxy(apache.url, policy(deadUrl));
    try {
      const quiet = await medianMs(proxy.url, '127.0.71.1');
      // Five bans, each an alert that can never be delivered and is retried.
      for (let b = 0; b < 5; b++) {
        const agent = clientAgent(`127.0.${80 + b}.1`);
        for (let i = 0; i < 2; i++) await request(proxy.url, { method: 'POST', path: '/xmlrpc.php', body: '<x/>', agent }).catch(() => undefined);
        agent.destroy();
      }
      expect(proxy.running.ledger.size).toBe(5);
      const meanwhile = await medianMs(proxy.url, '127.0.71.2');
      // Generous: the point is "not seconds", on a shared machine.
      expect(meanwhile).toBeLessThan(Math.max(quiet * 3, quiet + 20));
      const closing = performance.now();
      await proxy.close();
      expect(performance.now() - closing).toBeLessThan(3_000);
    } finally {
      await proxy.close();
    }
  });
});
