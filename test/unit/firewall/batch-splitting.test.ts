import { describe, expect, it } from 'vitest';
import { BackendUnavailableError, FirewallCommandError } from '../../../src/core/errors.js';
import type { KernelBan } from '../../../src/firewall/ban-backend.js';
import { applyInParts, MAX_FAILED_PARTS } from '../../../src/firewall/batch-splitting.js';
import { PendingBans, type PendingChange } from '../../../src/firewall/pending-bans.js';

const ip = (target: string): KernelBan => ({ target, family: 4, scope: 'ip', timeoutSec: 600 });
const targetOf = (change: PendingChange): string => (change.kind === 'add' ? change.ban.target : change.target);

function changes(bans: readonly string[], lifts: readonly string[] = []): PendingChange[] {
  const pending = new PendingBans(10_000);
  for (const target of bans) pending.add(ip(target));
  for (const target of lifts) pending.remove(target);
  return pending.take();
}

/** An apply that refuses every part holding one of `bad`, recording what it was asked and what it applied. */
function kernel(bad: ReadonlySet<string>) {
  const parts: string[][] = [];
  const applied: string[] = [];
  const apply = async (part: readonly PendingChange[]): Promise<void> => {
    const targets = part.map(targetOf);
    parts.push(targets);
    if (targets.some((target) => bad.has(target))) throw new FirewallCommandError('nft', ['-f', '-'], `Error: refused ${targets.filter((target) => bad.has(target)).join(',')}`);
    applied.push(...targets);
  };
  return { apply, parts, applied };
}

const addresses = (count: number): string[] => Array.from({ length: count }, (_, i) => `10.0.${i >> 8}.${i & 255}`);

describe('applyInParts', () => {
  it('applies a batch that works in one call', async () => {
    const { apply, parts } = kernel(new Set());
    expect(await applyInParts(changes(addresses(100)), apply)).toEqual([]);
    expect(parts).toHaveLength(1);
  });

  it('one bad change among 1,000: the other 999 are applied, the bad one refused, in ~2·log2(n) commands', async () => {
    const all = addresses(1_000);
    const bad = all[637] as string;
    const { apply, parts, applied } = kernel(new Set([bad]));
    const refused = await applyInParts(changes(all), apply);
    expect(refused.map((change) => [change.kind, change.target])).toEqual([['add', bad]]);
    expect(refused[0]?.error.stderr).toBe(`Error: refused ${bad}`);
    expect(applied.sort()).toEqual(all.filter((target) => target !== bad).sort());
    expect(parts.length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(1_000)) + 1);
  });

  it('lists refusals in batch order', async () => {
    const all = addresses(40);
    const bad = new Set([all[3] as string, all[17] as string, all[39] as string]);
    const { apply } = kernel(bad);
    expect((await applyInParts(changes(all), apply)).map((change) => change.target)).toEqual([...bad]);
  });

  it('splits lifts from bans first (a lift frees room in a full set), lifts first', async () => {
    const { apply, parts } = kernel(new Set(['10.0.0.1']));
    await applyInParts(changes(['10.0.0.1', '10.0.0.2'], ['10.0.0.8', '10.0.0.9']), apply);
    expect(parts.slice(0, 3)).toEqual([['10.0.0.8', '10.0.0.9', '10.0.0.1', '10.0.0.2'], ['10.0.0.8', '10.0.0.9'], ['10.0.0.1', '10.0.0.2']]);
  });

  it('does not split a part whose command timed out: it refuses it whole', async () => {
    const timeout = Object.assign(new Error('killed'), { killed: true, signal: 'SIGKILL' });
    let calls = 0;
    const refused = await applyInParts(changes(addresses(8)), async () => {
      calls += 1;
      throw new FirewallCommandError('nft', ['-f', '-'], '\ntimed out after 10000 ms', { cause: timeout });
    });
    expect(calls).toBe(1);
    expect(refused).toHaveLength(8);
  });

  it('rejects at once on an error that is not a command failure', async () => {
    let calls = 0;
    const failing = applyInParts(changes(addresses(8)), async () => {
      calls += 1;
      throw new BackendUnavailableError('nft is not installed');
    });
    await expect(failing).rejects.toThrow(BackendUnavailableError);
    expect(calls).toBe(1);
  });

  it('bounds the commands a batch of only bad changes costs, and refuses the untried ones saying so', async () => {
    const all = addresses(10_000);
    const { apply, parts } = kernel(new Set(all));
    const refused = await applyInParts(changes(all), apply);
    expect(refused).toHaveLength(10_000);
    expect(parts.length).toBe(MAX_FAILED_PARTS);
    expect(refused.at(-1)?.error.stderr).toMatch(new RegExp(`^not tried: ${MAX_FAILED_PARTS} commands of this commit failed already`));
  });
});
