import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ApacheHandle } from '../support/apache.js';
import { startApache } from '../support/apache.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

/** Opens a connection from `localAddress` and resolves once it is connected, or closed by the server (whichever first). */
function connect(port: number, localAddress: string): Promise<{ socket: net.Socket; closedEarly: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    socket.on('error', () => {});
    // Read (and drop) what comes, or the server's FIN is never seen and 'close' never fires.
    socket.resume();
    socket.on('connect', () => {
      // A refused connection is accepted by the kernel and closed at once by the proxy: wait a moment to see which.
      const timer = setTimeout(() => resolve({ socket, closedEarly: false }), 150);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve({ socket, closedEarly: true });
      });
    });
  });
}

async function metric(proxy: TestProxy, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? 0);
}

describe('connection caps', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy;
  const open: net.Socket[] = [];

  beforeAll(async () => {
    apache = await startApache();
    proxy = await startTestProxy(
      apache.url,
      'clients:\n  trusted_proxies: ["127.82.0.0/16"]\nconnections:\n  per_client_max: 3\n  max: 12\ntimeouts:\n  client_headers: 1s\n',
    );
  });

  afterEach(() => {
    for (const socket of open.splice(0)) socket.destroy();
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
  });

  it('closes a client\'s connection past per_client_max at once, and counts a strike', async () => {
    const strikes = () => metric(proxy, /^portcullis_strikes_total\{rule="connections"\} (\d+)/m);
    const before = await strikes();
    for (let i = 0; i < 3; i++) {
      const { socket, closedEarly } = await connect(proxy.port, '127.81.1.1');
      open.push(socket);
      expect(closedEarly).toBe(false);
    }
    const fourth = await connect(proxy.port, '127.81.1.1');
    open.push(fourth.socket);
    expect(fourth.closedEarly).toBe(true);
    expect(await strikes()).toBe(before + 1);
    expect(await metric(proxy, /^portcullis_connections_refused_total\{reason="per_client_max"\} (\d+)/m)).toBeGreaterThanOrEqual(1);
    // Another address is not held to this one's count.
    const other = await connect(proxy.port, '127.81.1.2');
    open.push(other.socket);
    expect(other.closedEarly).toBe(false);
  });

  it('exempts trusted proxies from the per-client cap', async () => {
    for (let i = 0; i < 5; i++) {
      const { socket, closedEarly } = await connect(proxy.port, '127.82.1.1');
      open.push(socket);
      expect(closedEarly).toBe(false);
    }
  });

  it('refuses connections past the total cap without striking anyone', async () => {
    const strikes = () => metric(proxy, /^portcullis_strikes_total\{rule="connections"\} (\d+)/m);
    const before = await strikes();
    // At once, well within client_headers (1 s), which would otherwise close the first ones.
    const first = await Promise.all(Array.from({ length: 12 }, (_, i) => connect(proxy.port, `127.83.${i}.1`)));
    const over = await Promise.all([connect(proxy.port, '127.83.20.1'), connect(proxy.port, '127.83.21.1')]);
    for (const { socket } of [...first, ...over]) open.push(socket);
    expect(first.map((result) => result.closedEarly)).toEqual(Array.from({ length: 12 }, () => false));
    expect(over.map((result) => result.closedEarly)).toEqual([true, true]);
    expect(await strikes()).toBe(before);
    expect(await metric(proxy, /^portcullis_connections_refused_total\{reason="max"\} (\d+)/m)).toBe(2);
  });

  it('cuts a connection that never finishes its headers within about a second of client_headers, and strikes it', async () => {
    const strikes = () => metric(proxy, /^portcullis_strikes_total\{rule="client_timeout"\} (\d+)/m);
    const before = await strikes();
    const { socket } = await connect(proxy.port, '127.84.1.1');
    open.push(socket);
    const startedMs = performance.now();
    socket.write('GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    const closedAfterMs = await new Promise<number>((resolve) => {
      // Bounded: Node's default check (every 30 s) would take far longer than this.
      const timer = setTimeout(() => resolve(Number.POSITIVE_INFINITY), 8_000);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve(performance.now() - startedMs);
      });
    });
    expect(closedAfterMs).toBeGreaterThanOrEqual(900);
    expect(closedAfterMs).toBeLessThan(3_500);
    expect(await strikes()).toBe(before + 1);
  });
});
