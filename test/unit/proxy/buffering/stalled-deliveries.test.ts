import { describe, expect, it } from 'vitest';
import { ManualTimers } from '../../../../src/core/timers.js';
import { StalledDeliveries, type Cuttable } from '../../../../src/proxy/buffering/stalled-deliveries.js';

/** A delivery whose client the test moves by hand. */
class FakeDelivery implements Cuttable {
  pending = 1_000;
  cuts = 0;
  pendingBytes(): number {
    return this.pending;
  }
  cut(): void {
    this.cuts++;
  }
}

describe('StalledDeliveries (the send timeout)', () => {
  it('cuts a delivery whose client takes nothing for the timeout, within a second of it', () => {
    const time = new ManualTimers();
    const stalls = new StalledDeliveries(time, time, 5_000);
    const delivery = new FakeDelivery();
    stalls.stalled(delivery);
    time.advance(4_999);
    expect(delivery.cuts).toBe(0);
    time.advance(1_000);
    expect(delivery.cuts).toBe(1);
    // Cut once, then forgotten; no sweep left running.
    time.advance(10_000);
    expect(delivery.cuts).toBe(1);
    expect(stalls.size).toBe(0);
    expect(time.pending).toBe(0);
  });

  it('starts the clock again when the client takes some bytes, however slowly', () => {
    const time = new ManualTimers();
    const stalls = new StalledDeliveries(time, time, 5_000);
    const delivery = new FakeDelivery();
    stalls.stalled(delivery);
    for (let i = 0; i < 10; i++) {
      time.advance(4_000);
      delivery.pending -= 10;
    }
    expect(delivery.cuts).toBe(0);
    time.advance(6_000);
    expect(delivery.cuts).toBe(1);
  });

  it('forgets a delivery that resumed, and keeps no sweep without stalls', () => {
    const time = new ManualTimers();
    const stalls = new StalledDeliveries(time, time, 5_000);
    const first = new FakeDelivery();
    const second = new FakeDelivery();
    stalls.stalled(first);
    stalls.stalled(second);
    stalls.stalled(first);
    expect(stalls.size).toBe(2);
    stalls.resumed(first);
    expect(time.pending).toBe(1);
    stalls.resumed(second);
    expect(time.pending).toBe(0);
    time.advance(60_000);
    expect(first.cuts + second.cuts).toBe(0);
  });

  it('applies a reloaded timeout to deliveries stalled already', () => {
    const time = new ManualTimers();
    const stalls = new StalledDeliveries(time, time, 60_000);
    const delivery = new FakeDelivery();
    stalls.stalled(delivery);
    time.advance(3_000);
    stalls.setTimeout(2_000);
    time.advance(1_000);
    expect(delivery.cuts).toBe(1);
  });
});
