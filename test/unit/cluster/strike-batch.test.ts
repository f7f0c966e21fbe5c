import { describe, expect, it } from 'vitest';
import { STRIKE_BATCH_MAX, type StrikeEntry } from '../../../src/cluster/cluster-messages.js';
import { StrikeBatch } from '../../../src/cluster/strike-batch.js';
import { ManualTimers } from '../../../src/core/timers.js';
import { makeClientKey, parseClientAddress, type ClientKey } from '../../../src/identity/client-key.js';

const key = (ip: string): ClientKey => makeClientKey(parseClientAddress(ip) ?? (null as never), { ipv4: 24, ipv6: 64 });

function batch(): { timers: ManualTimers; sent: StrikeEntry[][]; strikes: StrikeBatch } {
  const timers = new ManualTimers();
  const sent: StrikeEntry[][] = [];
  return { timers, sent, strikes: new StrikeBatch(timers, async (entries) => void sent.push(entries)) };
}

describe('StrikeBatch', () => {
  it('sends one batch 100 ms after the first strike, weights summed per client', () => {
    const { timers, sent, strikes } = batch();
    strikes.add(key('192.0.2.1'), 1, 'write', undefined);
    timers.advance(60);
    strikes.add(key('192.0.2.1'), 2, 'write', undefined);
    strikes.add(key('192.0.2.2'), 1, 'read', 'blog');
    timers.advance(39);
    expect(sent).toEqual([]);
    timers.advance(1);
    expect(sent).toEqual([
      [
        ['192.0.2.1', 3, 'write', null],
        ['192.0.2.2', 1, 'read', 'blog'],
      ],
    ]);
    expect(timers.pending).toBe(0);
  });

  it('sets no timer while idle, and none per strike', () => {
    const { timers, strikes } = batch();
    expect(timers.pending).toBe(0);
    for (let i = 0; i < 50; i++) strikes.add(key('192.0.2.1'), 1, 'write', undefined);
    expect(timers.pending).toBe(1);
  });

  it('sends a full batch at once and starts the next, dropping none', () => {
    const { timers, sent, strikes } = batch();
    for (let i = 0; i < STRIKE_BATCH_MAX + 1; i++) strikes.add(key(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`), 1, 'write', undefined);
    expect(sent.map((entries) => entries.length)).toEqual([STRIKE_BATCH_MAX]);
    timers.advance(100);
    expect(sent.map((entries) => entries.length)).toEqual([STRIKE_BATCH_MAX, 1]);
  });

  it('flush sends what is held now and cancels the timer', async () => {
    const { timers, sent, strikes } = batch();
    strikes.add(key('2001:db8::1'), 1, 'write', undefined);
    await strikes.flush();
    expect(sent).toEqual([[['2001:db8::1', 1, 'write', null]]]);
    expect(timers.pending).toBe(0);
    await strikes.flush();
    expect(sent).toHaveLength(1);
  });
});
