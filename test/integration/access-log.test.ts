import http from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccessLog, type AccessLogEntry } from '../../src/proxy/access-log.js';
import { startApache, type ApacheHandle } from '../support/apache.js';

/** Apache's own definition of `combined` (Debian's apache2.conf); the harness's minimal config lacks it. */
const COMBINED_CONFIG = [
  'LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" \\"%{User-Agent}i\\"" combined',
  'CustomLog "${SERVER_DIR}/logs/combined.log" combined',
].join('\n');

/** A combined line as log tools parse it: nine fields, quoted ones may hold backslash escapes. */
const COMBINED = /^(\S+) (\S+) (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$/;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * Requests as raw bytes (one JS char per byte), each sent once to Apache (which
 * serves and logs it) and once to a Node HTTP server (which parses it as
 * portcullis would, giving the facts portcullis would log).
 */
function requests(now: Date): Record<string, string> {
  return {
    plain: 'GET /index.html HTTP/1.1\r\nHost: x\r\nReferer: https://example.com/from\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0\r\n',
    hostileHeaders:
      'GET /index.html?q=1&r=%22%0a HTTP/1.0\r\nHost: x\r\nReferer:\r\n' +
      // A quote that would close the field, a backslash, a tab, latin1 bytes and UTF-8 "é".
      'User-Agent: x" 200 1 "-" "forged \\ \tend \xe9\xff caf\xc3\xa9\r\n',
    quoteInTarget: 'GET /missing"file?a\\b HTTP/1.1\r\nHost: x\r\n',
    head: 'HEAD /index.html HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8.0\r\n',
    // Apache ignores an If-Modified-Since in the future; the docroot was written before `now`.
    notModified: `GET /index.html HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: ${now.toUTCString()}\r\n`,
    notFound: 'GET /nope/../nothing-here.php HTTP/1.1\r\nHost: x\r\nReferer: http://spam.example/?a="b"\r\n',
  };
}

interface NodeFacts {
  method: string;
  url: string;
  httpVersion: string;
  referer: string | undefined;
  userAgent: string | undefined;
}

describe('the access log against Apache\'s own combined log', () => {
  let apache: ApacheHandle;
  let facts: http.Server;
  let lastFacts: NodeFacts | undefined;
  let dir: string;

  beforeAll(async () => {
    apache = await startApache({ extraConfig: COMBINED_CONFIG });
    facts = http.createServer((req, res) => {
      lastFacts = { method: req.method as string, url: req.url as string, httpVersion: req.httpVersion, referer: req.headers.referer, userAgent: req.headers['user-agent'] };
      res.end();
    });
    await new Promise<void>((resolve) => facts.listen(0, '127.0.0.1', resolve));
    dir = await mkdtemp(join(tmpdir(), 'portcullis-access-log-'));
  });

  afterAll(async () => {
    facts?.closeAllConnections();
    await new Promise((resolve) => facts?.close(resolve));
    await apache?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes, for the same requests, the very lines Apache writes', async () => {
    const apacheLogFile = join(apache.serverDir, 'logs', 'combined.log');
    const ourLogFile = join(dir, 'access.log');
    const log = await AccessLog.open(ourLogFile, { logger: pino({ level: 'silent' }), registry: new Registry() });
    const windows: { startMs: number; endMs: number }[] = [];
    const sent = Object.values(requests(new Date()));
    for (const raw of sent) {
      const bytes = Buffer.from(`${raw}Connection: close\r\n\r\n`, 'latin1');
      lastFacts = undefined;
      expect((await exchange((facts.address() as net.AddressInfo).port, bytes)).status).toBe(200);
      const parsed = lastFacts as NodeFacts | undefined;
      if (parsed === undefined) throw new Error(`Node did not parse ${JSON.stringify(raw)}`);

      const startMs = Date.now();
      const response = await exchange(apache.port, bytes);
      windows.push({ startMs, endMs: Date.now() });
      // Apache's line is written before it closes a Connection: close socket.
      const apacheLines = await readLines(apacheLogFile);
      const apacheFields = COMBINED.exec(apacheLines.at(-1) ?? '');
      if (apacheFields === null) throw new Error(`Apache's line does not parse: ${apacheLines.at(-1)}`);

      const entry: AccessLogEntry = {
        clientIp: '127.0.0.1',
        // Apache's own timestamp (checked against the request's window below), so
        // that a second boundary between the two clocks cannot fail the comparison.
        epochMs: parseApacheTime(apacheFields[4] as string),
        method: parsed.method,
        target: parsed.url,
        httpVersion: parsed.httpVersion,
        status: response.status,
        bytes: response.bodyBytes,
        referer: parsed.referer,
        userAgent: parsed.userAgent,
      };
      log.record(entry);
    }
    await log.close();

    const apacheLines = await readLines(apacheLogFile);
    const ourLines = await readLines(ourLogFile);
    expect(apacheLines).toHaveLength(sent.length);
    expect(ourLines).toHaveLength(apacheLines.length);
    for (const [i, ours] of ourLines.entries()) {
      const apacheLine = apacheLines[i] as string;
      const ourFields = COMBINED.exec(ours);
      const apacheFields = COMBINED.exec(apacheLine) as RegExpExecArray;
      expect(ourFields, ours).not.toBeNull();
      // Request line, status and bytes, then everything else.
      expect(ourFields?.slice(5, 8)).toEqual(apacheFields.slice(5, 8));
      expect(ours).toBe(apacheLine);
      const at = parseApacheTime(apacheFields[4] as string);
      const window = windows[i] as { startMs: number; endMs: number };
      expect(at).toBeGreaterThanOrEqual(Math.floor(window.startMs / 1000) * 1000);
      expect(at).toBeLessThanOrEqual(window.endMs);
    }
    // The cases that matter are really in there, exactly as Apache wrote them.
    expect(ourLines[1]).toContain('"GET /index.html?q=1&r=%22%0a HTTP/1.0" 200 ');
    expect(ourLines[1]).toMatch(/ "" "x\\" 200 1 \\"-\\" \\"forged \\\\ \\tend \\xe9\\xff caf\\xc3\\xa9"$/);
    expect(ourLines[2]).toMatch(/"GET \/missing\\"file\?a\\\\b HTTP\/1\.1" 404 \d+ "-" "-"$/);
    expect(ourLines[3]).toContain('"HEAD /index.html HTTP/1.1" 200 - "-" "curl/8.0"');
    expect(ourLines[4]).toContain('" 304 - "-" "-"');
  });
});

/** Sends raw bytes on a fresh connection, reads until the server closes; returns the status and body length in bytes. */
function exchange(port: number, bytes: Buffer): Promise<{ status: number; bodyBytes: number }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error(`no answer from port ${port} within 5 s`)), 5_000);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const response = Buffer.concat(chunks);
      const headEnd = response.indexOf('\r\n\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(response.toString('latin1'))?.[1] ?? 0);
      resolve({ status, bodyBytes: headEnd < 0 ? 0 : response.length - headEnd - 4 });
    });
  });
}

async function readLines(path: string): Promise<string[]> {
  return (await readFile(path, 'latin1').catch(() => '')).split('\n').filter((line) => line !== '');
}

/** `25/Nov/2026:11:27:10 +0000` → epoch ms. */
function parseApacheTime(text: string): number {
  const m = /^(\d{2})\/(\w{3})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(text);
  if (m === null) throw new Error(`not an Apache time: ${text}`);
  const [, day, month, year, hour, minute, second, sign, offH, offM] = m as unknown as string[];
  const localMs = Date.UTC(Number(year), MONTHS.indexOf(month as string), Number(day), Number(hour), Number(minute), Number(second));
  const offsetMs = (sign === '-' ? -1 : 1) * (Number(offH) * 60 + Number(offM)) * 60_000;
  return localMs - offsetMs;
}
