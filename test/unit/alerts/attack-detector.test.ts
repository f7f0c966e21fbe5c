import { describe, expect, it } from 'vitest';
import { ATTACK_QUIET_MS, AttackDetector } from '../../../src/alerts/attack-detector.js';

/** Records `perSecond` refusals in each second from `fromMs` (inclusive) to `toMs` (exclusive), polling after each. */
function flood(detector: AttackDetector, perSecond: number, fromMs: number, toMs: number) {
  const events = [];
  for (let t = fromMs; t < toMs; t += 1000) {
    detector.record(perSecond, t);
    const event = detector.poll(t);
    if (event !== null) events.push({ t, event });
  }
  return events;
}

describe('AttackDetector: start', () => {
  it('starts when the rate averaged over 10 s reaches the threshold, not before', () => {
    const detector = new AttackDetector(50);
    // 100 refusals a second: the 10 s average is 10, 20, 30, 40, 50 once 1..5 seconds are complete.
    for (const t of [0, 1000, 2000, 3000, 4000]) {
      detector.record(100, t);
      expect(detector.poll(t)).toBeNull();
    }
    detector.record(100, 5000);
    expect(detector.poll(5000)).toEqual({ kind: 'attack_started', ratePerSec: 50, threshold: 50 });
    expect(detector.underAttack).toBe(true);
    // Reported once, not at every poll while it lasts.
    expect(flood(detector, 100, 5000, 20_000)).toEqual([]);
  });

  it('averages a single burst over the window: 499 in one second is not an attack at 50/s, 500 is', () => {
    const quiet = new AttackDetector(50);
    quiet.record(499, 7_300);
    expect(quiet.poll(8_000)).toBeNull();

    const loud = new AttackDetector(50);
    for (let i = 0; i < 500; i++) loud.record(1, 7_300 + i);
    // The second in progress is not averaged yet: its count is still growing.
    expect(loud.poll(7_900)).toBeNull();
    expect(loud.poll(8_000)).toMatchObject({ kind: 'attack_started', ratePerSec: 50 });
  });

  it('forgets refusals older than the window', () => {
    const detector = new AttackDetector(50);
    detector.record(400, 0);
    expect(detector.ratePerSec(999)).toBe(0);
    expect(detector.ratePerSec(1_000)).toBe(40);
    expect(detector.ratePerSec(10_999)).toBe(40);
    // At 11 s the second that held them has left the window.
    expect(detector.ratePerSec(11_000)).toBe(0);
    // A gap longer than the ring clears it in one step.
    detector.record(400, 11_500);
    detector.record(100, 25_000);
    expect(detector.ratePerSec(26_000)).toBe(10);
    expect(detector.poll(26_000)).toBeNull();
  });

  it('counts a time earlier than the newest seen in the newest second, and ignores nonsense counts', () => {
    const detector = new AttackDetector(50);
    detector.record(10, 5_000);
    detector.record(10, 3_000);
    detector.record(Number.NaN, 5_000);
    detector.record(-50, 5_000);
    expect(detector.ratePerSec(6_000)).toBe(2);
  });

  it('works on a clock that starts below zero', () => {
    const detector = new AttackDetector(1);
    detector.record(5, -2_500);
    detector.record(5, -500);
    expect(detector.ratePerSec(0)).toBe(1);
    expect(detector.poll(0)).toMatchObject({ kind: 'attack_started' });
  });
});

describe('AttackDetector: end', () => {
  it('ends once the rate has stayed below the threshold for a minute, reporting the peak and how long it lasted', () => {
    const detector = new AttackDetector(50);
    // 200, 400, 600 refusals in the window's complete seconds: 60/s at 3 s.
    expect(flood(detector, 200, 0, 30_000)).toEqual([{ t: 3_000, event: { kind: 'attack_started', ratePerSec: 60, threshold: 50 } }]);
    // The last busy second is 29; at 37 s the window (27..36) still holds three of them.
    expect(detector.ratePerSec(37_000)).toBe(60);
    expect(detector.poll(37_000)).toBeNull();
    expect(detector.poll(38_000)).toBeNull(); // 40/s: the quiet minute starts here
    for (let t = 39_000; t < 38_000 + ATTACK_QUIET_MS; t += 1000) expect(detector.poll(t)).toBeNull();
    expect(detector.poll(38_000 + ATTACK_QUIET_MS)).toEqual({
      kind: 'attack_ended',
      ratePerSec: 0,
      threshold: 50,
      peakRatePerSec: 200,
      durationMs: 38_000 - 3_000,
    });
    expect(detector.underAttack).toBe(false);
    expect(detector.poll(200_000)).toBeNull();
  });

  it('does not end during a lull shorter than a minute: the quiet minute restarts when the rate comes back', () => {
    const detector = new AttackDetector(50);
    flood(detector, 100, 0, 20_000);
    expect(detector.underAttack).toBe(true);
    // A 50 s lull (polled each second), then a second wave.
    for (let t = 20_000; t < 70_000; t += 1000) expect(detector.poll(t)).toBeNull();
    expect(flood(detector, 100, 70_000, 90_000)).toEqual([]);
    // Quiet from 90 s on: below threshold from 96 s; ends a minute later.
    const events = [];
    for (let t = 90_000; t <= 160_000; t += 1000) {
      const event = detector.poll(t);
      if (event !== null) events.push({ t, event });
    }
    expect(events).toEqual([{ t: 96_000 + ATTACK_QUIET_MS, event: expect.objectContaining({ kind: 'attack_ended', peakRatePerSec: 100, durationMs: 96_000 - 5_000 }) }]);
  });

  it('starts again after an attack has ended', () => {
    const detector = new AttackDetector(10);
    flood(detector, 100, 0, 5_000);
    for (let t = 5_000; t <= 200_000; t += 1000) detector.poll(t);
    expect(detector.underAttack).toBe(false);
    expect(flood(detector, 100, 300_000, 302_000)).toEqual([{ t: 301_000, event: { kind: 'attack_started', ratePerSec: 10, threshold: 10 } }]);
  });
});

describe('AttackDetector: reload', () => {
  it('applies a new threshold at the next poll, keeping an attack in progress until a quiet minute below the new one', () => {
    const detector = new AttackDetector(50);
    flood(detector, 30, 0, 10_000); // 30/s: below 50
    expect(detector.underAttack).toBe(false);
    detector.setThreshold(25);
    expect(detector.poll(10_000)).toMatchObject({ kind: 'attack_started', threshold: 25 });
    detector.setThreshold(1000);
    expect(detector.poll(11_000)).toBeNull(); // below now, the quiet minute starts
    expect(detector.poll(11_000 + ATTACK_QUIET_MS)).toMatchObject({ kind: 'attack_ended', threshold: 1000 });
  });

  it('refuses a threshold that is not a positive number', () => {
    expect(() => new AttackDetector(0)).toThrow(/positive number of refused requests per second, got 0/);
    expect(() => new AttackDetector(50).setThreshold(Number.NaN)).toThrow(RangeError);
    expect(new AttackDetector(0.5).thresholdPerSec).toBe(0.5);
  });
});
