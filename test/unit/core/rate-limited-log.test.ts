import { pino } from 'pino';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { RateLimitedLog } from '../../../src/core/rate-limited-log.js';

describe('RateLimitedLog', () => {
  it('logs each kind once per interval and reports how many it held back', () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        callback();
      },
    });
    const clock = new ManualClock();
    const log = new RateLimitedLog(pino(sink), clock, 1000);
    for (let i = 0; i < 5; i++) log.warn('upstream_unreachable', {}, 'down');
    log.warn('upstream_timeout', {}, 'slow');
    clock.advance(1000);
    log.warn('upstream_unreachable', {}, 'down');
    expect(lines.map((line) => [line['kind'], line['suppressedSinceLast']])).toEqual([
      ['upstream_unreachable', 0],
      ['upstream_timeout', 0],
      ['upstream_unreachable', 4],
    ]);
  });
});
