import { systemWallClock, type WallClock } from '../core/clock.js';

/** How often the line is redrawn, at most. */
const REDRAW_MS = 250;
/** Lines between two looks at the clock: reading it per line would cost more than the parse. */
const LINES_PER_LOOK = 4096;
const BAR_WIDTH = 30;

/**
 * A one-line progress report on stderr for a long replay: lines read, lines
 * per second and, when the input's size is known (files, not standard input),
 * a bar and the time left. Redrawn in place with `\r`; cleared at the end.
 */
export class ReplayProgress {
  readonly #err: NodeJS.WritableStream;
  readonly #totalBytes: number | null;
  readonly #clock: WallClock;
  readonly #startedMs: number;
  #lines = 0;
  #lastDrawMs = 0;
  #drawn = false;

  /** `totalBytes`: the inputs' size on disk, null when one is a pipe. */
  constructor(err: NodeJS.WritableStream, totalBytes: number | null, clock: WallClock = systemWallClock) {
    this.#err = err;
    this.#totalBytes = totalBytes;
    this.#clock = clock;
    this.#startedMs = clock.epochMs();
  }

  /** Counts one line; `bytesRead` is how far into the inputs (on disk) reading has got. */
  line(bytesRead: () => number): void {
    if (++this.#lines % LINES_PER_LOOK !== 0) return;
    const nowMs = this.#clock.epochMs();
    if (nowMs - this.#lastDrawMs < REDRAW_MS) return;
    this.#lastDrawMs = nowMs;
    this.#draw(nowMs, bytesRead());
  }

  /** Clears the line, so the report starts on a clean one. */
  finish(): void {
    if (this.#drawn) this.#err.write('\r\x1b[K');
  }

  #draw(nowMs: number, bytesRead: number): void {
    const seconds = Math.max(0.001, (nowMs - this.#startedMs) / 1000);
    const rate = Math.round(this.#lines / seconds);
    let text = `replay: ${this.#lines.toLocaleString('en-US')} lines, ${rate.toLocaleString('en-US')} lines/s`;
    if (this.#totalBytes !== null && this.#totalBytes > 0) {
      const done = Math.min(1, bytesRead / this.#totalBytes);
      const filled = Math.round(done * BAR_WIDTH);
      const leftS = done > 0 ? Math.round((seconds / done) * (1 - done)) : null;
      text = `replay: [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${(done * 100).toFixed(0)} %, ${this.#lines.toLocaleString('en-US')} lines, ${rate.toLocaleString('en-US')} lines/s${leftS === null ? '' : `, ${leftS} s left`}`;
    }
    this.#err.write(`\r${text}\x1b[K`);
    this.#drawn = true;
  }
}
