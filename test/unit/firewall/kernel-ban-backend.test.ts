import { describe, expect, it } from 'vitest';
import { FirewallBatchError, FirewallCommandError } from '../../../src/core/errors.js';
import type { KernelBan } from '../../../src/firewall/ban-backend.js';
import { ScriptedCommandRunner } from '../../../src/firewall/command-runner.js';
import { KernelBanBackend, longestBans } from '../../../src/firewall/kernel-ban-backend.js';
import type { PendingChange } from '../../../src/firewall/pending-bans.js';

const ip = (target: string, timeoutSec = 600): KernelBan => ({ target, family: target.includes(':') ? 6 : 4, scope: 'ip', timeoutSec });
const targetOf = (change: PendingChange): string => (change.kind === 'add' ? change.ban.target : change.target);

/** A backend whose kernel is a list of steps: what the base asks of it, in order. */
class RecordingBackend extends KernelBanBackend {
  readonly name = 'recording';
  readonly steps: string[] = [];
  /** Parts holding one of these fail, as a kernel refusing an element. */
  readonly refuse = new Set<string>();

  protected async setUp(): Promise<void> {
    this.steps.push('setUp');
  }

  protected override async beforeCommit(): Promise<void> {
    this.steps.push('beforeCommit');
  }

  protected async applyPart(part: readonly PendingChange[]): Promise<void> {
    const targets = part.map(targetOf);
    this.steps.push(`apply ${targets.join(',')}`);
    if (targets.some((target) => this.refuse.has(target))) throw new FirewallCommandError('kernel', [], `refused ${targets.join(',')}`);
  }

  protected planReplaceAll(bans: readonly KernelBan[]): () => Promise<void> {
    const valid = longestBans(bans);
    this.steps.push('plan');
    return async () => {
      this.steps.push(`replace ${valid.map((ban) => ban.target).join(',')}`);
    };
  }

  protected async readTargets(): Promise<string[]> {
    this.steps.push('read');
    return [];
  }
}

describe('KernelBanBackend', () => {
  it('validates its options in the constructor', () => {
    expect(() => new RecordingBackend({ ports: [], maxBans: 10 }, new ScriptedCommandRunner())).toThrow(/ports must list at least one TCP port/);
    expect(() => new RecordingBackend({ ports: [80], maxBans: 0 }, new ScriptedCommandRunner())).toThrow(/maxBans must be a whole number/);
  });

  it('throws at add() and remove() for an invalid target, before anything runs', () => {
    const backend = new RecordingBackend({ ports: [80], maxBans: 10 }, new ScriptedCommandRunner());
    expect(() => backend.add(ip('192.0.2.7\nflush ruleset'))).toThrow(RangeError);
    expect(() => backend.remove('192.0.2.0/7')).toThrow(RangeError);
    expect(backend.steps).toEqual([]);
  });

  it('a commit with nothing queued runs nothing', async () => {
    const backend = new RecordingBackend({ ports: [80], maxBans: 10 }, new ScriptedCommandRunner());
    await backend.commit();
    expect(backend.steps).toEqual([]);
  });

  it('a commit applies the last change per target, and names what the kernel refused', async () => {
    const backend = new RecordingBackend({ ports: [80], maxBans: 10 }, new ScriptedCommandRunner());
    backend.refuse.add('192.0.2.2');
    backend.add(ip('192.0.2.1'));
    backend.add(ip('192.0.2.2'));
    backend.remove('192.0.2.1');
    const error = await backend.commit().catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(FirewallBatchError);
    expect((error as FirewallBatchError).refused.map((change) => [change.kind, change.target])).toEqual([['add', '192.0.2.2']]);
    // Lifts first; the failed part is split, so the lift is applied on its own.
    expect(backend.steps).toEqual(['beforeCommit', 'apply 192.0.2.1,192.0.2.2', 'apply 192.0.2.1', 'apply 192.0.2.2']);
  });

  it('replaceAll rejects an invalid ban before anything is queued, and runs in order with the other steps', async () => {
    const backend = new RecordingBackend({ ports: [80], maxBans: 10 }, new ScriptedCommandRunner());
    await expect(backend.replaceAll([ip('192.0.2.1', 0)])).rejects.toThrow(/timeoutSec must be a whole number/);
    expect(backend.steps).toEqual([]);
    const init = backend.init();
    const replaced = backend.replaceAll([ip('192.0.2.1')]);
    const listed = backend.list();
    await Promise.all([init, replaced, listed]);
    expect(backend.steps).toEqual(['plan', 'setUp', 'replace 192.0.2.1', 'read']);
  });

  it('forgetConnections hands the sources to conntrack', async () => {
    const runner = new ScriptedCommandRunner();
    const backend = new RecordingBackend({ ports: [80], maxBans: 10 }, runner);
    await backend.forgetConnections([ip('192.0.2.7')]);
    expect(runner.commands.map((command) => command.file)).toContain('conntrack');
  });
});

describe('longestBans', () => {
  it('keeps one ban per target, the longest, where the target first appeared', () => {
    const kept = longestBans([ip('192.0.2.1', 60), ip('192.0.2.2', 600), ip('192.0.2.1', 3600), ip('192.0.2.1', 120)]);
    expect(kept.map((ban) => [ban.target, ban.timeoutSec])).toEqual([
      ['192.0.2.1', 3600],
      ['192.0.2.2', 600],
    ]);
  });

  it('throws a RangeError for an invalid ban', () => {
    expect(() => longestBans([ip('192.0.2.1'), ip('192.000.2.7')])).toThrow(RangeError);
  });
});
