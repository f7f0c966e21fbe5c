import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

/**
 * Apache has no WebSocket endpoint of its own, so the upstream here is a tiny
 * Node server that accepts the upgrade and echoes bytes back, after writing
 * the forwarding headers it received.
 */
describe('WebSocket upgrades', () => {
  let upstream: http.Server;
  const upstreamSockets = new Set<net.Socket>();
  let upstreamUrl: string;
  let proxy: TestProxy;

  beforeAll(async () => {
    upstream = http.createServer((_req, res) => res.end('plain'));
    upstream.on('upgrade', (req, socket: net.Socket) => {
      upstreamSockets.add(socket);
      // Like many WebSocket servers, it keeps its side open when the other is ended (http.Server allows half-open).
      const accept = () =>
        socket.write(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            `X-Seen-Forwarded-For: ${req.headers['x-forwarded-for']}\r\nX-Seen-Path: ${req.url}\r\n\r\n`,
        );
      // /late accepts after 300 ms, so a client can do something in between.
      if (req.url?.startsWith('/late')) setTimeout(accept, 300).unref();
      // /refused is turned down after 200 ms, as a page that does not speak WebSocket is.
      else if (req.url?.startsWith('/refused')) setTimeout(() => socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno'), 200).unref();
      else accept();
      socket.on('data', (chunk) => socket.write(chunk));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`;
    proxy = await startTestProxy(upstreamUrl, 'block:\n  - path: /xmlrpc.php\n');
  });

  afterAll(async () => {
    await proxy?.close();
    upstream?.closeAllConnections();
    for (const socket of upstreamSockets) socket.destroy();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  /** Opens a raw upgrade and returns the head of the answer plus an echo of `payload` (bounded by 5 s). */
  function upgrade(path: string, payload: string): Promise<{ head: string; echoed: string }> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port: proxy.port, localAddress: '127.40.1.1' });
      let buffer = '';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no complete answer: ${JSON.stringify(buffer)}`));
      }, 5_000);
      socket.on('connect', () =>
        socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n`),
      );
      socket.on('data', (chunk) => {
        buffer += chunk.toString('latin1');
        const end = buffer.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buffer.slice(0, end);
        if (!head.startsWith('HTTP/1.1 101')) {
          clearTimeout(timer);
          socket.destroy();
          resolve({ head, echoed: '' });
          return;
        }
        if (buffer.length === end + 4) socket.write(payload);
        if (buffer.slice(end + 4) === payload) {
          clearTimeout(timer);
          socket.destroy();
          resolve({ head, echoed: payload });
        }
      });
      socket.on('error', reject);
    });
  }

  it('passes the upgrade through, with our forwarding headers, and carries bytes both ways', async () => {
    const { head, echoed } = await upgrade('/chat?room=1', 'hello through the portcullis');
    expect(head).toMatch(/^HTTP\/1\.1 101/);
    expect(head).toMatch(/^x-seen-forwarded-for: 127\.40\.1\.1$/im);
    expect(head).toMatch(/^x-seen-path: \/chat\?room=1$/im);
    expect(echoed).toBe('hello through the portcullis');
  });

  it('closes the tunnel of a client that ended its side before the upstream accepted', async () => {
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port, localAddress: '127.40.2.1' });
    socket.on('error', () => {});
    socket.resume();
    const closed = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 3_000);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    socket.on('connect', () => socket.end('GET /late HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'));
    try {
      // Spliced once the upstream accepts, a connection no client can use again would otherwise stay open, counted against its per-client cap.
      expect(await closed, 'the proxy closed the connection').toBe(true);
    } finally {
      socket.destroy();
    }
  });

  it('frees the connection of a refused handshake, also when the client wrote meanwhile', async () => {
    const upgradedNow = async () => (await proxy.running.registry.getSingleMetric('portcullis_upgraded_connections')?.get())?.values.reduce((sum, value) => sum + value.value, 0) ?? 0;
    for (let i = 0; i < 3; i++) {
      const socket = net.connect({ host: '127.0.0.1', port: proxy.port, localAddress: '127.40.3.1' });
      socket.on('error', () => {});
      socket.resume();
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.on('connect', () => {
        socket.write('GET /refused HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
        setTimeout(() => socket.write('x'), 50);
      });
      await closed;
    }
    // Counted until the proxy's side of each connection has closed.
    const deadline = Date.now() + 2_000;
    while ((await upgradedNow()) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await upgradedNow()).toBe(0);
  });

  it('applies blocks to upgrades too', async () => {
    const { head } = await upgrade('/xmlrpc.php', 'x');
    expect(head).toMatch(/^HTTP\/1\.1 403/);
  });
});
