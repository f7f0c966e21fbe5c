import { describe, expect, it } from 'vitest';
import { BackendUnavailableError, FirewallBatchError, FirewallCommandError } from '../../../src/core/errors.js';
import type { KernelBan } from '../../../src/firewall/ban-backend.js';
import { validateBan } from '../../../src/firewall/ban-validation.js';
import { ScriptedCommandRunner, type RecordedCommand } from '../../../src/firewall/command-runner.js';
import { NftablesBackend } from '../../../src/firewall/nftables-backend.js';
import { parseNftSets } from '../../../src/firewall/nftables-listing.js';
import { renderNftCommit, renderNftInit, renderNftReplaceAll, type NftLayout } from '../../../src/firewall/nftables-script.js';
import { PendingBans } from '../../../src/firewall/pending-bans.js';

const ip = (target: string, timeoutSec = 600): KernelBan => ({ target, family: target.includes(':') ? 6 : 4, scope: 'ip', timeoutSec });
const net = (target: string, timeoutSec = 600): KernelBan => ({ target, family: target.includes(':') ? 6 : 4, scope: 'prefix', timeoutSec });
const options = { ports: [80, 443], maxBans: 1000 } as const;
const layout = (...prefixSets: string[]): NftLayout => ({ ...options, prefixSets: new Set(prefixSets) });

/** `nft -j list table` output with the given elements per set (addr4 and addr6 always), as nft 1.0.6 prints it. */
function listing(elements: Record<string, unknown[]>, size = 64): string {
  const names = [...new Set(['addr4', 'addr6', ...Object.keys(elements)])];
  const sets = names.map((name) => ({
    set: { family: 'inet', name, table: 'portcullis', type: name.includes('6') ? 'ipv6_addr' : 'ipv4_addr', handle: 1, size, flags: ['timeout'], elem: elements[name] },
  }));
  return JSON.stringify({ nftables: [{ metainfo: { version: '1.0.6', json_schema_version: 1 } }, { table: { family: 'inet', name: 'portcullis' } }, ...sets] });
}

function changes(fill: (pending: PendingBans) => void): ReturnType<PendingBans['take']> {
  const pending = new PendingBans(100);
  fill(pending);
  return pending.take();
}

describe('renderNftInit', () => {
  it('on the first start: the table, two sized address sets and a raw prerouting chain, its rules rewritten', () => {
    expect(renderNftInit(options)).toBe(
      [
        'add table inet portcullis',
        'add set inet portcullis addr4 { type ipv4_addr; flags timeout; size 1000; }',
        'add set inet portcullis addr6 { type ipv6_addr; flags timeout; size 1000; }',
        'add chain inet portcullis prerouting { type filter hook prerouting priority raw; policy accept; }',
        'flush chain inet portcullis prerouting',
        'add rule inet portcullis prerouting tcp dport { 80, 443 } ip saddr @addr4 counter drop',
        'add rule inet portcullis prerouting tcp dport { 80, 443 } ip6 saddr @addr6 counter drop',
        '',
      ].join('\n'),
    );
  });

  it('on a restart: resizes the prefix sets that exist, writes a masked rule for each, and deletes the interval sets of earlier versions', () => {
    expect(renderNftInit(options, new Set(['addr4', 'addr6', 'net6_64', 'net4_24', 'net4_16', 'net4', 'net6', 'unrelated']))).toBe(
      [
        'add table inet portcullis',
        'add set inet portcullis addr4 { type ipv4_addr; flags timeout; size 1000; }',
        'add set inet portcullis addr6 { type ipv6_addr; flags timeout; size 1000; }',
        'add set inet portcullis net4_16 { type ipv4_addr; flags timeout; size 1000; }',
        'add set inet portcullis net4_24 { type ipv4_addr; flags timeout; size 1000; }',
        'add set inet portcullis net6_64 { type ipv6_addr; flags timeout; size 1000; }',
        'add chain inet portcullis prerouting { type filter hook prerouting priority raw; policy accept; }',
        'flush chain inet portcullis prerouting',
        'delete set inet portcullis net4',
        'delete set inet portcullis net6',
        'add rule inet portcullis prerouting tcp dport { 80, 443 } ip saddr @addr4 counter drop',
        'add rule inet portcullis prerouting tcp dport { 80, 443 } ip saddr & 255.255.0.0 @net4_16 counter drop',
        'add rule inet portcullis prerouting tcp dport { 80, 443 } ip saddr & 255.255.255.0 @net4_24 counter drop',
        'add rule inet portcullis prerouting tcp dport { 80, 443 } ip6 saddr @addr6 counter drop',
        'add rule inet portcullis prerouting tcp dport { 80, 443 } ip6 saddr & ffff:ffff:ffff:ffff:: @net6_64 counter drop',
        '',
      ].join('\n'),
    );
  });

  it('never flushes a set or deletes one of ours (a restart keeps the bans)', () => {
    expect(renderNftInit({ ports: [80], maxBans: 1 }, new Set(['addr4', 'net4_24']))).not.toMatch(/flush set|delete set inet portcullis (addr|net4_)/);
  });

  it('refuses an invalid port even past the constructor', () => {
    expect(() => renderNftInit({ ports: [80, 70_000], maxBans: 1 })).toThrow(RangeError);
  });
});

describe('renderNftCommit', () => {
  it('writes a lift as add-then-delete (robust to an expired element) and a ban as add, delete, add (new timeout on any kernel)', () => {
    const { batch, created } = renderNftCommit(
      changes((pending) => {
        pending.add(ip('192.0.2.7', 600));
        pending.remove('192.0.2.8');
        pending.add(net('2001:db8:1::/48', 30));
      }),
      null,
      layout('net6_48'),
    );
    expect(created).toEqual([]);
    expect(batch).toBe(
      [
        'add element inet portcullis addr4 { 192.0.2.8 timeout 1s }',
        'delete element inet portcullis addr4 { 192.0.2.8 }',
        'add element inet portcullis addr4 { 192.0.2.7 timeout 600s }',
        'delete element inet portcullis addr4 { 192.0.2.7 }',
        'add element inet portcullis addr4 { 192.0.2.7 timeout 600s }',
        'add element inet portcullis net6_48 { 2001:db8:1:: timeout 30s }',
        'delete element inet portcullis net6_48 { 2001:db8:1:: }',
        'add element inet portcullis net6_48 { 2001:db8:1:: timeout 30s }',
        '',
      ].join('\n'),
    );
  });

  it('puts a prefix in the set of its length, creating the set and its masked rule the first time', () => {
    const { batch, created } = renderNftCommit(
      changes((pending) => {
        pending.add(net('198.51.0.0/16'));
        pending.add(net('198.51.100.0/24'));
      }),
      null,
      layout('net4_24'),
    );
    expect(created).toEqual(['net4_16']);
    expect(batch.split('\n').slice(0, 3)).toEqual([
      'add set inet portcullis net4_16 { type ipv4_addr; flags timeout; size 1000; }',
      'add rule inet portcullis prerouting tcp dport { 80, 443 } ip saddr & 255.255.0.0 @net4_16 counter drop',
      'add element inet portcullis net4_16 { 198.51.0.0 timeout 600s }',
    ]);
    expect(batch).toContain('add element inet portcullis net4_24 { 198.51.100.0 timeout 600s }');
    expect(batch).not.toContain('add set inet portcullis net4_24');
  });

  it('a lift of a prefix length that has no set is nothing to do', () => {
    expect(renderNftCommit(changes((pending) => pending.remove('198.51.0.0/16')), null, layout('net4_24'))).toEqual({ batch: '', created: [] });
  });

  it('with what the kernel holds, deletes only present lifted targets, plainly', () => {
    const { batch } = renderNftCommit(
      changes((pending) => {
        pending.remove('192.0.2.8');
        pending.remove('192.0.2.9');
        pending.remove('198.51.100.0/24');
      }),
      new Set(['192.0.2.9', '198.51.100.0/24']),
      layout('net4_24'),
    );
    expect(batch).toBe('delete element inet portcullis addr4 { 192.0.2.9 }\ndelete element inet portcullis net4_24 { 198.51.100.0 }\n');
  });

  it('groups many elements of a set in one statement each', () => {
    const { batch } = renderNftCommit(changes((pending) => ['192.0.2.1', '192.0.2.2'].forEach((target) => pending.add(ip(target, 5)))), null, layout());
    expect(batch.split('\n')[0]).toBe('add element inet portcullis addr4 { 192.0.2.1 timeout 5s, 192.0.2.2 timeout 5s }');
  });

  it('clamps timeouts to a year (nft refuses very long ones)', () => {
    expect(renderNftCommit(changes((pending) => pending.add(ip('192.0.2.1', 2 ** 31 - 1))), null, layout()).batch).toContain('192.0.2.1 timeout 31536000s');
  });

  it('validates each element again as it writes it, and the set names it is given', () => {
    const forged = [{ kind: 'add' as const, ban: { ...validateBan(ip('192.0.2.1')), target: '192.0.2.1 } ; flush ruleset ; add element inet portcullis addr4 { 192.0.2.2' } }];
    expect(() => renderNftCommit(forged, null, layout())).toThrow(RangeError);
    expect(() => renderNftCommit([], null, layout('net4_24 ; flush ruleset'))).toThrow(RangeError);
    expect(() => renderNftCommit([], null, layout('net4_7'))).toThrow(RangeError);
  });
});

describe('renderNftReplaceAll', () => {
  it('flushes the sets, creates the prefix sets the bans need, deletes the others, rewrites the rules and refills, in one batch', () => {
    const { batch, prefixSets } = renderNftReplaceAll(
      [ip('192.0.2.1'), ip('2001:db8::1', 60), net('198.51.100.0/24'), net('2001:db8:1::/64')],
      options,
      new Set(['addr4', 'addr6', 'net4_24', 'net4_16', 'net4']),
    );
    expect(prefixSets).toEqual(['net4_24', 'net6_64']);
    expect(batch).toBe(
      [
        'flush chain inet portcullis prerouting',
        'flush set inet portcullis addr4',
        'flush set inet portcullis addr6',
        'delete set inet portcullis net4_16',
        'delete set inet portcullis net4',
        'flush set inet portcullis net4_24',
        'add set inet portcullis net6_64 { type ipv6_addr; flags timeout; size 1000; }',
        'add rule inet portcullis prerouting tcp dport { 80, 443 } ip saddr @addr4 counter drop',
        'add rule inet portcullis prerouting tcp dport { 80, 443 } ip saddr & 255.255.255.0 @net4_24 counter drop',
        'add rule inet portcullis prerouting tcp dport { 80, 443 } ip6 saddr @addr6 counter drop',
        'add rule inet portcullis prerouting tcp dport { 80, 443 } ip6 saddr & ffff:ffff:ffff:ffff:: @net6_64 counter drop',
        'add element inet portcullis addr4 { 192.0.2.1 timeout 600s }',
        'add element inet portcullis net4_24 { 198.51.100.0 timeout 600s }',
        'add element inet portcullis addr6 { 2001:db8::1 timeout 60s }',
        'add element inet portcullis net6_64 { 2001:db8:1:: timeout 600s }',
        '',
      ].join('\n'),
    );
  });

  it('keeps nested prefixes, each in the set of its length', () => {
    const { batch } = renderNftReplaceAll([net('198.51.100.0/24'), net('198.51.0.0/16'), net('198.51.100.128/25')], options, new Set(['addr4', 'addr6']));
    expect(batch).toContain('add element inet portcullis net4_16 { 198.51.0.0 timeout 600s }');
    expect(batch).toContain('add element inet portcullis net4_24 { 198.51.100.0 timeout 600s }');
    expect(batch).toContain('add element inet portcullis net4_25 { 198.51.100.128 timeout 600s }');
  });

  it('with no bans only flushes, and deletes every prefix set', () => {
    expect(renderNftReplaceAll([], options, new Set(['addr4', 'addr6', 'net4_24'])).batch).toBe(
      [
        'flush chain inet portcullis prerouting',
        'flush set inet portcullis addr4',
        'flush set inet portcullis addr6',
        'delete set inet portcullis net4_24',
        'add rule inet portcullis prerouting tcp dport { 80, 443 } ip saddr @addr4 counter drop',
        'add rule inet portcullis prerouting tcp dport { 80, 443 } ip6 saddr @addr6 counter drop',
        '',
      ].join('\n'),
    );
  });

  it('keeps the longest timeout of a duplicate', () => {
    expect(renderNftReplaceAll([ip('192.0.2.1', 10), ip('192.0.2.1', 99), ip('192.0.2.1', 50)], options, new Set()).batch).toContain('{ 192.0.2.1 timeout 99s }');
  });

  it('throws on an invalid ban, before producing any batch', () => {
    expect(() => renderNftReplaceAll([ip('192.0.2.1'), ip('192.0.2.2\nflush ruleset')], options, new Set())).toThrow(RangeError);
  });

  it('writes 100,000 bans in one statement per set', () => {
    const bans: KernelBan[] = [];
    for (let i = 0; i < 100_000; i++) bans.push(ip(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`));
    const { batch } = renderNftReplaceAll(bans, options, new Set());
    expect(batch.match(/^add element/gm)).toHaveLength(1);
    expect(batch.match(/ timeout 600s/g)).toHaveLength(100_000);
  });
});

describe('parseNftSets', () => {
  it('reads addresses, prefixes from the set of their length, the interval sets of earlier versions, and skips other sets', () => {
    const json = listing({
      addr4: [{ elem: { val: '192.0.2.1', timeout: 600, expires: 599 } }, '192.0.2.2'],
      addr6: [{ elem: { val: '2001:db8::1', timeout: 600, expires: 599 } }],
      net4_24: [{ elem: { val: '198.51.100.0', timeout: 600, expires: 599 } }],
      net6_48: ['2001:db8:1::'],
      net4: [{ elem: { val: { prefix: { addr: '198.51.100.0', len: 24 } }, timeout: 600, expires: 599 } }, { elem: { val: '203.0.113.9', timeout: 5, expires: 4 } }],
      net6: [{ elem: { val: { range: ['2001:db8::1', '2001:db8::9'] } } }],
      other: ['192.0.2.77'],
    });
    expect(parseNftSets(json).map((set) => [set.name, set.size, set.targets])).toEqual([
      ['addr4', 64, ['192.0.2.1', '192.0.2.2']],
      ['addr6', 64, ['2001:db8::1']],
      ['net4_24', 64, ['198.51.100.0/24']],
      ['net6_48', 64, ['2001:db8:1::/48']],
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
  /** A runner that lists `elements` for every `nft -j` and answers other commands with `respond`. */
  const kernel = (elements: Record<string, unknown[]>, respond: (command: RecordedCommand) => { stdout: string; stderr: string } = () => ok, size = 10) =>
    new ScriptedCommandRunner((command) => (command.args.includes('-j') ? { stdout: listing(elements, size), stderr: '' } : respond(command)));
  const batches = (runner: ScriptedCommandRunner): string[] => runner.commands.filter((command) => command.args[0] === '-f').map((command) => command.input ?? '');

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

  it('init() reads which sets exist, sends one batch, then checks the set sizes', async () => {
    const runner = kernel({ net4_24: [] });
    await new NftablesBackend({ ports: [80], maxBans: 10 }, runner).init();
    expect(runner.commands.map((command) => command.args.join(' '))).toEqual(['-j -t list table inet portcullis', '-f -', '-j -t list table inet portcullis']);
    expect(runner.commands[1]?.input).toContain('ip saddr & 255.255.255.0 @net4_24 counter drop');
  });

  it('init() on the first start (no table yet)', async () => {
    let listed = 0;
    const runner = new ScriptedCommandRunner((command) => {
      if (!command.args.includes('-j')) return ok;
      listed += 1;
      if (listed === 1) throw new FirewallCommandError('nft', command.args, 'Error: No such file or directory; did you mean table ‘portcullis’ in family ip?');
      return { stdout: listing({}, 10), stderr: '' };
    });
    await new NftablesBackend({ ports: [80], maxBans: 10 }, runner).init();
    expect(runner.commands[1]?.input).toBe(renderNftInit({ ports: [80], maxBans: 10 }));
  });

  it('init() fails when the kernel kept another set size', async () => {
    const runner = kernel({}, () => ok, 65_536);
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

  it('commit() sends nothing when nothing is queued, and one batch otherwise (after reading the sets once)', async () => {
    const runner = kernel({});
    const backend = new NftablesBackend({ ports: [80], maxBans: 10 }, runner);
    await backend.commit();
    backend.add(ip('192.0.2.1'));
    backend.add(ip('192.0.2.2'));
    await backend.commit();
    backend.add(ip('192.0.2.3'));
    await backend.commit();
    expect(runner.commands.map((command) => command.args.join(' '))).toEqual(['-j -t list table inet portcullis', '-f -', '-f -']);
    expect(runner.commands[1]?.input).toContain('192.0.2.1 timeout 600s, 192.0.2.2 timeout 600s');
  });

  it('creates a prefix set once: later batches of that length only add elements', async () => {
    const runner = kernel({});
    const backend = new NftablesBackend({ ports: [80], maxBans: 10 }, runner);
    backend.add(net('198.51.100.0/24'));
    await backend.commit();
    backend.add(net('203.0.113.0/24'));
    await backend.commit();
    const [first, second] = batches(runner);
    expect(first).toContain('add set inet portcullis net4_24');
    expect(second).not.toContain('add set');
    expect(second).not.toContain('add rule');
  });

  it('when a batch with lifts fails, lists the sets and retries with plain deletes of the present ones', async () => {
    const runner = kernel({ addr4: ['192.0.2.5'] }, (command) => {
      if (runner.commands.filter((recorded) => recorded.args[0] === '-f').length === 1) {
        throw new FirewallCommandError('nft', command.args, 'Error: Could not process rule: Too many open files in system');
      }
      return ok;
    });
    const backend = new NftablesBackend({ ports: [80], maxBans: 10 }, runner);
    backend.remove('192.0.2.5');
    backend.remove('192.0.2.6');
    backend.add(ip('192.0.2.7'));
    await backend.commit();
    expect(batches(runner)).toHaveLength(2);
    expect(batches(runner)[1]).toBe(
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
    const runner = kernel({}, (command) => {
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

  it('a prefix set created by a part that failed is created again by the next part that needs it', async () => {
    const runner = kernel({}, (command) => {
      if (command.input?.includes('198.51.100.9 timeout')) throw new FirewallCommandError('nft', command.args, 'Error: Could not process rule: Too many open files in system');
      return ok;
    });
    const backend = new NftablesBackend({ ports: [80], maxBans: 4 }, runner);
    backend.add(ip('198.51.100.9'));
    backend.add(net('203.0.113.0/24'));
    await backend.commit().catch(() => {});
    const applied = batches(runner).filter((batch) => !batch.includes('198.51.100.9'));
    expect(applied).toHaveLength(1);
    expect(applied[0]).toContain('add set inet portcullis net4_24');
  });

  it('a full set surfaces as FirewallCommandError that says so', async () => {
    const runner = kernel({}, (command) => {
      throw new FirewallCommandError('nft', command.args, 'Error: Could not process rule: Too many open files in system');
    });
    const backend = new NftablesBackend({ ports: [80], maxBans: 4 }, runner);
    backend.add(ip('192.0.2.7'));
    const error = await backend.commit().catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(FirewallCommandError);
    expect((error as Error).message).toMatch(/a ban set is full: each holds at most maxBans = 4 elements/);
  });

  it('replaceAll() reads which sets exist, then sends one batch', async () => {
    const runner = kernel({ net4_16: [] });
    await new NftablesBackend({ ports: [80], maxBans: 10 }, runner).replaceAll([net('198.51.100.0/24')]);
    expect(runner.commands.map((command) => command.args.join(' '))).toEqual(['-j -t list table inet portcullis', '-f -']);
    expect(runner.commands[1]?.input).toContain('delete set inet portcullis net4_16');
    expect(runner.commands[1]?.input).toContain('add element inet portcullis net4_24 { 198.51.100.0 timeout 600s }');
  });

  it('runs its commands one at a time, in call order', async () => {
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const runner = new ScriptedCommandRunner(async (command) => {
      if (command.args.includes('-j')) return { stdout: listing({}), stderr: '' };
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
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(log).toEqual(['start add element inet portcullis addr4 { 192.0.2.1 timeout 600s }']);
    release();
    await Promise.all([first, second]);
    expect(log).toEqual(['start add element inet portcullis addr4 { 192.0.2.1 timeout 600s }', 'end', 'start add element inet portcullis addr4 { 192.0.2.1 timeout 1s }', 'end']);
  });
});
