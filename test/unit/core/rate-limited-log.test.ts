import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { RateLimitedLog } from '../../../src/core/rate-limited-log.js';
import { capturingLogger } from '../../support/captured-log.js';

describe('RateLimitedLog', () => {
  it('logs each kind once per interval and reports how many it held back', () => {
    const lines: Record<string, unknown>[] = [];
    const clock = new ManualClock();
    const log = new RateLimitedLog(capturingLogger((entry) => lines.push(entry)), clock, 1000);
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
