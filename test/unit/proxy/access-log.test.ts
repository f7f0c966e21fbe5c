import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { ManualTimers } from '../../../src/core/timers.js';
import { formatCombinedLine } from '../../../src/proxy/access-log-format.js';
import { ACCESS_LOG_FLUSH_BYTES, ACCESS_LOG_FLUSH_MS, AccessLog, type AccessLogDeps, type AccessLogEntry } from '../../../src/proxy/access-log.js';
import { capturingLogger } from '../../support/captured-log.js';

let dir: string;
let registry: Registry;
let clock: ManualClock;
let logs: Record<string, unknown>[];
const opened: AccessLog[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portcullis-access-log-'));
  registry = new Registry();
  clock = new ManualClock();
  logs = [];
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((log) => log.close()));
  await rm(dir, { recursive: true, force: true });
});

function deps(overrides: Partial<AccessLogDeps> = {}): AccessLogDeps {
  return { logger: capturingLogger((entry) => logs.push(entry)), registry, clock, ...overrides };
}

async function openLog(path: string, overrides: Partial<AccessLogDeps> = {}): Promise<AccessLog> {
  const log = await AccessLog.open(path, deps(overrides));
  opened.push(log);
  return log;
}

/** Entries of equal length, so the buffer arithmetic below is exact. */
function entry(n: number): AccessLogEntry {
  return { clientIp: '192.0.2.1', epochMs: Date.UTC(2026, 10, 25, 11, 27, 10), method: 'GET', target: `/page/${String(n).padStart(3, '0')}`, httpVersion: '1.1', status: 200, bytes: 512, userAgent: 'test' };
}

async function linesOf(path: string): Promise<string[]> {
  return (await readFile(path, 'latin1')).split('\n').filter((line) => line !== '');
}

/** The value of one series, or undefined when it does not exist. */
async function metric(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const family = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const series = family?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return series?.value;
}

/** Waits for an asynchronous file event (a write failing); polls, never sleeps a fixed time. */
async function until(condition: () => Promise<boolean>): Promise<void> {
  await vi.waitFor(async () => expect(await condition()).toBe(true), { timeout: 5_000, interval: 5 });
}

/**
 * Gives a write already handed to the file time to land, so that its
 * absence means none was made: four writes of a marker file, each a round
 * trip through the thread pool that file writes take.
 */
async function settleFileWrites(): Promise<void> {
  for (let i = 0; i < 4; i++) await writeFile(join(dir, 'marker'), String(i));
}

describe('AccessLog', () => {
  it('creates the file with mode 0640, writes one combined line per record, and flushes on close', async () => {
    const path = join(dir, 'access.log');
    const log = await openLog(path);
    for (let n = 0; n < 1000; n++) log.record(entry(n));
    await log.close();
    const lines = await linesOf(path);
    expect(lines).toHaveLength(1000);
    expect(lines[7]).toBe(formatCombinedLine(entry(7)));
    expect((await stat(path)).mode & 0o777).toBe(0o640 & ~process.umask());
    expect(await metric('portcullis_access_log_lines_total')).toBe(1000);
  });

  it('appends to an existing file and leaves its mode alone', async () => {
    const path = join(dir, 'access.log');
    await writeFile(path, 'earlier line\n', { mode: 0o600 });
    const log = await openLog(path);
    log.record(entry(1));
    await log.close();
    expect(await linesOf(path)).toEqual(['earlier line', formatCombinedLine(entry(1))]);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('refuses to open a path it cannot write, naming the path and the errno code', async () => {
    const path = join(dir, 'missing-dir', 'access.log');
    await expect(AccessLog.open(path, deps())).rejects.toThrow(`cannot open access log ${path} for appending: ENOENT`);
    await expect(AccessLog.open(dir, deps())).rejects.toThrow(/EISDIR/);
  });

  it('refuses an unbounded or nonsensical buffer', async () => {
    await expect(AccessLog.open(join(dir, 'a.log'), deps({ maxBufferedBytes: 0 }))).rejects.toThrow(/maxBufferedBytes must be a positive integer, got 0/);
    await expect(AccessLog.open(join(dir, 'a.log'), deps({ maxBufferedBytes: Infinity }))).rejects.toThrow(RangeError);
  });

  it('holds lines for the flush interval and writes them together, so they reach the file without a close', async () => {
    const path = join(dir, 'access.log');
    const timers = new ManualTimers();
    const log = await openLog(path, { timers });
    for (let n = 0; n < 100; n++) log.record(entry(n));
    expect(log.bufferedBytes).toBe(100 * (formatCombinedLine(entry(0)).length + 1));
    // Not at the end of the turn: a write per turn cost ~65 µs of CPU for two or three lines under load.
    timers.advance(ACCESS_LOG_FLUSH_MS - 1);
    await settleFileWrites();
    expect(await linesOf(path)).toHaveLength(0);
    timers.advance(1);
    await until(async () => (await linesOf(path)).length === 100);
    for (let n = 100; n < 150; n++) log.record(entry(n));
    timers.advance(ACCESS_LOG_FLUSH_MS);
    await until(async () => (await linesOf(path)).length === 150);
    expect((await linesOf(path))[120]).toBe(formatCombinedLine(entry(120)));
    await log.close();
  });

  it('writes as soon as a batch reaches ACCESS_LOG_FLUSH_BYTES, before the interval is up', async () => {
    const path = join(dir, 'access.log');
    const timers = new ManualTimers();
    const log = await openLog(path, { timers });
    const lineBytes = formatCombinedLine(entry(0)).length + 1;
    const count = Math.ceil(ACCESS_LOG_FLUSH_BYTES / lineBytes);
    for (let n = 0; n < count; n++) log.record(entry(n % 1000));
    // No timer has run: the batch went out because of its size.
    await until(async () => (await linesOf(path)).length === count);
    await log.close();
  });

  it('drops and counts lines once the unwritten buffer reaches its bound, warning once per interval', async () => {
    const path = join(dir, 'access.log');
    const maxBufferedBytes = 1000;
    const log = await openLog(path, { maxBufferedBytes });
    const lineBytes = formatCombinedLine(entry(0)).length + 1;
    // All in one tick: no write can complete, as with a disk that has stalled.
    for (let n = 0; n < 50; n++) log.record(entry(n));
    const accepted = Math.ceil(maxBufferedBytes / lineBytes);
    expect(log.bufferedBytes).toBe(accepted * lineBytes);
    clock.advance(10_000);
    log.record(entry(50));

    expect(await metric('portcullis_access_log_lines_total')).toBe(accepted);
    expect(await metric('portcullis_access_log_dropped_lines_total', { reason: 'buffer_full' })).toBe(51 - accepted);
    const warnings = logs.filter((line) => line['kind'] === 'access_log_buffer_full');
    expect(warnings.map((w) => w['suppressedSinceLast'])).toEqual([0, 50 - accepted - 1]);

    // Once the disk catches up, lines are taken again.
    await until(async () => log.bufferedBytes === 0);
    log.record(entry(99));
    await log.close();
    expect((await linesOf(path)).map((line) => /GET (\S+)/.exec(line)?.[1])).toEqual([
      ...Array.from({ length: accepted }, (_, n) => `/page/${String(n).padStart(3, '0')}`),
      '/page/099',
    ]);
  });

  it('logs and counts a write error, drops lines while unwritable, and reopens after the retry interval', async () => {
    // /dev/full takes the open and fails every write with ENOSPC: a full disk.
    const log = await openLog('/dev/full', { retryAfterErrorMs: 5_000 });
    log.record(entry(1));
    await until(async () => (await metric('portcullis_access_log_errors_total', { operation: 'write' })) === 1);
    expect(logs.find((line) => line['kind'] === 'access_log_write_error')).toMatchObject({ code: 'ENOSPC', path: '/dev/full' });

    log.record(entry(2));
    clock.advance(4_999);
    log.record(entry(3));
    expect(await metric('portcullis_access_log_dropped_lines_total', { reason: 'unwritable' })).toBe(2);
    expect(logs.some((line) => line['msg'] === 'access log: reopened after a write error')).toBe(false);

    clock.advance(1);
    log.record(entry(4)); // dropped too, but starts the reopen
    await until(async () => logs.some((line) => line['msg'] === 'access log: reopened after a write error'));
    log.record(entry(5));
    await until(async () => (await metric('portcullis_access_log_errors_total', { operation: 'write' })) === 2);
    expect(await metric('portcullis_access_log_lines_total')).toBe(2);
  });

  it('reopen() after logrotate renamed the file writes to a fresh file at the path', async () => {
    const path = join(dir, 'access.log');
    const log = await openLog(path);
    log.record(entry(1));
    log.record(entry(2));
    await rename(path, `${path}.1`);
    log.record(entry(3)); // written before the SIGHUP: belongs to the rotated file
    await log.reopen();
    log.record(entry(4));
    await log.close();
    expect(await linesOf(`${path}.1`)).toEqual([1, 2, 3].map((n) => formatCombinedLine(entry(n))));
    expect(await linesOf(path)).toEqual([formatCombinedLine(entry(4))]);
    expect((await stat(path)).mode & 0o777).toBe(0o640 & ~process.umask());
  });

  it('keeps writing to the open file when reopen() cannot open the path', async () => {
    const path = join(dir, 'access.log');
    const log = await openLog(path);
    await rename(path, `${path}.1`);
    await mkdir(path); // something in the way
    await expect(log.reopen()).rejects.toThrow(/EISDIR/);
    expect(await metric('portcullis_access_log_errors_total', { operation: 'open' })).toBe(1);
    log.record(entry(1));
    await log.close();
    expect(await linesOf(`${path}.1`)).toEqual([formatCombinedLine(entry(1))]);
  });

  it('counts lines recorded after close, and closes only once', async () => {
    const log = await openLog(join(dir, 'access.log'));
    const first = log.close();
    expect(log.close()).toBe(first);
    await first;
    log.record(entry(1));
    expect(await metric('portcullis_access_log_dropped_lines_total', { reason: 'closed' })).toBe(1);
  });

  it('lets a replacement log share the registry (a reload moving the file)', async () => {
    const first = await openLog(join(dir, 'a.log'));
    first.record(entry(1));
    await first.close();
    const second = await openLog(join(dir, 'b.log'));
    second.record(entry(2));
    await second.close();
    expect(await metric('portcullis_access_log_lines_total')).toBe(2);
    expect(await metric('portcullis_access_log_buffered_bytes')).toBe(0);
    expect(await metric('portcullis_access_log_dropped_lines_total', { reason: 'buffer_full' })).toBe(0);
  });
});
