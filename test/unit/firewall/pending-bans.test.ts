import { describe, expect, it } from 'vitest';
import { CommandSequence, PendingBans } from '../../../src/firewall/pending-bans.js';

describe('PendingBans', () => {
  it('keeps the last change per target, in the order of the last calls', () => {
    const pending = new PendingBans(10);
    pending.add({ target: '192.0.2.1', family: 4, scope: 'ip', timeoutSec: 5 });
    pending.add({ target: '192.0.2.2', family: 4, scope: 'ip', timeoutSec: 5 });
    pending.remove('192.0.2.1');
    expect(pending.take().map((change) => [change.kind, change.kind === 'add' ? change.ban.target : change.target])).toEqual([
      ['add', '192.0.2.2'],
      ['remove', '192.0.2.1'],
    ]);
    expect(pending.size).toBe(0);
  });

  it('is bounded: a caller that never commits gets an error', () => {
    const pending = new PendingBans(2);
    pending.remove('192.0.2.1');
    pending.remove('192.0.2.2');
    pending.remove('192.0.2.2');
    expect(() => pending.remove('192.0.2.3')).toThrow(/2 ban changes are queued without a commit/);
  });
});

describe('CommandSequence', () => {
  it('runs jobs one at a time in call order, and goes on after a failure', async () => {
    const sequence = new CommandSequence();
    const log: string[] = [];
    const job = (name: string, fail = false) => async () => {
      log.push(`start ${name}`);
      await new Promise((resolve) => setImmediate(resolve));
      log.push(`end ${name}`);
      if (fail) throw new Error(name);
      return name;
    };
    const results = await Promise.allSettled([sequence.run(job('a')), sequence.run(job('b', true)), sequence.run(job('c'))]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  });
});
