import { mkdir, mkdtemp, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

/**
 * Issue 9, item 4: slow clients must not hold Apache's slots. A slot is the
 * scarce thing (Apache's workers); a client that sends its body one byte at
 * a time, or never reads its answer, must cost portcullis buffers, not
 * Apache workers. Real Apache, real proxy, real sockets on loopback.
 */

/** 16 MiB of numbered lines: far more than loopback's socket buffers hold, and any reordering shows. */
const BIG = Buffer.from(Array.from({ length: (16 * 1_048_576) / 16 }, (_, i) => `${String(i).padStart(15, '0')}\n`).join(''));

const SMALL_CAPS = 'concurrency: { upstream_max: 2, per_client_max: 2, queue_max: 8, per_client_queue_max: 8, queue_timeout: 500ms }';

describe('slow clients, through portcullis to a real Apache', () => {
  let apache: ApacheHandle;
  const open = new Set<net.Socket>();

  beforeAll(async () => {
    apache = await startApacheWithScripts({ files: { 'big.bin': BIG.toString('latin1') } });
  });

  afterAll(async () => {
    for (const socket of open) socket.destroy();
    await apache?.stop();
  });

  /** Starts a proxy for one test and always closes it. */
  async function withProxy(policy: string, body: (proxy: TestProxy) => Promise<void>, upstream = apache.url): Promise<void> {
    const proxy = await startTestProxy(upstream, policy);
    try {
      await body(proxy);
    } finally {
      for (const socket of open) socket.destroy();
      open.clear();
      await proxy.close();
    }
  }

  /** A raw client: sends what it is told, keeps what it receives, reads only when asked. */
  async function connect(proxy: TestProxy, localAddress: string, options: { reading?: boolean } = {}): Promise<RawClient> {
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port, localAddress });
    open.add(socket);
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    return new RawClient(socket, options.reading ?? true);
  }

  it('(a) receives slowly sent request bodies before taking an upstream slot', async () => {
    await withProxy(SMALL_CAPS, async (proxy) => {
      const dribblers = await Promise.all(['127.61.1.1', '127.61.2.1'].map((address) => connect(proxy, address)));
      for (const client of dribblers) client.write('POST /echo.cgi HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\nx');
      await waitFor(async () => (await allowedRequests(proxy)) >= 2);
      // Both bodies are still arriving: neither may hold one of the two slots.
      expect(proxy.running.slots.inFlight).toBe(0);
      const visitor = await request(proxy.url, { path: '/index.html', localAddress: '127.61.3.1' });
      expect(visitor.status).toBe(200);
      for (const client of dribblers) client.write('123456789');
      for (const client of dribblers) {
        const answer = await client.response();
        expect(answer.status).toBe(200);
        expect(answer.body.toString()).toBe('method=POST length=10\n');
      }
    });
  });

  it('(a) cuts a body that takes longer than timeouts.client_request, holding no slot meanwhile, and frees its buffer', async () => {
    await withProxy(`${SMALL_CAPS}\ntimeouts: { client_headers: 1s, client_request: 2s }`, async (proxy) => {
      const dribbler = await connect(proxy, '127.61.5.1');
      dribbler.write(`POST /echo.cgi HTTP/1.1\r\nHost: test\r\nContent-Length: ${8 * 1024}\r\n\r\n`);
      dribbler.write(Buffer.alloc(4 * 1024, 'd'));
      await waitFor(async () => (await bufferedBytes(proxy, 'memory')) > 0);
      expect(proxy.running.slots.inFlight).toBe(0);
      const answer = await dribbler.response();
      expect(answer.status).toBe(408);
      await waitFor(async () => (await bufferedBytes(proxy, 'memory')) === 0);
    });
  });

  it('(a) applies reloaded buffering settings, and keeps temp_dir until a restart', async () => {
    await withProxy(SMALL_CAPS, async (proxy) => {
      await proxy.writePolicy(`${SMALL_CAPS}\nbuffering: { enabled: false, temp_dir: "/elsewhere" }`);
      const reloaded = await proxy.running.reload('test');
      expect(reloaded).toEqual({ ok: true, restartNeeded: ['buffering.temp_dir'] });
      const client = await connect(proxy, '127.61.6.1');
      client.write('POST /echo.cgi HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n\r\na');
      // Streamed now: the slow body holds its slot, as before buffering.
      await waitFor(async () => proxy.running.slots.inFlight === 1);
      client.write('b');
      expect((await client.response()).body.toString()).toBe('method=POST length=2\n');
    });
  });

  it('(a) sends the upstream a Content-Length for a chunked body it has buffered', async () => {
    const upstream = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => res.end(JSON.stringify({ length: req.headers['content-length'] ?? null, chunked: req.headers['transfer-encoding'] ?? null, body: Buffer.concat(chunks).toString() })));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    try {
      await withProxy('', async (proxy) => {
        const client = await connect(proxy, '127.61.4.1');
        client.write('POST /form HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
        const answer = await client.response();
        expect(JSON.parse(answer.body.toString())).toEqual({ length: '11', chunked: null, body: 'hello world' });
      }, `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`);
    } finally {
      upstream.closeAllConnections();
      await new Promise((resolve) => upstream.close(resolve));
    }
  });

  it('(b) releases the slot of clients that never read once Apache has sent its answer', async () => {
    await withProxy(SMALL_CAPS, async (proxy) => {
      const readers = await Promise.all(['127.62.1.1', '127.62.2.1'].map((address) => connect(proxy, address, { reading: false })));
      for (const client of readers) client.write('GET /big.bin HTTP/1.1\r\nHost: test\r\n\r\n');
      await waitFor(async () => (await allowedRequests(proxy)) >= 2);
      await waitFor(async () => proxy.running.slots.inFlight === 0, 10_000);
      for (const client of readers) expect(client.closed).toBe(false);
      expect((await request(proxy.url, { path: '/index.html', localAddress: '127.62.3.1' })).status).toBe(200);
      // The buffered answer arrives whole and in order once the client reads.
      const [first, second] = readers as [RawClient, RawClient];
      first.startReading();
      const answer = await first.response();
      expect(answer.status).toBe(200);
      expect(answer.body.length).toBe(BIG.length);
      expect(answer.body.equals(BIG)).toBe(true);
      second.destroy();
      await waitFor(async () => (await bufferedBytes(proxy, 'disk')) === 0 && (await bufferedBytes(proxy, 'memory')) === 0);
    });
  });

  it('(b) frees the buffers of pipelined answers once their client has gone, not at buffering.send_timeout', async () => {
    // Node never closes a response queued behind another on a connection (it has
    // no socket yet) when that connection goes: its buffered answer was held
    // until the send timeout, a way for one client to fill the buffer budgets.
    await withProxy(`${SMALL_CAPS}\nbuffering: { send_timeout: 60s }`, async (proxy) => {
      const client = await connect(proxy, '127.62.9.1', { reading: false });
      client.write('GET /big.bin?1 HTTP/1.1\r\nHost: test\r\n\r\nGET /big.bin?2 HTTP/1.1\r\nHost: test\r\n\r\n');
      await waitFor(async () => (await allowedRequests(proxy)) >= 2);
      // Both answers came from Apache and wait for the client, the second one entirely buffered.
      await waitFor(async () => proxy.running.slots.inFlight === 0 && (await bufferedBytes(proxy, 'disk')) > BIG.length, 10_000);
      client.reset();
      await waitFor(async () => (await bufferedBytes(proxy, 'disk')) === 0 && (await bufferedBytes(proxy, 'memory')) === 0);
    });
  });

  it('(b) cuts a client that takes nothing of its buffered answer for buffering.send_timeout, and frees its buffer', async () => {
    await withProxy(`${SMALL_CAPS}\nbuffering: { send_timeout: 1s }`, async (proxy) => {
      const reader = await connect(proxy, '127.62.5.1', { reading: false });
      reader.write('GET /big.bin HTTP/1.1\r\nHost: test\r\n\r\n');
      await waitFor(async () => proxy.running.slots.inFlight === 0 && (await bufferedBytes(proxy, 'disk')) > 0);
      // The client still holds its end open; the proxy has let go.
      await waitFor(async () => (await bufferedBytes(proxy, 'disk')) === 0 && (await bufferedBytes(proxy, 'memory')) === 0);
      reader.startReading();
      const answer = await reader.response();
      expect(reader.closed).toBe(true);
      expect(answer.body.length).toBeLessThan(BIG.length);
    });
  });

  it('(b) cuts the client when the upstream fails half-way through a buffered answer, so it cannot pass for a whole one', async () => {
    let failed = false;
    const upstream = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(BIG.subarray(0, 2 * 1_048_576), () => {
        failed = true;
        res.socket?.destroy();
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    try {
      await withProxy('', async (proxy) => {
        const reader = await connect(proxy, '127.62.6.1', { reading: false });
        reader.write('GET /half HTTP/1.1\r\nHost: test\r\n\r\n');
        await waitFor(async () => failed && proxy.running.slots.inFlight === 0);
        reader.startReading();
        const answer = await reader.response();
        expect(answer.complete).toBe(false);
        expect(reader.closed).toBe(true);
        await waitFor(async () => (await bufferedBytes(proxy, 'disk')) === 0 && (await bufferedBytes(proxy, 'memory')) === 0);
      }, `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`);
    } finally {
      upstream.closeAllConnections();
      await new Promise((resolve) => upstream.close(resolve));
    }
  });

  it('(b) streams paths in buffering.stream_paths both ways, holding the slot as before', async () => {
    await withProxy(`${SMALL_CAPS}\nbuffering: { stream_paths: ["/echo.cgi"] }`, async (proxy) => {
      const client = await connect(proxy, '127.62.4.1');
      client.write('POST /echo.cgi HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\n\r\nab');
      await waitFor(async () => proxy.running.slots.inFlight === 1);
      client.write('cd');
      expect((await client.response()).body.toString()).toBe('method=POST length=4\n');
    });
  });

  it('(c) passes a streaming answer on as it arrives, before the upstream has finished it', async () => {
    const events: string[] = [];
    let release = () => {};
    const upstream = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
      // The upstream finishes only once the client has the first event, or after 10 s.
      const timer = setTimeout(() => release(), 10_000);
      release = () => {
        clearTimeout(timer);
        events.push('upstream finished');
        res.end('data: last\n\n');
      };
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    try {
      await withProxy('', async (proxy) => {
        const client = await connect(proxy, '127.63.1.1');
        client.write('GET /events HTTP/1.1\r\nHost: test\r\n\r\n');
        await client.waitForText('data: first');
        events.push('client got first');
        release();
        const answer = await client.response();
        expect(answer.body.toString()).toContain('data: last');
        expect(events).toEqual(['client got first', 'upstream finished']);
      }, `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`);
    } finally {
      upstream.closeAllConnections();
      await new Promise((resolve) => upstream.close(resolve));
    }
  });

  describe('(d) budgets, with a temp dir that cannot be written', () => {
    let scratch: string;
    let unwritable: string;

    beforeAll(async () => {
      scratch = await mkdtemp(join(tmpdir(), 'portcullis-slow-'));
      // A directory below a regular file cannot be made, not even by root.
      await writeFile(join(scratch, 'not-a-dir'), '');
      unwritable = join(scratch, 'not-a-dir', 'tmp');
    });

    afterAll(async () => {
      await rm(scratch, { recursive: true, force: true });
    });

    const policy = () => `buffering: { request_memory: 64KiB, memory_total: 64KiB, temp_dir: "${unwritable}" }`;

    it('says so once at start', async () => {
      await withProxy(policy(), async (proxy) => {
        const lines = proxy.logs.filter((line) => String(line['msg']).includes('buffering.temp_dir'));
        expect(lines).toHaveLength(1);
        expect(lines[0]?.['level']).toBe(40);
      });
    });

    it('answers 413 at once for a declared body beyond the memory limit, before it is sent', async () => {
      await withProxy(policy(), async (proxy) => {
        const client = await connect(proxy, '127.64.1.1');
        client.write('POST /echo.cgi HTTP/1.1\r\nHost: test\r\nContent-Length: 1048576\r\n\r\n');
        expect((await client.response()).status).toBe(413);
      });
    });

    it('answers 413 for a chunked body once it outgrows the memory limit', async () => {
      await withProxy(policy(), async (proxy) => {
        const client = await connect(proxy, '127.64.2.1');
        client.write('POST /echo.cgi HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n');
        const chunk = Buffer.alloc(16_384, 'y');
        for (let i = 0; i < 8; i++) client.write(Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]));
        expect((await client.response()).status).toBe(413);
      });
    });

    it('answers 503 when other requests hold the memory budget', async () => {
      await withProxy(policy(), async (proxy) => {
        const holder = await connect(proxy, '127.64.3.1');
        holder.write(`POST /echo.cgi HTTP/1.1\r\nHost: test\r\nContent-Length: ${60 * 1024}\r\n\r\n`);
        holder.write(Buffer.alloc(48 * 1024, 'h'));
        await waitFor(async () => (await bufferedBytes(proxy, 'memory')) >= 48 * 1024);
        const late = await request(proxy.url, { method: 'POST', path: '/echo.cgi', body: Buffer.alloc(32 * 1024, 'l'), localAddress: '127.64.4.1' });
        expect(late.status).toBe(503);
        expect(late.headers['retry-after']).toBe('1');
        expect(await budgetExhausted(proxy, 'request')).toBe(1);
        holder.write(Buffer.alloc(12 * 1024, 'h'));
        expect((await holder.response()).body.toString()).toBe(`method=POST length=${60 * 1024}\n`);
      });
    });

    it('still serves a response larger than memory, at the client\'s pace, and counts it', async () => {
      await withProxy(policy(), async (proxy) => {
        const client = await connect(proxy, '127.64.5.1', { reading: false });
        client.write('GET /big.bin HTTP/1.1\r\nHost: test\r\n\r\n');
        await waitFor(async () => (await budgetExhausted(proxy, 'response')) === 1);
        // Streamed with backpressure, as without buffering: the slot stays taken until the client has read enough.
        expect(proxy.running.slots.inFlight).toBe(1);
        client.startReading();
        const answer = await client.response();
        expect(answer.status).toBe(200);
        expect(answer.body.equals(BIG)).toBe(true);
        await waitFor(async () => proxy.running.slots.inFlight === 0 && (await bufferedBytes(proxy, 'memory')) === 0);
      });
    });
  });

  describe('(e) temp files', () => {
    let tempDir: string;

    beforeAll(async () => {
      tempDir = await mkdtemp(join(tmpdir(), 'portcullis-spill-'));
    });

    afterAll(async () => {
      await rm(tempDir, { recursive: true, force: true });
    });

    const policy = () => `buffering: { request_memory: 64KiB, response_memory: 64KiB, temp_dir: "${tempDir}" }`;

    it('are removed at start, leaving files that are not portcullis\'s', async () => {
      await mkdir(tempDir, { recursive: true });
      await writeFile(join(tempDir, 'portcullis-spill-left-by-a-crash'), 'old');
      await writeFile(join(tempDir, 'operator-notes.txt'), 'keep me');
      await withProxy(policy(), async () => {
        expect(await readdir(tempDir)).toEqual(['operator-notes.txt']);
      });
      await rm(join(tempDir, 'operator-notes.txt'));
    });

    it('are gone, and their space freed, after an aborted upload', async () => {
      await withProxy(policy(), async (proxy) => {
        const client = await connect(proxy, '127.65.1.1');
        client.write('POST /echo.cgi HTTP/1.1\r\nHost: test\r\nContent-Length: 1048576\r\n\r\n');
        client.write(Buffer.alloc(512 * 1024, 'u'));
        await waitFor(async () => (await bufferedBytes(proxy, 'disk')) > 0);
        expect(await openFilesIn(tempDir)).toBeGreaterThan(0);
        client.reset();
        await waitFor(async () => (await bufferedBytes(proxy, 'disk')) === 0 && (await bufferedBytes(proxy, 'memory')) === 0);
        await waitFor(async () => (await openFilesIn(tempDir)) === 0);
        expect(await readdir(tempDir)).toEqual([]);
      });
    });

    it('are gone, and their space freed, after an aborted download', async () => {
      await withProxy(policy(), async (proxy) => {
        const client = await connect(proxy, '127.65.2.1', { reading: false });
        client.write('GET /big.bin HTTP/1.1\r\nHost: test\r\n\r\n');
        await waitFor(async () => proxy.running.slots.inFlight === 0 && (await bufferedBytes(proxy, 'disk')) > 0, 10_000);
        expect(await openFilesIn(tempDir)).toBeGreaterThan(0);
        client.startReading();
        await client.waitForText('000000000001000');
        client.reset();
        await waitFor(async () => (await bufferedBytes(proxy, 'disk')) === 0 && (await bufferedBytes(proxy, 'memory')) === 0);
        await waitFor(async () => (await openFilesIn(tempDir)) === 0);
        expect(await readdir(tempDir)).toEqual([]);
      });
    });
  });
});

/** One raw HTTP/1.1 exchange on a socket the test controls. */
class RawClient {
  readonly #socket: net.Socket;
  readonly #chunks: Buffer[] = [];
  #closed = false;
  readonly #waiters = new Set<() => void>();

  constructor(socket: net.Socket, reading: boolean) {
    this.#socket = socket;
    socket.on('close', () => {
      this.#closed = true;
      this.#notify();
    });
    if (reading) this.startReading();
  }

  get closed(): boolean {
    return this.#closed;
  }

  write(data: string | Buffer): void {
    this.#socket.write(data);
  }

  /** Reads from now on (until then, the kernel's buffers fill and the sender must wait). */
  startReading(): void {
    this.#socket.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#notify();
    });
  }

  destroy(): void {
    this.#socket.destroy();
  }

  /** Hangs up with a TCP reset, as a client that gives up does. */
  reset(): void {
    this.#socket.resetAndDestroy();
  }

  /** Resolves once `text` has arrived; rejects after 10 s. */
  async waitForText(text: string): Promise<void> {
    await this.#until(() => Buffer.concat(this.#chunks).includes(text));
  }

  /** The first response on the connection, once it is complete (by Content-Length, chunked end, or close); rejects after 10 s. */
  async response(): Promise<RawResponse> {
    await this.#until(() => this.#closed || Buffer.concat(this.#chunks).includes('\r\n\r\n'));
    const head = Buffer.concat(this.#chunks);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head.subarray(0, Math.max(0, head.indexOf('\r\n\r\n'))).toString('latin1'));
    if (length !== null) {
      // Counting instead of parsing on every chunk: a 16 MiB answer arrives in hundreds of them.
      const needed = head.indexOf('\r\n\r\n') + 4 + Number(length[1]);
      await this.#until(() => this.#closed || this.#received() >= needed);
    }
    let parsed: RawResponse | null = null;
    await this.#until(() => {
      parsed = parseResponse(Buffer.concat(this.#chunks), this.#closed);
      return parsed !== null;
    });
    return parsed as unknown as RawResponse;
  }

  #received(): number {
    let total = 0;
    for (const chunk of this.#chunks) total += chunk.length;
    return total;
  }

  #notify(): void {
    for (const waiter of this.#waiters) waiter();
  }

  #until(done: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`timed out; received so far: ${JSON.stringify(Buffer.concat(this.#chunks).subarray(0, 200).toString('latin1'))}`));
      }, 10_000);
      this.#waiters.add(check);
      check();
    });
  }
}

/** One parsed response; `complete` is false when the connection closed before its end (by length or last chunk). */
interface RawResponse {
  status: number;
  body: Buffer;
  complete: boolean;
}

/** Parses one HTTP/1.1 response from `data`; null while incomplete and the connection open. */
function parseResponse(data: Buffer, closed: boolean): RawResponse | null {
  const headEnd = data.indexOf('\r\n\r\n');
  if (headEnd < 0) return closed ? { status: 0, body: Buffer.alloc(0), complete: false } : null;
  const head = data.subarray(0, headEnd).toString('latin1');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
  const rest = data.subarray(headEnd + 4);
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  if (length !== null) {
    const size = Number(length[1]);
    return rest.length >= size ? { status, body: rest.subarray(0, size), complete: true } : closed ? { status, body: rest, complete: false } : null;
  }
  if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const lineEnd = rest.indexOf('\r\n', at);
      if (lineEnd < 0) return closed ? { status, body: Buffer.concat(parts), complete: false } : null;
      const size = Number.parseInt(rest.subarray(at, lineEnd).toString('latin1'), 16);
      if (size === 0) return { status, body: Buffer.concat(parts), complete: true };
      if (rest.length < lineEnd + 2 + size + 2) return closed ? { status, body: Buffer.concat(parts), complete: false } : null;
      parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
  }
  return closed ? { status, body: rest, complete: true } : null;
}

async function allowedRequests(proxy: TestProxy): Promise<number> {
  const metric = await proxy.running.registry.getSingleMetric('portcullis_requests_total')?.get();
  return (metric?.values ?? []).filter((value) => value.labels['decision'] === 'allowed').reduce((sum, value) => sum + value.value, 0);
}

async function bufferedBytes(proxy: TestProxy, store: 'memory' | 'disk'): Promise<number> {
  const metric = await proxy.running.registry.getSingleMetric('portcullis_buffer_bytes')?.get();
  const value = metric?.values.find((entry) => entry.labels['store'] === store)?.value;
  if (value === undefined) throw new Error('portcullis_buffer_bytes is not exported');
  return value;
}

async function budgetExhausted(proxy: TestProxy, side: 'request' | 'response'): Promise<number> {
  const metric = await proxy.running.registry.getSingleMetric('portcullis_buffer_budget_exhausted_total')?.get();
  return metric?.values.find((entry) => entry.labels['side'] === side)?.value ?? 0;
}

/** Files this process holds open in `dir`; the proxy runs in-process, so its temp files show here (unlinked ones too). */
async function openFilesIn(dir: string): Promise<number> {
  let count = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(join('/proc/self/fd', fd)).catch(() => '');
    if (target.startsWith(`${dir}/`)) count++;
  }
  return count;
}

/** Polls `condition` every 20 ms, at most `timeoutMs`. */
async function waitFor(condition: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  for (let i = 0; i < timeoutMs / 20; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}
