import type { WriteStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { systemClock, type Clock } from '../core/clock.js';
import { systemTimers, type TimerHandle, type Timers } from '../core/timers.js';
import { RateLimitedLog } from '../core/rate-limited-log.js';
import { accessLogMetrics, type AccessLogMetrics } from '../metrics/access-log-metrics.js';
import { openForAppend } from './access-log-file.js';
import { formatCombinedLine, formatVhostCombinedLine, type AccessLogEntry } from './access-log-format.js';

export type { AccessLogEntry } from './access-log-format.js';

/** What an access log needs besides its path. */
export interface AccessLogDeps {
  readonly logger: Logger;
  /** Where `portcullis_access_log_*` metrics are registered (once per registry, shared by successive logs). */
  readonly registry: Registry;
  /** Paces warnings and retries after a write error. @default systemClock */
  readonly clock?: Clock;
  /** Ends each batch of lines after ACCESS_LOG_FLUSH_MS (see `record`). @default systemTimers */
  readonly timers?: Timers;
  /**
   * Bytes accepted but not yet written to the file above which new lines are
   * dropped (and counted) rather than queued: when the disk stalls, memory
   * stays bounded and requests are still served. 4 MiB is ~15k lines of
   * ~250 bytes, seconds of traffic at full speed: a judgement call between
   * riding out a hiccup and holding memory for a dead disk.
   * @default 4 MiB
   */
  readonly maxBufferedBytes?: number;
  /** Apache's `combined`, or `vhost_combined` with the site's host and port first. @default 'combined' */
  readonly format?: 'combined' | 'vhost_combined';
  /** After a write error, how long before a logged request tries to reopen the file. @default 10_000 */
  readonly retryAfterErrorMs?: number;
  /**
   * Whether the proxy also logs the requests it answered itself (refusals,
   * bans, 503s), each with a trailing `"portcullis:KIND:DETAIL"` field
   * (`access_log_refused`). Off, the log is what Apache would write.
   * @default false
   */
  readonly refusals?: boolean;
}

/**
 * Lines are held this long before they go to the file, together, as one
 * string. A write through the thread pool costs about 65 µs of CPU (25 on
 * the event loop) whatever it holds; written at the end of each turn, as
 * before, it held two or three lines under load, and the write alone was 6 %
 * of the proxy's main-thread CPU (0.4 % now). A crash loses at most this
 * much of the log; a clean stop loses nothing.
 */
export const ACCESS_LOG_FLUSH_MS = 100;
/** A batch this large goes out at once, without waiting for the interval. */
export const ACCESS_LOG_FLUSH_BYTES = 64 * 1024;
const DEFAULT_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
const DEFAULT_RETRY_AFTER_ERROR_MS = 10_000;

/**
 * An Apache `combined`-format log of forwarded requests (and, with
 * `refusals`, of those portcullis answered itself), appended to a file.
 * `record()` never blocks or throws: lines are held for up to
 * ACCESS_LOG_FLUSH_MS (or ACCESS_LOG_FLUSH_BYTES) and go to the file as one
 * write (and the stream batches more while that write is in flight); when
 * the disk falls behind by more than `maxBufferedBytes`, or
 * after a write error, lines are dropped and counted instead, and a warning
 * is logged at most every 10 s.
 * After a write error the next logged request at least `retryAfterErrorMs`
 * later reopens the file, so logging resumes once the disk has room again.
 */
export class AccessLog {
  /** The file written to; reopened by name on `reopen()`. */
  readonly path: string;
  /** Requests portcullis answered itself are logged too (`access_log_refused`). */
  readonly refusals: boolean;
  /** Whether lines start with `%v:%p` (vhost_combined), so recorders work out the vhost only then. */
  readonly namesVhost: boolean;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #metrics: AccessLogMetrics;
  readonly #warnings: RateLimitedLog;
  readonly #maxBufferedBytes: number;
  readonly #format: (entry: AccessLogEntry) => string;
  readonly #retryAfterErrorMs: number;
  readonly #unobserve: () => void;
  /** The current file; null after a write error (until a reopen) and after close. */
  #stream: WriteStream | null = null;
  /** Replaced or closed streams still flushing, each with the promise of its end. */
  readonly #draining = new Map<WriteStream, Promise<void>>();
  #brokenAtMs = 0;
  #retrying = false;
  #closed: Promise<void> | null = null;
  /** Lines of the batch being held for the current stream, and their bytes (lines are ASCII: escaped). */
  #held: string[] = [];
  #heldBytes = 0;
  /** The timer that ends the held batch, if one is pending. */
  #flushTimer: TimerHandle | null = null;
  /** Opens run one at a time, so two SIGHUPs cannot race to install a stream. */
  #opening: Promise<void> = Promise.resolve();

  private constructor(path: string, deps: AccessLogDeps, handle: FileHandle) {
    this.path = path;
    this.refusals = deps.refusals ?? false;
    this.namesVhost = deps.format === 'vhost_combined';
    this.#logger = deps.logger;
    this.#clock = deps.clock ?? systemClock;
    this.#timers = deps.timers ?? systemTimers;
    this.#metrics = accessLogMetrics(deps.registry);
    this.#warnings = new RateLimitedLog(deps.logger, this.#clock);
    this.#maxBufferedBytes = deps.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.#format = deps.format === 'vhost_combined' ? (entry) => formatVhostCombinedLine(entry) : (entry) => formatCombinedLine(entry);
    this.#retryAfterErrorMs = deps.retryAfterErrorMs ?? DEFAULT_RETRY_AFTER_ERROR_MS;
    this.#install(handle);
    this.#unobserve = this.#metrics.observeBufferedBytes(() => this.bufferedBytes);
  }

  /**
   * Opens `path` for appending, creating it with mode 0640 (less the umask) if
   * absent; an existing file keeps its mode and content. Rejects with an Error
   * naming the path and errno code (EACCES, ENOENT, EISDIR…) when it cannot.
   */
  static async open(path: string, deps: AccessLogDeps): Promise<AccessLog> {
    checkPositiveInteger('maxBufferedBytes', deps.maxBufferedBytes);
    checkPositiveInteger('retryAfterErrorMs', deps.retryAfterErrorMs);
    return new AccessLog(path, deps, await openForAppend(path));
  }

  /** Bytes accepted but not yet written, over the current file and any still flushing. */
  get bufferedBytes(): number {
    let total = this.#heldBytes + (this.#stream?.writableLength ?? 0);
    for (const stream of this.#draining.keys()) total += stream.writableLength;
    return total;
  }

  /**
   * Queues one line. Synchronous and cheap; never throws and never waits for
   * the disk. The line is dropped (and counted by reason) when the buffer is
   * over its bound, after a write error until the file is reopened, and after
   * `close()`.
   */
  record(entry: AccessLogEntry): void {
    const stream = this.#stream;
    if (stream === null) {
      this.#drop(this.#closed !== null ? 'closed' : 'unwritable');
      if (this.#closed === null) this.#maybeRetry();
      return;
    }
    // Checked before formatting, so a stalled disk costs no formatting either;
    // the bound can be passed by at most one line.
    if (this.#heldBytes + stream.writableLength >= this.#maxBufferedBytes) {
      this.#drop('buffer_full');
      this.#warnings.warn(
        'access_log_buffer_full',
        { path: this.path, maxBufferedBytes: this.#maxBufferedBytes },
        'access log: the disk is not keeping up, dropping lines (counted in portcullis_access_log_dropped_lines_total)',
      );
      return;
    }
    // Lines are held and go out as one write: a write costs the same CPU
    // for one line as for hundreds (see ACCESS_LOG_FLUSH_MS).
    if (this.#flushTimer === null) this.#flushTimer = this.#timers.setTimeout(() => this.#flush(stream), ACCESS_LOG_FLUSH_MS);
    const line = `${this.#format(entry)}\n`;
    this.#held.push(line);
    this.#heldBytes += line.length;
    this.#metrics.lines.inc();
    if (this.#heldBytes >= ACCESS_LOG_FLUSH_BYTES) this.#flush(stream);
  }

  /**
   * Reopens the file by name, for log rotation: after logrotate renames the
   * file and sends SIGHUP, new lines go to a fresh file at `path`, while lines
   * already queued still flush to the renamed one. Also recovers from a write
   * error at once. If the path cannot be opened, rejects (naming path and
   * errno) and logging continues to the file already open, if any.
   */
  reopen(): Promise<void> {
    return this.#exclusively(async () => {
      if (this.#closed !== null) return;
      let handle: FileHandle;
      try {
        handle = await openForAppend(this.path);
      } catch (error) {
        this.#metrics.errors.inc({ operation: 'open' });
        throw error;
      }
      const previous = this.#stream;
      this.#install(handle);
      if (previous !== null) this.#retire(previous);
    });
  }

  /** Stops taking lines and resolves once everything queued is written (or failed) and the file is closed. Idempotent. */
  close(): Promise<void> {
    if (this.#closed === null) {
      const current = this.#stream;
      if (current !== null) this.#flush(current);
      this.#stream = null;
      if (current !== null) this.#retire(current);
      // A reopen in flight sees #closed and closes what it opened.
      this.#closed = this.#opening.then(async () => {
        await Promise.all(this.#draining.values());
        this.#unobserve();
      });
    }
    return this.#closed;
  }

  /** Hands the held batch to `stream`, if it is still the current one (a failed stream's batch was dropped with it). */
  #flush(stream: WriteStream): void {
    if (stream !== this.#stream) return;
    const held = this.#held;
    this.#endBatch();
    if (held.length > 0) stream.write(held.join(''));
  }

  #endBatch(): void {
    if (this.#flushTimer !== null) this.#timers.clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    this.#held = [];
    this.#heldBytes = 0;
  }

  #install(handle: FileHandle): void {
    if (this.#closed !== null) {
      void handle.close().catch(() => {});
      return;
    }
    const stream = handle.createWriteStream();
    // Without a listener an 'error' event would crash the process.
    stream.on('error', (error: NodeJS.ErrnoException) => this.#onWriteError(stream, error));
    if (this.#stream !== null) this.#flush(this.#stream);
    this.#endBatch();
    this.#stream = stream;
  }

  /** Ends a stream that takes no more lines, keeping it counted until it has flushed. */
  #retire(stream: WriteStream): void {
    stream.end();
    const done = finished(stream)
      .catch(() => {}) // already logged and counted by the 'error' listener
      .finally(() => this.#draining.delete(stream));
    this.#draining.set(stream, done);
  }

  #onWriteError(stream: WriteStream, error: NodeJS.ErrnoException): void {
    this.#metrics.errors.inc({ operation: 'write' });
    this.#warnings.warn(
      'access_log_write_error',
      { path: this.path, code: error.code, err: error.message, lostBytes: stream.writableLength + (stream === this.#stream ? this.#heldBytes : 0) },
      `access log: cannot write ${this.path} (${error.code ?? error.message}); lines are dropped until it reopens`,
    );
    // The stream destroys itself on error; what it held is lost.
    if (stream === this.#stream) {
      this.#endBatch();
      this.#stream = null;
      this.#brokenAtMs = this.#clock.nowMs();
    }
  }

  /** After a write error, tries to reopen at most once per `retryAfterErrorMs`, driven by traffic (no timer). */
  #maybeRetry(): void {
    if (this.#retrying || this.#clock.nowMs() - this.#brokenAtMs < this.#retryAfterErrorMs) return;
    this.#retrying = true;
    void this.#exclusively(async () => {
      if (this.#closed !== null || this.#stream !== null) return;
      try {
        this.#install(await openForAppend(this.path));
        this.#logger.info({ path: this.path }, 'access log: reopened after a write error');
      } catch (error) {
        this.#metrics.errors.inc({ operation: 'open' });
        this.#warnings.warn('access_log_open_error', { path: this.path, err: (error as Error).message }, (error as Error).message);
        this.#brokenAtMs = this.#clock.nowMs();
      }
    }).finally(() => {
      this.#retrying = false;
    });
  }

  #drop(reason: 'buffer_full' | 'unwritable' | 'closed'): void {
    this.#metrics.dropped.inc({ reason });
  }

  /** Runs `task` after every earlier open has finished; a failure does not block later ones. */
  #exclusively(task: () => Promise<void>): Promise<void> {
    const run = this.#opening.then(task);
    this.#opening = run.catch(() => {});
    return run;
  }
}

function checkPositiveInteger(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) {
    throw new RangeError(`AccessLog: ${name} must be a positive integer, got ${value}`);
  }
}
