import { describe, expect, it } from 'vitest';
import { FirewallBatchError, FirewallCommandError } from '../../../src/core/errors.js';
import type { KernelBan } from '../../../src/firewall/ban-backend.js';
import { ScriptedCommandRunner } from '../../../src/firewall/command-runner.js';
import { IpsetBackend, parseIpsetHeader, parseIpsetSave, renderIpsetCommit, renderIpsetReplaceAll } from '../../../src/firewall/ipset-backend.js';
import { PendingBans } from '../../../src/firewall/pending-bans.js';

const ip = (target: string, timeoutSec = 600): KernelBan => ({ target, family: target.includes(':') ? 6 : 4, scope: 'ip', timeoutSec });
const net = (target: string, timeoutSec = 600): KernelBan => ({ target, family: target.includes(':') ? 6 : 4, scope: 'prefix', timeoutSec });

describe('renderIpsetCommit', () => {
  it('lifts first (room in a full set), then bans, each in its set; timeouts clamped to ipset\'s 2,147,483 s', () => {
    const pending = new PendingBans(10);
    pending.add(ip('192.0.2.1', 2 ** 31 - 1));
    pending.remove('2001:db8::1');
    pending.add(net('198.51.100.0/24', 60));
    pending.remove('2001:db8:1::/64');
    pending.add(ip('2001:db8::2', 5));
    expect(renderIpsetCommit(pending.take())).toBe(
      [
        'del portcullis6 2001:db8::1',
        'del portcullis-net6 2001:db8:1::/64',
        'add portcullis4 192.0.2.1 timeout 2147483',
        'add portcullis-net4 198.51.100.0/24 timeout 60',
        'add portcullis6 2001:db8::2 timeout 5',
        '',
      ].join('\n'),
    );
  });
});

describe('renderIpsetReplaceAll', () => {
  it('fills fresh -tmp sets, then swaps them all in', () => {
    expect(renderIpsetReplaceAll([ip('192.0.2.1'), net('2001:db8::/32', 7)], 100)).toBe(
      [
        'create portcullis4-tmp hash:ip family inet timeout 0 maxelem 100',
        'add portcullis4-tmp 192.0.2.1 timeout 600',
        'create portcullis6-tmp hash:ip family inet6 timeout 0 maxelem 100',
        'create portcullis-net4-tmp hash:net family inet timeout 0 maxelem 100',
        'create portcullis-net6-tmp hash:net family inet6 timeout 0 maxelem 100',
        'add portcullis-net6-tmp 2001:db8::/32 timeout 7',
        'swap portcullis4-tmp portcullis4',
        'swap portcullis6-tmp portcullis6',
        'swap portcullis-net4-tmp portcullis-net4',
        'swap portcullis-net6-tmp portcullis-net6',
        '',
      ].join('\n'),
    );
  });

  it('keeps every set name within ipset\'s 31 characters', () => {
    for (const line of renderIpsetReplaceAll([], 1).split('\n')) {
      for (const word of line.split(' ').slice(1, 3)) {
        if (word.startsWith('portcullis')) expect(word.length).toBeLessThanOrEqual(31);
      }
    }
  });

  it('throws on an invalid ban', () => {
    expect(() => renderIpsetReplaceAll([ip('192.0.2.1\ndestroy')], 1)).toThrow(RangeError);
  });
});

describe('parsing ipset output', () => {
  it('reads `ipset save` (a /32 of a hash:net set is printed bare)', () => {
    const saved = [
      'create portcullis-net4 hash:net family inet hashsize 1024 maxelem 4 timeout 0 bucketsize 12 initval 0xd4813e21',
      'add portcullis-net4 198.51.100.0/24 timeout 99',
      'add portcullis-net4 198.51.100.7 timeout 98',
      'add portcullis4 192.0.2.1 timeout 5',
      'add portcullis-net4 203.0.113.0/24 timeout 0',
    ].join('\n');
    expect(parseIpsetSave(saved, 'portcullis-net4')).toEqual([
      { target: '198.51.100.0/24', timeoutSec: 99 },
      { target: '198.51.100.7/32', timeoutSec: 98 },
      { target: '203.0.113.0/24', timeoutSec: 2_147_483 },
    ]);
  });

  it('reads `ipset list -t`', () => {
    const text = 'Name: portcullis4\nType: hash:ip\nRevision: 6\nHeader: family inet hashsize 1024 maxelem 4 timeout 0 bucketsize 12 initval 0x58dd0a9b\nSize in memory: 408\n';
    expect(parseIpsetHeader(text)).toEqual({ type: 'hash:ip', family: 'inet', maxelem: 4, hasTimeout: true });
    expect(parseIpsetHeader(text.replace(' timeout 0', ''))).toMatchObject({ hasTimeout: false });
  });
});

describe('IpsetBackend with a scripted runner', () => {
  it('a line the kernel refuses does not lose the lines after it: the batch is split, the rest applied, the refused one named', async () => {
    const runner = new ScriptedCommandRunner((command) => {
      const lines = (command.input ?? '').split('\n');
      const bad = lines.findIndex((line) => line.startsWith('add portcullis4 192.0.2.9 '));
      if (bad !== -1) throw new FirewallCommandError('ipset', command.args, `ipset v7.17: Error in line ${bad + 1}: Hash is full, cannot add more elements\n`);
      return { stdout: '', stderr: '' };
    });
    const backend = new IpsetBackend({ ports: [80], maxBans: 10 }, runner);
    backend.add(ip('192.0.2.9'));
    backend.add(ip('192.0.2.7'));
    backend.add(net('198.51.100.0/24'));
    backend.remove('192.0.2.5');
    const error = await backend.commit().catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(FirewallBatchError);
    expect((error as FirewallBatchError).refused.map((change) => [change.kind, change.target])).toEqual([['add', '192.0.2.9']]);
    expect((error as Error).message).toMatch(/1 of 4 changes refused, the others applied: add 192.0.2.9 \(ipset v7.17: Error in line \d: Hash is full/);
    const accepted = runner.commands.filter((command) => !(command.input ?? '').includes('192.0.2.9 ')).map((command) => command.input).join('');
    for (const line of ['del portcullis4 192.0.2.5', 'add portcullis4 192.0.2.7 timeout 600', 'add portcullis-net4 198.51.100.0/24 timeout 600']) expect(accepted).toContain(line);
  });

  it('an invalid target throws before anything runs', async () => {
    const runner = new ScriptedCommandRunner();
    const backend = new IpsetBackend({ ports: [80], maxBans: 10 }, runner);
    expect(() => backend.add(ip('192.0.2.1 timeout 1'))).toThrow(RangeError);
    await expect(backend.replaceAll([net('198.51.100.1/24')])).rejects.toThrow(RangeError);
    expect(runner.commands).toEqual([]);
  });

  it('init() refuses a set of another type instead of mixing it up', async () => {
    const runner = new ScriptedCommandRunner((command) => {
      if (command.args.join(' ') === 'list -n') return { stdout: 'portcullis4\n', stderr: '' };
      if (command.args[0] === 'list') return { stdout: 'Type: hash:net\nHeader: family inet hashsize 1024 maxelem 10 timeout 0\n', stderr: '' };
      return { stdout: '', stderr: '' };
    });
    const error = await new IpsetBackend({ ports: [80], maxBans: 10 }, runner).init().catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(FirewallCommandError);
    expect((error as Error).message).toMatch(/portcullis4 exists as hash:net family inet, portcullis needs hash:ip family inet/);
  });

  it('replaceAll() destroys the -tmp sets even when the restore fails', async () => {
    const inputs: string[] = [];
    const runner = new ScriptedCommandRunner((command) => {
      inputs.push(command.input ?? '');
      if (command.input?.includes('create')) throw new FirewallCommandError('ipset', command.args, 'ipset v7.17: Error in line 3: Hash is full, cannot add more elements');
      return { stdout: '', stderr: '' };
    });
    await expect(new IpsetBackend({ ports: [80], maxBans: 1 }, runner).replaceAll([ip('192.0.2.1'), ip('192.0.2.2')])).rejects.toThrow(/Hash is full/);
    expect(inputs).toHaveLength(3);
    expect(inputs[2]).toContain('destroy portcullis4-tmp');
  });
});
