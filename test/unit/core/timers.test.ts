import { describe, expect, it } from 'vitest';
import { ManualTimers } from '../../../src/core/timers.js';

describe('ManualTimers', () => {
  it('runs timeouts that fall due, in order, with the clock at each due time', () => {
    const timers = new ManualTimers(100);
    const ran: string[] = [];
    timers.setTimeout(() => ran.push(`b@${timers.nowMs()}`), 50);
    timers.setTimeout(() => ran.push(`a@${timers.nowMs()}`), 20);
    timers.setTimeout(() => ran.push(`c@${timers.nowMs()}`), 20);
    timers.advance(49);
    expect(ran).toEqual(['a@120', 'c@120']);
    expect(timers.nowMs()).toBe(149);
    timers.advance(1);
    expect(ran).toEqual(['a@120', 'c@120', 'b@150']);
    expect(timers.pending).toBe(0);
  });

  it('repeats intervals until cleared, and never runs a cleared timer', () => {
    const timers = new ManualTimers();
    let ticks = 0;
    const interval = timers.setInterval(() => ticks++, 10);
    const cancelled = timers.setTimeout(() => ticks += 100, 5);
    timers.clearTimeout(cancelled);
    timers.advance(35);
    expect(ticks).toBe(3);
    timers.clearInterval(interval);
    timers.advance(100);
    expect(ticks).toBe(3);
  });

  it('runs a timer set by a callback in the same advance when it falls due within it', () => {
    const timers = new ManualTimers();
    const ran: number[] = [];
    timers.setTimeout(() => timers.setTimeout(() => ran.push(timers.nowMs()), 10), 10);
    timers.advance(25);
    expect(ran).toEqual([20]);
  });

  it('runs an immediate at the next advance, even advance(0), before timers due later', () => {
    const timers = new ManualTimers();
    const ran: string[] = [];
    timers.setTimeout(() => ran.push('timeout'), 1);
    timers.setImmediate(() => ran.push('immediate'));
    expect(ran).toEqual([]);
    timers.advance(0);
    expect(ran).toEqual(['immediate']);
    timers.advance(1);
    expect(ran).toEqual(['immediate', 'timeout']);
  });

  it('refuses to go backwards', () => {
    expect(() => new ManualTimers().advance(-1)).toThrow(RangeError);
  });
});
