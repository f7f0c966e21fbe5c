import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { request } from '../support/http-client.js';
import { startServedProxy, type ServedProxy } from '../support/served-portcullis.js';

/**
 * A client may reset its connection in any phase of a request. Each test
 * resets one phase against a real `portcullis serve` process and then checks
 * the process is alive and still answering: an unhandled socket 'error'
 * would have killed it, and every bucket, strike and ban in memory with it.
 */
describe('a client resetting its connection in any phase', () => {
  let upstream: http.Server;
  const upstreamSockets = new Set<net.Socket>();
  let proxy: ServedProxy | undefined;
  let upstreamUrl: string;
  const proxyPort = () => (proxy as ServedProxy).port;

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      // /slow answers after 1.5 s, everything else at once.
      const delay = req.url?.startsWith('/slow') ? 1_500 : 0;
      req.resume();
      req.on('end', () => setTimeout(() => res.end('ok'), delay).unref());
    });
    upstream.on('connection', (socket) => {
      upstreamSockets.add(socket);
      socket.on('close', () => upstreamSockets.delete(socket));
    });
    upstream.on('upgrade', (req, socket: net.Socket) => {
      socket.on('error', () => {});
      // /slow upgrades are answered late, so the client can reset in between.
      const answer = () => {
        if (!socket.destroyed) socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      };
      if (req.url?.startsWith('/slow')) setTimeout(answer, 1_000).unref();
      else answer();
      socket.on('data', (chunk) => socket.write(chunk));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`;
  });

  // A test that kills the process must not fail the ones after it.
  beforeEach(async () => {
    if (proxy?.alive()) return;
    await proxy?.stop();
    proxy = await startServedProxy(
      upstreamUrl,
      [
        'concurrency:',
        '  upstream_max: 1',
        '  per_client_max: 1',
        'block:',
        '  - path: /xmlrpc.php',
        '    strikes: 100',
        'escalation:',
        '  strikes: 3',
        '  tarpit: 2s',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await proxy?.stop();
    for (const socket of upstreamSockets) socket.destroy();
    upstream?.closeAllConnections();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  /** Connects from `localAddress`, writes `text`, waits `afterMs` (or for `until` in the answer), then resets (RST). */
  function sendThenReset(text: string, options: { localAddress: string; afterMs?: number; until?: string }): Promise<string> {
    return new Promise((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: proxyPort(), localAddress: options.localAddress });
      let received = '';
      const reset = () => {
        clearTimeout(timer);
        socket.resetAndDestroy();
        resolve(received);
      };
      const timer = setTimeout(reset, options.until === undefined ? (options.afterMs ?? 200) : 5_000);
      socket.on('error', () => {});
      socket.on('connect', () => socket.write(text));
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString('latin1');
        if (options.until !== undefined && received.includes(options.until)) reset();
      });
    });
  }

  /** One blocked request worth 100 strikes: banned at once (the ban closes the connection, so no answer is expected). */
  async function banBy(localAddress: string): Promise<void> {
    await request(`http://127.0.0.1:${proxyPort()}`, { path: '/xmlrpc.php', localAddress }).catch(() => {});
  }

  async function expectStillServing(localAddress: string): Promise<void> {
    // Give an unhandled error time to take the process down before looking.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(proxy?.alive(), proxy?.output.slice(-5).join('\n')).toBe(true);
    const answer = await request(`http://127.0.0.1:${proxyPort()}`, { path: '/', localAddress });
    expect(answer.status).toBe(200);
  }

  it('while an upgrade waits for the upstream to answer the handshake', async () => {
    await sendThenReset('GET /slow HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', { localAddress: '127.51.1.1', afterMs: 300 });
    await expectStillServing('127.51.1.2');
  });

  it('after an upgrade is established', async () => {
    await sendThenReset('GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', { localAddress: '127.51.2.1', until: '101 Switching' });
    await expectStillServing('127.51.2.2');
  });

  it('while a banned client\'s upgrade is held by the tarpit', async () => {
    await banBy('127.51.3.1');
    await sendThenReset('GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', { localAddress: '127.51.3.1', afterMs: 300 });
    await expectStillServing('127.51.4.1');
  });

  it('while a banned client\'s plain request is held by the tarpit', async () => {
    await banBy('127.51.5.1');
    await sendThenReset('GET / HTTP/1.1\r\nHost: x\r\n\r\n', { localAddress: '127.51.5.1', afterMs: 300 });
    await expectStillServing('127.51.6.1');
  });

  it('before its headers are complete, and in the middle of a body', async () => {
    await sendThenReset('GET / HTTP/1.1\r\nHost: x\r\nX-Half: ', { localAddress: '127.51.7.1' });
    await sendThenReset('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial', { localAddress: '127.51.7.2' });
    await sendThenReset('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n', { localAddress: '127.51.7.3' });
    await expectStillServing('127.51.7.4');
  });

  it('while queued for an upstream slot, and in the middle of the response', async () => {
    // upstream_max 1: the first /slow holds the slot, the second waits in the queue.
    const holder = request(`http://127.0.0.1:${proxyPort()}`, { path: '/slow', localAddress: '127.51.8.1' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await sendThenReset('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n', { localAddress: '127.51.8.2', afterMs: 300 });
    await sendThenReset('GET /slow HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', { localAddress: '127.51.8.3', afterMs: 300 });
    expect((await holder).status).toBe(200);
    await expectStillServing('127.51.8.4');
  });
});
