import http from 'node:http';
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/config/policy-loader.js';
import { startPortcullis, type RunningPortcullis } from '../../src/app/start-portcullis.js';
import { capturingLogger } from '../support/captured-log.js';
import { rawRequest } from '../support/http-client.js';

/**
 * Issue 9, item 11: the admin API answered whatever `Host` a request named,
 * so a web page on the same machine could read /status and /explain through
 * DNS rebinding (its own name resolving to 127.0.0.1). It now answers only
 * Host values that name its own address, `localhost`, or an
 * `admin.allowed_hosts` entry; and a non-loopback admin.listen is warned about.
 * Every request here is written byte for byte over node:net, so the Host
 * header is exactly the one chosen.
 */

interface RawAnswer {
  readonly status: number;
  readonly body: string;
}

/** Sends `text` to host:port and reads until the server closes. Bounded by 5 s. */
async function raw(host: string, port: number, text: string): Promise<RawAnswer> {
  const answer = await rawRequest(port, text, 5_000, undefined, host);
  return { status: answer.status, body: answer.text.slice(answer.text.indexOf('\r\n\r\n') + 4) };
}

/** `GET path` with exactly the given Host header lines (none: no Host at all). */
function get(host: string, port: number, path: string, hostHeaders: readonly string[], version = '1.1'): Promise<RawAnswer> {
  const lines = hostHeaders.map((value) => `Host: ${value}\r\n`).join('');
  return raw(host, port, `GET ${path} HTTP/${version}\r\n${lines}Connection: close\r\n\r\n`);
}

interface AdminUnderTest {
  readonly running: RunningPortcullis;
  readonly port: number;
  readonly logs: Record<string, unknown>[];
  close(): Promise<void>;
}

/** Starts a real portcullis whose admin section is `adminYaml` (indented under `admin:`), upstream a plain local server. */
async function startWithAdmin(upstream: string, adminYaml: string): Promise<AdminUnderTest> {
  const stateDir = await mkdtemp(join(tmpdir(), 'portcullis-admin-host-'));
  const yaml = `listen: "127.0.0.1:0"\nupstream: "${upstream}"\nstate_dir: "${stateDir}"\nadmin:\n${adminYaml}\n`;
  const logs: Record<string, unknown>[] = [];
  const running = await startPortcullis(parsePolicy(yaml, 'admin-host.yaml'), { logger: capturingLogger((entry) => logs.push(entry)) });
  return {
    running,
    port: running.adminAddress.port,
    logs,
    async close() {
      await running.close(1_000);
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

const errorOf = (answer: RawAnswer) => (JSON.parse(answer.body) as { error: { code: string; message: string } }).error;

describe('the admin API checks the Host header', () => {
  let upstream: http.Server;
  let upstreamUrl: string;

  beforeAll(async () => {
    upstream = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`;
  });

  afterAll(async () => {
    upstream.closeAllConnections();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  describe('on a loopback listen address with admin.allowed_hosts', () => {
    let admin: AdminUnderTest;
    let port: number;

    beforeAll(async () => {
      admin = await startWithAdmin(upstreamUrl, '  listen: "127.0.0.1:0"\n  allowed_hosts: ["web1", "Scrape.Example:19181", "[2001:DB8::1]"]');
      port = admin.port;
    });

    afterAll(async () => {
      await admin?.close();
    });

    it.each([
      ['its own address and port', (p: number) => `127.0.0.1:${p}`],
      ['its own address without a port', () => '127.0.0.1'],
      ['localhost with the port', (p: number) => `localhost:${p}`],
      ['localhost in capitals', (p: number) => `LocalHost:${p}`],
      ['localhost without a port', () => 'localhost'],
      ['an allowed name with our port', (p: number) => `web1:${p}`],
      ['an allowed name in capitals, no port', () => 'WEB1'],
      ['an allowed name:port, as written in the list', () => 'scrape.example:19181'],
      ['an allowed IPv6 literal, spelt differently', (p: number) => `[2001:db8:0::1]:${p}`],
    ])('answers %s', async (_kind, host) => {
      const answer = await get('127.0.0.1', port, '/status', [host(port)]);
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toHaveProperty('upstream');
    });

    it.each([
      ['a rebinding name', (p: number) => `attacker.example:${p}`],
      ['a rebinding name without a port', () => 'attacker.example'],
      ['localhost on another port', (p: number) => `localhost:${p + 1}`],
      ['its own address on another port', (p: number) => `127.0.0.1:${p + 1}`],
      ['an allowed name on another port', () => 'web1:19181'],
      ['an allowed name:port on our port instead of the listed one', (p: number) => `scrape.example:${p}`],
      ['an allowed name:port without its port', () => 'scrape.example'],
      ['another loopback address', (p: number) => `127.0.0.2:${p}`],
      ['the IPv6 loopback, which it does not listen on', (p: number) => `[::1]:${p}`],
      ['the wildcard address', (p: number) => `0.0.0.0:${p}`],
      ['a name under localhost', (p: number) => `localhost.attacker.example:${p}`],
      ['localhost with a trailing dot', (p: number) => `localhost.:${p}`],
      ['an empty port', () => 'localhost:'],
      ['a user part', (p: number) => `web1@attacker.example:${p}`],
      ['an empty Host', () => ''],
    ])('refuses %s with 421 and says how to allow a name', async (_kind, host) => {
      const answer = await get('127.0.0.1', port, '/explain/192.0.2.7', [host(port)]);
      expect(answer.status).toBe(421);
      const error = errorOf(answer);
      expect(error.code).toBe('PC_ERR_ADMIN_HOST');
      expect(error.message).toContain('admin.allowed_hosts');
    });

    it('refuses a request without Host (HTTP/1.0) and one with two', async () => {
      const none = await get('127.0.0.1', port, '/status', [], '1.0');
      expect(none.status).toBe(421);
      expect(errorOf(none)).toMatchObject({ code: 'PC_ERR_ADMIN_HOST', message: expect.stringContaining('no Host header') });
      const two = await get('127.0.0.1', port, '/status', [`127.0.0.1:${port}`, 'attacker.example']);
      expect(two.status).toBe(421);
      expect(errorOf(two).code).toBe('PC_ERR_ADMIN_HOST');
    });

    it('checks every route, before anything else (a bad Host on a change gets 421, not 401)', async () => {
      for (const path of ['/healthz', '/metrics', '/bans', '/no-such-route']) {
        expect((await get('127.0.0.1', port, path, ['attacker.example'])).status, path).toBe(421);
      }
      const post = await raw('127.0.0.1', port, 'POST /bans HTTP/1.1\r\nHost: attacker.example\r\nContent-Type: application/json\r\nContent-Length: 18\r\nConnection: close\r\n\r\n{"ip":"192.0.2.7"}');
      expect(post.status).toBe(421);
      expect(admin.running.ledger.size).toBe(0);
    });

    it('does not warn about a loopback listen address', () => {
      expect(admin.logs.some((line) => String(line['msg']).includes('beyond loopback'))).toBe(false);
    });
  });

  describe('on a wildcard listen address', () => {
    let v4: AdminUnderTest;
    let v6: AdminUnderTest;

    beforeAll(async () => {
      v4 = await startWithAdmin(upstreamUrl, '  listen: "0.0.0.0:0"');
      v6 = await startWithAdmin(upstreamUrl, '  listen: "[::]:0"');
    });

    afterAll(async () => {
      await v4?.close();
      await v6?.close();
    });

    it('takes the address a request came in on as its own, and no other', async () => {
      expect((await get('127.0.0.2', v4.port, '/healthz', [`127.0.0.2:${v4.port}`])).status).toBe(200);
      expect((await get('127.0.0.1', v4.port, '/healthz', [`127.0.0.1:${v4.port}`])).status).toBe(200);
      expect((await get('127.0.0.2', v4.port, '/healthz', [`127.0.0.3:${v4.port}`])).status).toBe(421);
      // Browsers send requests for http://0.0.0.0:PORT to this machine: the wildcard is nobody's name.
      expect((await get('127.0.0.1', v4.port, '/healthz', [`0.0.0.0:${v4.port}`])).status).toBe(421);
    });

    it('on [::], matches an IPv4 client by its plain address and an IPv6 literal in brackets', async () => {
      // The socket reports ::ffff:127.0.0.1 for an IPv4 client; the Host names 127.0.0.1.
      expect((await get('127.0.0.1', v6.port, '/healthz', [`127.0.0.1:${v6.port}`])).status).toBe(200);
      expect((await get('::1', v6.port, '/healthz', [`[::1]:${v6.port}`])).status).toBe(200);
      expect((await get('::1', v6.port, '/healthz', [`[::]:${v6.port}`])).status).toBe(421);
      expect((await get('::1', v6.port, '/healthz', [`[::2]:${v6.port}`])).status).toBe(421);
    });

    it('warns at start that the admin API is reachable beyond loopback', () => {
      for (const admin of [v4, v6]) {
        const warning = admin.logs.find((line) => String(line['msg']).includes('beyond loopback'));
        expect(warning).toMatchObject({ level: 40 });
        expect(String(warning!['msg'])).toContain('admin.listen');
      }
    });
  });
});
