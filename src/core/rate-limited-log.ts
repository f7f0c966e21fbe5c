import type { Logger } from 'pino';
import type { Clock } from './clock.js';

/**
 * Logs an event at most once per interval per kind, counting what it held
 * back: when Apache is down every request fails, and a log line per request
 * would bury the one line that matters. The number of kinds must be small and
 * fixed (outcome names, never client addresses).
 */
export class RateLimitedLog {
  readonly #last = new Map<string, { atMs: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly clock: Clock,
    private readonly intervalMs = 10_000,
  ) {}

  /** Logs `message` with `fields` at warn, unless `kind` was logged less than an interval ago. */
  warn(kind: string, fields: Record<string, unknown>, message: string): void {
    const now = this.clock.nowMs();
    const last = this.#last.get(kind);
    if (last !== undefined && now - last.atMs < this.intervalMs) {
      last.suppressed++;
      return;
    }
    this.logger.warn({ ...fields, kind, suppressedSinceLast: last?.suppressed ?? 0 }, message);
    this.#last.set(kind, { atMs: now, suppressed: 0 });
  }
}
