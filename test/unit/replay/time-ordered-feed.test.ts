import { describe, expect, it } from 'vitest';
import type { LoggedRequest } from '../../../src/replay/access-log-line.js';
import { TimeOrderedFeed } from '../../../src/replay/time-ordered-feed.js';

/** A feed whose due requests are collected: `push` and `drain` return what each released. */
function collecting(windowS: number, maxBuffered?: number) {
  const feed = new TimeOrderedFeed(windowS, maxBuffered);
  let due: { request: LoggedRequest; atMs: number }[] = [];
  const take = () => {
    const released = due;
    due = [];
    return released;
  };
  const into = (request: LoggedRequest, atMs: number) => due.push({ request, atMs });
  return {
    push: (request: LoggedRequest) => (feed.push(request, into), take()),
    drain: () => (feed.drain(into), take()),
    get late() {
      return feed.late;
    },
  };
}

const at = (second: number, client = 'a'): LoggedRequest => ({ vhost: null, client, epochMs: second * 1000, method: 'GET', target: '/', status: 200, userAgent: null });

describe('TimeOrderedFeed', () => {
  it('releases a second once a line windowS later is seen, in time order, lines out of order within the window put back', () => {
    const feed = collecting(2);
    expect(feed.push(at(10))).toEqual([]);
    expect(feed.push(at(12)).map((timed) => timed.atMs)).toEqual([10_000]);
    // Logged after a later line (a slow request): still in time for second 11.
    expect(feed.push(at(11))).toEqual([]);
    expect(feed.push(at(13)).map((timed) => timed.atMs)).toEqual([11_000]);
    expect(feed.drain().map((timed) => timed.atMs)).toEqual([12_000, 13_000]);
    expect(feed.late).toBe(0);
  });

  it('spreads the requests of one second evenly across it', () => {
    const feed = collecting(1);
    for (let i = 0; i < 4; i++) feed.push(at(5, `c${i}`));
    expect(feed.drain().map((timed) => [timed.request.client, timed.atMs])).toEqual([['c0', 5000], ['c1', 5250], ['c2', 5500], ['c3', 5750]]);
  });

  it('decides a line later than the window at the first open second, and counts it', () => {
    const feed = collecting(1);
    feed.push(at(1));
    feed.push(at(3));
    const due = [...feed.push(at(1, 'late')), ...feed.drain()];
    expect(feed.late).toBe(1);
    expect(due.find((timed) => timed.request.client === 'late')?.atMs).toBeGreaterThanOrEqual(2000);
  });

  it('holds at most maxBuffered lines, releasing the oldest second early', () => {
    const feed = collecting(60, 3);
    feed.push(at(1));
    feed.push(at(2));
    feed.push(at(3));
    expect(feed.push(at(4)).map((timed) => timed.atMs)).toEqual([1000]);
  });
});
