import { describe, expect, it } from 'vitest';
import { BackendUnavailableError, FirewallBatchError, FirewallCommandError } from '../../../src/core/errors.js';
import type { KernelBan } from '../../../src/firewall/ban-backend.js';
import { validateBan } from '../../../src/firewall/ban-validation.js';
import { ScriptedCommandRunner, type RecordedCommand } from '../../../src/firewall/command-runner.js';
import {
  dropNestedPrefixes,
  NftablesBackend,
  parseNftSets,
  renderNftCommit,
  renderNftInit,
  renderNftReplaceAll,
} from '../../../src/firewall/nftables-backend.js';
import { PendingBans } from '../../../src/firewall/pending-bans.js';

const ip = (target: string, timeoutSec = 600): KernelBan => ({ target, family: target.includes(':') ? 6 : 4, scope: 'ip', timeoutSec });
const net = (target: string, timeoutSec = 600): KernelBan => ({ target, family: target.includes(':') ? 6 : 4, scope: 'prefix', timeoutSec });

/** `nft -j list table` output with the given elements per set, as nft 1.0.6 prints it. */
function listing(elements: Partial<Record<'addr4' | 'addr6' | 'net4' | 'net6', unknown[]>>, size = 64): string {
  const sets = (['addr4', 'addr6', 'net4', 'net6'] as const).map((name) => ({
    set: { family: 'inet', name, table: 'portcullis', type: name.endsWith('4') ? 'ipv4_addr' : 'ipv6_addr', handle: 1, size, flags: ['timeout'], elem: elements[name] },
  }));
  return JSON.stringify({ nftables: [{ metainfo: { version: '1.0.6', json_schema_version: 1 } }, { table: { family: 'inet', name: 'portcullis' } }, ...sets] });
}

describe('renderNftInit', () => {
  it('creates the table, four sized sets and a raw prerouting chain, and rewrites the rules', () => {
    expect(renderNftInit({ ports: [80, 443], maxBans: 1000 })).toBe(
      [
        'add table inet portcullis',
        'add set inet portcullis addr4 { type ipv4_addr; flags timeout; size 1000; }',
        'add set inet portcullis addr6 { type ipv6_addr; flags timeout; size 1000; }',
        'add set inet portcullis net4 { type ipv4_addr; flags interval, timeout; size 1000; }',
        'add set inet portcullis net6 { type ipv6_addr; flags interval, timeout; size 1000; }',
        'add chain inet portcullis prerouting { type filter hook prerouting priority raw; policy accept; }',
        'flush chain inet portcullis prerouting',
        'add rule inet portcullis prerouting tcp dport { 80, 443 } ip saddr @addr4 counter drop',
        'add rule inet portcullis prerouting tcp dport { 80, 443 } ip saddr @net4 counter drop',
        'add rule inet portcullis prerouting tcp dport { 80, 443 } ip6 saddr @addr6 counter drop',
        'add rule inet portcullis prerouting tcp dport { 80, 443 } ip6 saddr @net6 counter drop',
        '',
      ].join('\n'),
    );
  });

  it('never flushes or deletes a set (a restart keeps the bans)', () => {
    expect(renderNftInit({ ports: [80], maxBans: 1 })).not.toMatch(/flush set|delete/);
  });

  it('refuses an invalid port even past the constructor', () => {
    expect(() => renderNftInit({ ports: [80, 70_000], maxBans: 1 })).toThrow(RangeError);
  });
});

describe('renderNftCommit', () => {
  const changes = (fill: (pending: PendingBans) => void): ReturnType<PendingBans['take']> => {
    const pending = new PendingBans(100);
    fill(pending);
    return pending.take();
  };

  it('writes a lift as add-then-delete (robust to an expired element) and a ban as add, delete, add (new timeout on any kernel)', () => {
    const batch = renderNftCommit(
      changes((pending) => {
        pending.add(ip('192.0.2.7', 600));
        pending.remove('192.0.2.8');
        pending.add(net('2001:db8:1::/48', 30));
      }),
      null,
    );
    expect(batch).toBe(
      [
        'add element inet portcullis addr4 { 192.0.2.8 timeout 1s }',
        'delete element inet portcullis addr4 { 192.0.2.8 }',
        'add element inet portcullis addr4 { 192.0.2.7 timeout 600s }',
        'delete element inet portcullis addr4 { 192.0.2.7 }',
        'add element inet portcullis addr4 { 192.0.2.7 timeout 600s }',
        'add element inet portcullis net6 { 2001:db8:1::/48 timeout 30s }',
        'delete element inet portcullis net6 { 2001:db8:1::/48 }',
        'add element inet portcullis net6 { 2001:db8:1::/48 timeout 30s }',
        '',
      ].join('\n'),
    );
  });

  it('with what the kernel holds, deletes only present lifted targets, plainly', () => {
    const batch = renderNftCommit(
      changes((pending) => {
        pending.remove('192.0.2.8');
        pending.remove('192.0.2.9');
      }),
      new Set(['192.0.2.9']),
    );
    expect(batch).toBe('delete element inet portcullis addr4 { 192.0.2.9 }\n');
  });

  it('groups many elements of a set in one statement each', () => {
    const batch = renderNftCommit(changes((pending) => ['192.0.2.1', '192.0.2.2'].forEach((target) => pending.add(ip(target, 5)))), null);
    expect(batch.split('\n')[0]).toBe('add element inet portcullis addr4 { 192.0.2.1 timeout 5s, 192.0.2.2 timeout 5s }');
  });

  it('clamps timeouts to a year (nft refuses very long ones)', () => {
    expect(renderNftCommit(changes((pending) => pending.add(ip('192.0.2.1', 2 ** 31 - 1))), null)).toContain('192.0.2.1 timeout 31536000s');
  });

  it('validates each element again as it writes it', () => {
    const forged = [{ kind: 'add' as const, ban: { ...validateBan(ip('192.0.2.1')), target: '192.0.2.1 } ; flush ruleset ; add element inet portcullis addr4 { 192.0.2.2' } }];
    expect(() => renderNftCommit(forged, null)).toThrow(RangeError);
  });
});

describe('renderNftReplaceAll', () => {
  it('flushes the four sets and refills them in one batch', () => {
    expect(renderNftReplaceAll([ip('192.0.2.1'), ip('2001:db8::1', 60), net('198.51.100.0/24'), net('2001:db8:1::/64')])).toBe(
      [
        'flush set inet portcullis addr4',
        'flush set inet portcullis addr6',
        'flush set inet portcullis net4',
        'flush set inet portcullis net6',
        'add element inet portcullis addr4 { 192.0.2.1 timeout 600s }',
        'add element inet portcullis addr6 { 2001:db8::1 timeout 60s }',
        'add element inet portcullis net4 { 198.51.100.0/24 timeout 600s }',
        'add element inet portcullis net6 { 2001:db8:1::/64 timeout 600s }',
        '',
      ].join('\n'),
    );
  });

  it('with no bans only flushes', () => {
    expect(renderNftReplaceAll([])).toBe('flush set inet portcullis addr4\nflush set inet portcullis addr6\nflush set inet portcullis net4\nflush set inet portcullis net6\n');
  });

  it('keeps the longest timeout of a duplicate', () => {
    expect(renderNftReplaceAll([ip('192.0.2.1', 10), ip('192.0.2.1', 99), ip('192.0.2.1', 50)])).toContain('{ 192.0.2.1 timeout 99s }');
  });

  it('throws on an invalid ban, before producing any batch', () => {
    expect(() => renderNftReplaceAll([ip('192.0.2.1'), ip('192.0.2.2\nflush ruleset')])).toThrow(RangeError);
  });

  it('writes 100,000 bans in one statement per set', () => {
    const bans: KernelBan[] = [];
    for (let i = 0; i < 100_000; i++) bans.push(ip(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`));
    const batch = renderNftReplaceAll(bans);
    expect(batch.split(', ').length).toBe(100_000);
  });
});

describe('dropNestedPrefixes', () => {
  it('keeps the outermost of nested prefixes, per family', () => {
    const kept = dropNestedPrefixes(
      [net('198.51.100.0/24'), net('198.51.0.0/16'), net('198.51.100.128/25'), net('203.0.113.0/24'), net('2001:db8::/32'), net('2001:db8:1::/48'), net('2001:db9::/32')].map(validateBan),
    );
    expect(kept.map((ban) => ban.target).sort()).toEqual(['198.51.0.0/16', '2001:db8::/32', '2001:db9::/32', '203.0.113.0/24']);
  });
});

describe('parseNftSets', () => {
  it('reads addresses, prefixes (a /32 in an interval set is printed bare), and skips other sets', () => {
    const json = listing({
      addr4: [{ elem: { val: '192.0.2.1', timeout: 600, expires: 599 } }, '192.0.2.2'],
      addr6: [{ elem: { val: '2001:db8::1', timeout: 600, expires: 599 } }],
      net4: [{ elem: { val: { prefix: { addr: '198.51.100.0', len: 24 } }, timeout: 600, expires: 599 } }, { elem: { val: '203.0.113.9', timeout: 5, expires: 4 } }],
      net6: [{ elem: { val: { range: ['2001:db8::1', '2001:db8::9'] } } }],
    });
    const sets = parseNftSets(json);
    expect(sets.map((set) => [set.name, set.size, set.targets])).toEqual([
      ['addr4', 64, ['192.0.2.1', '192.0.2.2']],
      ['addr6', 64, ['2001:db8::1']],
      ['net4', 64, ['198.51.100.0/24', '203.0.113.9/32']],
      ['net6', 64, ['2001:db8::1-2001:db8::9']],
    ]);
  });

  it('throws on output that is not nft JSON', () => {
    expect(() => parseNftSets('{}')).toThrow(/nftables/);
    expect(() => parseNftSets('table inet portcullis {')).toThrow();
  });
});

describe('NftablesBackend with a scripted runner', () => {
  const ok = { stdout: '', stderr: '' };

  it('an invalid target throws at add(), replaceAll() rejects, and nothing runs', async () => {
    const runner = new ScriptedCommandRunner();
    const backend = new NftablesBackend({ ports: [80], maxBans: 10 }, runner);
    expect(() => backend.add(ip('192.0.2.1 }\nflush ruleset'))).toThrow(RangeError);
    expect(() => backend.remove('192.0.2.1\n')).toThrow(RangeError);
    await expect(backend.replaceAll([ip('192.0.2.1'), net('192.0.2.1/24')])).rejects.toThrow(RangeError);
    await backend.commit();
    expect(runner.commands).toEqual([]);
  });

  it('refuses invalid options at construction', () => {
    expect(() => new NftablesBackend({ ports: [0], maxBans: 10 })).toThrow(RangeError);
    expect(() => new NftablesBackend({ ports: [80], maxBans: 0 })).toThrow(RangeError);
  });

  it('init() sends one batch, then checks the set sizes', async () => {
    const runner = new ScriptedCommandRunner((command) => (command.args.includes('-j') ? { stdout: listing({}, 10), stderr: '' } : ok));
    await new NftablesBackend({ ports: [80], maxBans: 10 }, runner).init();
    expect(runner.commands.map((command) => command.args.join(' '))).toEqual(['-f -', '-j -t list table inet portcullis']);
  });

  it('init() fails when the kernel kept another set size', async () => {
    const runner = new ScriptedCommandRunner((command) => (command.args.includes('-j') ? { stdout: listing({}, 65_536), stderr: '' } : ok));
    const error = await new NftablesBackend({ ports: [80], maxBans: 10 }, runner).init().catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(FirewallCommandError);
    expect((error as Error).message).toMatch(/set addr4 has size 65536, but maxBans is 10/);
  });

  it('init() without privilege is BackendUnavailableError naming CAP_NET_ADMIN', async () => {
    const runner = new ScriptedCommandRunner((command) => {
      throw new FirewallCommandError(command.file, command.args, 'netlink: Error: cache initialization failed: Operation not permitted');
    });
    await expect(new NftablesBackend({ ports: [80], maxBans: 10 }, runner).init()).rejects.toThrow(BackendUnavailableError);
  });

  it('commit() sends nothing when nothing is queued, and one batch otherwise', async () => {
    const runner = new ScriptedCommandRunner();
    const backend = new NftablesBackend({ ports: [80], maxBans: 10 }, runner);
    await backend.commit();
    backend.add(ip('192.0.2.1'));
    backend.add(ip('192.0.2.2'));
    await backend.commit();
    expect(runner.commands).toHaveLength(1);
    expect(runner.commands[0]?.input).toContain('192.0.2.1 timeout 600s, 192.0.2.2 timeout 600s');
  });

  it('when a batch with lifts fails, lists the sets and retries with plain deletes of the present ones', async () => {
    const batches: RecordedCommand[] = [];
    const runner = new ScriptedCommandRunner((command) => {
      if (command.args.includes('-j')) return { stdout: listing({ addr4: ['192.0.2.5'] }), stderr: '' };
      batches.push(command);
      if (batches.length === 1) throw new FirewallCommandError('nft', command.args, 'Error: Could not process rule: Too many open files in system');
      return ok;
    });
    const backend = new NftablesBackend({ ports: [80], maxBans: 10 }, runner);
    backend.remove('192.0.2.5');
    backend.remove('192.0.2.6');
    backend.add(ip('192.0.2.7'));
    await backend.commit();
    expect(batches).toHaveLength(2);
    expect(batches[1]?.input).toBe(
      [
        'delete element inet portcullis addr4 { 192.0.2.5 }',
        'add element inet portcullis addr4 { 192.0.2.7 timeout 600s }',
        'delete element inet portcullis addr4 { 192.0.2.7 }',
        'add element inet portcullis addr4 { 192.0.2.7 timeout 600s }',
        '',
      ].join('\n'),
    );
  });

  it('a batch the kernel refuses for one element is split: the rest is applied, the refused one named', async () => {
    const accepted: string[] = [];
    const runner = new ScriptedCommandRunner((command) => {
      if (command.args.includes('-j')) return { stdout: listing({}), stderr: '' };
      if (command.input?.includes('192.0.2.9 timeout')) throw new FirewallCommandError('nft', command.args, 'Error: Could not process rule: Too many open files in system');
      accepted.push(command.input ?? '');
      return ok;
    });
    const backend = new NftablesBackend({ ports: [80], maxBans: 4 }, runner);
    for (const target of ['192.0.2.7', '192.0.2.8', '192.0.2.9', '2001:db8::1']) backend.add(ip(target));
    const error = await backend.commit().catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(FirewallBatchError);
    expect((error as FirewallBatchError).refused.map((change) => change.target)).toEqual(['192.0.2.9']);
    expect((error as Error).message).toMatch(/add 192.0.2.9 \(Error: Could not process rule: Too many open files in system \(a ban set is full/);
    for (const target of ['192.0.2.7', '192.0.2.8', '2001:db8::1']) expect(accepted.join('')).toContain(`${target} timeout 600s`);
  });

  it('a full set surfaces as FirewallCommandError that says so', async () => {
    const runner = new ScriptedCommandRunner((command) => {
      throw new FirewallCommandError('nft', command.args, 'Error: Could not process rule: Too many open files in system');
    });
    const backend = new NftablesBackend({ ports: [80], maxBans: 4 }, runner);
    backend.add(ip('192.0.2.7'));
    const error = await backend.commit().catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(FirewallCommandError);
    expect((error as Error).message).toMatch(/a ban set is full: each holds at most maxBans = 4 elements/);
  });

  it('runs its commands one at a time, in call order', async () => {
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const runner = new ScriptedCommandRunner(async (command) => {
      log.push(`start ${command.input?.split('\n')[0] ?? ''}`);
      if (log.length === 1) await gate;
      log.push('end');
      return ok;
    });
    const backend = new NftablesBackend({ ports: [80], maxBans: 10 }, runner);
    backend.add(ip('192.0.2.1'));
    const first = backend.commit();
    backend.remove('192.0.2.1');
    const second = backend.commit();
    await new Promise((resolve) => setImmediate(resolve));
    expect(log).toEqual(['start add element inet portcullis addr4 { 192.0.2.1 timeout 600s }']);
    release();
    await Promise.all([first, second]);
    expect(log).toEqual(['start add element inet portcullis addr4 { 192.0.2.1 timeout 600s }', 'end', 'start add element inet portcullis addr4 { 192.0.2.1 timeout 1s }', 'end']);
  });
});
