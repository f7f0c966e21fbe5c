import { describe, expect, it } from 'vitest';
import { ManualTimers } from '../../../src/core/timers.js';
import { TICKET_KEY_ROTATION_MS, TicketKeyRotation } from '../../../src/tls/ticket-key-rotation.js';

/** A stand-in for a tls.Server that records the ticket keys it is given. */
function holder() {
  const keys: Buffer[] = [];
  return { keys, setTicketKeys: (key: Buffer) => keys.push(key) };
}

describe('TicketKeyRotation', () => {
  it('gives every server the same 48-byte key, and a new one every 12 hours', () => {
    const timers = new ManualTimers();
    const rotation = new TicketKeyRotation({ timers });
    const first = holder();
    const second = holder();
    rotation.add(first);
    rotation.add(second);
    expect(first.keys).toHaveLength(1);
    expect(first.keys[0]).toHaveLength(48);
    expect(second.keys[0]).toBe(first.keys[0]);
    timers.advance(TICKET_KEY_ROTATION_MS - 1);
    expect(first.keys).toHaveLength(1);
    timers.advance(1);
    expect(first.keys).toHaveLength(2);
    expect(first.keys[1]).not.toEqual(first.keys[0]);
    expect(rotation.current).toBe(first.keys[1]);
    expect(second.keys[1]).toBe(first.keys[1]);
    timers.advance(TICKET_KEY_ROTATION_MS);
    expect(first.keys).toHaveLength(3);
    rotation.close();
  });

  it('stops handing keys to a removed server, and stops rotating when closed', () => {
    const timers = new ManualTimers();
    let made = 0;
    const rotation = new TicketKeyRotation({ timers, intervalMs: 1_000, newKey: () => Buffer.alloc(48, ++made) });
    const kept = holder();
    const removed = holder();
    rotation.add(kept);
    rotation.add(removed);
    rotation.remove(removed);
    timers.advance(1_000);
    expect(kept.keys.map((key) => key[0])).toEqual([1, 2]);
    expect(removed.keys.map((key) => key[0])).toEqual([1]);
    rotation.close();
    expect(timers.pending).toBe(0);
    timers.advance(10_000);
    expect(kept.keys).toHaveLength(2);
  });
});
