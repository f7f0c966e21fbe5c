import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ManualTimers } from '../../../src/core/timers.js';
import { BanTarpit, type HeldConnection } from '../../../src/proxy/ban-tarpit.js';

/** A connection that closes when told to. */
class FakeConnection extends EventEmitter implements HeldConnection {
  closed = false;
  close(): void {
    this.closed = true;
    this.emit('close');
  }
}

describe('BanTarpit', () => {
  it('answers after the delay with the time held, and counts the connection while it holds it', () => {
    const timers = new ManualTimers();
    const tarpit = new BanTarpit(5_000, 10, timers);
    const answers: number[] = [];
    tarpit.answer(new FakeConnection(), (heldMs) => answers.push(heldMs));
    expect(tarpit.held).toBe(1);
    timers.advance(4_999);
    expect(answers).toEqual([]);
    timers.advance(1);
    expect(answers).toEqual([5_000]);
    expect(tarpit.held).toBe(0);
  });

  it('answers at once past its cap, with a zero delay, and for a pipelined request without a socket', () => {
    const timers = new ManualTimers();
    const tarpit = new BanTarpit(5_000, 1, timers);
    const answers: string[] = [];
    tarpit.answer(new FakeConnection(), () => answers.push('held'));
    tarpit.answer(new FakeConnection(), (heldMs) => answers.push(`over cap ${heldMs}`));
    tarpit.answer(null, (heldMs) => answers.push(`pipelined ${heldMs}`));
    expect(answers).toEqual(['over cap 0', 'pipelined 0']);
    tarpit.configure(0, 1);
    tarpit.answer(new FakeConnection(), (heldMs) => answers.push(`no delay ${heldMs}`));
    expect(answers).toEqual(['over cap 0', 'pipelined 0', 'no delay 0']);
  });

  it('never answers a client that left, and frees its place and its timer at once', () => {
    const timers = new ManualTimers();
    const tarpit = new BanTarpit(5_000, 1, timers);
    const connection = new FakeConnection();
    let answered = false;
    tarpit.answer(connection, () => (answered = true));
    connection.close();
    expect(tarpit.held).toBe(0);
    expect(timers.pending).toBe(0);
    timers.advance(10_000);
    expect(answered).toBe(false);
    const gone = new FakeConnection();
    gone.closed = true;
    tarpit.answer(gone, (heldMs) => expect(heldMs).toBe(0));
  });
});
