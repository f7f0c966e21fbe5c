import type { LoggedRequest } from './access-log-line.js';

/** Told of each request due, in time order, with the instant it is decided at (ms since the epoch, spread within its logged second). */
export type DueRequest = (request: LoggedRequest, atMs: number) => void;

/**
 * Puts log lines back in time order. Apache writes a line when a request
 * ends, stamped with when it began, so lines arrive out of order by up to the
 * longest request: a second is released once a line `windowS` seconds later
 * has been seen. The requests of one second are spread evenly across it
 * (Apache logs to the second), so a burst of 300 in a second is 300 arrivals
 * 3.3 ms apart, not 300 at one instant. Memory: the lines of `windowS`
 * seconds, and at most `maxBuffered` in all (past it the oldest second goes
 * early). Due requests go to a callback rather than into a returned array:
 * a replay pushes hundreds of thousands of lines a second.
 */
export class TimeOrderedFeed {
  readonly #bySecond = new Map<number, LoggedRequest[]>();
  readonly #windowS: number;
  readonly #maxBuffered: number;
  #buffered = 0;
  #latestSecond = Number.NEGATIVE_INFINITY;
  #releasedUpTo = Number.NEGATIVE_INFINITY;
  /** The oldest second held, so a push with nothing due costs no scan. */
  #oldestHeld = Number.POSITIVE_INFINITY;
  /** Lines older than a second already released: too late even for the window. */
  late = 0;

  constructor(windowS: number, maxBuffered = 1_000_000) {
    this.#windowS = windowS;
    this.#maxBuffered = maxBuffered;
  }

  /** Adds a line; the requests now due go to `due`, in time order. */
  push(request: LoggedRequest, due: DueRequest): void {
    let second = Math.floor(request.epochMs / 1000);
    if (second <= this.#releasedUpTo) {
      // Decided at the first instant still open, rather than dropped.
      this.late++;
      second = this.#releasedUpTo + 1;
    }
    let list = this.#bySecond.get(second);
    if (list === undefined) this.#bySecond.set(second, (list = []));
    list.push(request);
    this.#buffered++;
    if (second > this.#latestSecond) this.#latestSecond = second;
    if (second < this.#oldestHeld) this.#oldestHeld = second;
    if (this.#oldestHeld <= this.#latestSecond - this.#windowS) this.#release(this.#latestSecond - this.#windowS, due);
    while (this.#buffered > this.#maxBuffered) this.#release(this.#oldestHeld, due);
  }

  /** Everything still held, in time order (end of input). */
  drain(due: DueRequest): void {
    this.#release(Number.POSITIVE_INFINITY, due);
  }

  #release(upToSecond: number, due: DueRequest): void {
    const seconds = [...this.#bySecond.keys()].filter((second) => second <= upToSecond).sort((a, b) => a - b);
    for (const second of seconds) {
      const list = this.#bySecond.get(second) as LoggedRequest[];
      this.#bySecond.delete(second);
      this.#buffered -= list.length;
      this.#releasedUpTo = Math.max(this.#releasedUpTo, second);
      for (let index = 0; index < list.length; index++) due(list[index] as LoggedRequest, second * 1000 + Math.floor((index * 1000) / list.length));
    }
    let oldest = Number.POSITIVE_INFINITY;
    for (const second of this.#bySecond.keys()) if (second < oldest) oldest = second;
    this.#oldestHeld = oldest;
  }
}
