import { Counter, Gauge, type Registry } from 'prom-client';

/** Why a line did not reach the access log. */
export type AccessLogDropReason = 'buffer_full' | 'unwritable' | 'closed';
const DROP_REASONS: readonly AccessLogDropReason[] = ['buffer_full', 'unwritable', 'closed'];

/** Which file operation failed. */
export type AccessLogOperation = 'open' | 'write';
const OPERATIONS: readonly AccessLogOperation[] = ['open', 'write'];

/**
 * Metrics of the access log. One set per registry: a policy reload that moves
 * the log closes one AccessLog and opens another, and prom-client refuses to
 * register a metric name twice, so {@link accessLogMetrics} hands out the
 * registry's existing set.
 */
export class AccessLogMetrics {
  readonly lines: Counter;
  readonly dropped: Counter<'reason'>;
  readonly errors: Counter<'operation'>;
  readonly bufferedBytes: Gauge;
  /** Buffered-byte readers of the open logs; normally one. */
  readonly #sources = new Set<() => number>();

  constructor(registry: Registry) {
    const sources = this.#sources;
    this.lines = new Counter({
      name: 'portcullis_access_log_lines_total',
      help: 'Lines accepted for writing to the access log.',
      registers: [registry],
    });
    this.dropped = new Counter({
      name: 'portcullis_access_log_dropped_lines_total',
      help: 'Access log lines dropped: buffer_full (the disk is not keeping up), unwritable (after a write error, until the file reopens), closed (after shutdown).',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.errors = new Counter({
      name: 'portcullis_access_log_errors_total',
      help: 'Access log files that failed to open (on reopen or retry) or to take a write, by operation.',
      labelNames: ['operation'],
      registers: [registry],
    });
    this.bufferedBytes = new Gauge({
      name: 'portcullis_access_log_buffered_bytes',
      help: 'Access log bytes accepted but not yet written to the file; near the bound, lines start being dropped.',
      registers: [registry],
      // Read on scrape from the streams themselves, so it can never drift.
      collect() {
        let total = 0;
        for (const read of sources) total += read();
        this.set(total);
      },
    });
    // Every series exists from the start, so rate() and alerts see 0 rather than nothing.
    for (const reason of DROP_REASONS) this.dropped.inc({ reason }, 0);
    for (const operation of OPERATIONS) this.errors.inc({ operation }, 0);
  }

  /** Adds a source to the buffered-bytes gauge; returns the function that removes it. */
  observeBufferedBytes(read: () => number): () => void {
    this.#sources.add(read);
    return () => this.#sources.delete(read);
  }
}

const byRegistry = new WeakMap<Registry, AccessLogMetrics>();

/** The access log metrics of `registry`, created and registered on first use. */
export function accessLogMetrics(registry: Registry): AccessLogMetrics {
  let metrics = byRegistry.get(registry);
  if (metrics === undefined) {
    metrics = new AccessLogMetrics(registry);
    byRegistry.set(registry, metrics);
  }
  return metrics;
}
