import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

const UPGRADE = 'Connection: Upgrade\r\nUpgrade: websocket\r\n';

/** Sends an upgrade request from `localAddress`; resolves with the status line's code once the head of the answer is in. */
function openUpgrade(port: number, path: string, localAddress: string): Promise<{ status: number; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to the upgrade of ${path}: ${JSON.stringify(text)}`));
    }, 10_000);
    socket.on('error', () => {});
    socket.on('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n${UPGRADE}\r\n`));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (!text.includes('\r\n\r\n')) return;
      clearTimeout(timer);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), socket });
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), socket });
    });
  });
}

describe('upgrade requests and the upstream cap', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy;

  beforeAll(async () => {
    apache = await startApacheWithScripts();
    proxy = await startTestProxy(apache.url, 'concurrency:\n  upstream_max: 1\n  per_client_max: 1\n  queue_timeout: 300ms\n');
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
  });

  it('holds an upstream slot while Apache works on the handshake, like any request', async () => {
    const answers = await Promise.all(['127.71.1.1', '127.71.2.1', '127.71.3.1'].map((ip) => openUpgrade(proxy.port, '/slow.cgi?1', ip)));
    for (const { socket } of answers) socket.destroy();
    const statuses = answers.map((answer) => answer.status).sort();
    // Apache answers the handshake as a plain request (no WebSocket there): one got through, two waited out the queue.
    expect(statuses).toEqual([200, 503, 503]);
    // Apache writes its line just after the answer: wait for it rather than read too early.
    const slept = (await apache.waitForAccessLog((entries) => entries.some((entry) => entry.urlPath === '/slow.cgi'))).filter((entry) => entry.urlPath === '/slow.cgi');
    expect(slept).toHaveLength(1);
  });
});

describe('upgraded connections', () => {
  let upstream: http.Server;
  const upstreamSockets = new Set<net.Socket>();
  let proxy: TestProxy;

  beforeAll(async () => {
    upstream = http.createServer((_req, res) => res.end('plain'));
    upstream.on('upgrade', (_req, socket: net.Socket) => {
      upstreamSockets.add(socket);
      socket.on('error', () => {});
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`;
    proxy = await startTestProxy(url, 'concurrency:\n  upstream_max: 2\n  per_client_max: 2\nconnections:\n  upgraded_per_client_max: 2\n');
  });

  afterAll(async () => {
    await proxy?.close();
    for (const socket of upstreamSockets) socket.destroy();
    upstream?.closeAllConnections();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  it('give their upstream slot back once upgraded, and count against their own per-client cap', async () => {
    const first = await openUpgrade(proxy.port, '/ws', '127.72.1.1');
    const second = await openUpgrade(proxy.port, '/ws', '127.72.1.1');
    expect([first.status, second.status]).toEqual([101, 101]);
    expect(proxy.running.slots.inFlight).toBe(0);
    const strikes = async () => Number(/^portcullis_strikes_total\{rule="connections"\} (\d+)/m.exec(await (await fetch(`${proxy.adminUrl}/metrics`)).text())?.[1] ?? 0);
    const before = await strikes();
    const third = await openUpgrade(proxy.port, '/ws', '127.72.1.1');
    expect(third.status).toBe(503);
    expect(await strikes()).toBe(before + 1);
    // Another client is not affected by this one's cap.
    const other = await openUpgrade(proxy.port, '/ws', '127.72.2.1');
    expect(other.status).toBe(101);
    first.socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const again = await openUpgrade(proxy.port, '/ws', '127.72.1.1');
    expect(again.status).toBe(101);
    for (const { socket } of [second, third, other, again]) socket.destroy();
  });
});
