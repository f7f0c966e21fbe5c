import { describe, expect, it } from 'vitest';
import { BackendUnavailableError, FirewallCommandError } from '../../../src/core/errors.js';
import type { KernelBan } from '../../../src/firewall/ban-backend.js';
import { SCRIPTED_INPUT_FILE, ScriptedCommandRunner, type CommandOutput, type RecordedCommand } from '../../../src/firewall/command-runner.js';
import { ConntrackFlusher, deleteArgs } from '../../../src/firewall/conntrack.js';

const ip = (target: string, timeoutSec = 1): KernelBan => ({ target, family: target.includes(':') ? 6 : 4, scope: 'ip', timeoutSec });
const net = (target: string): KernelBan => ({ target, family: target.includes(':') ? 6 : 4, scope: 'prefix', timeoutSec: 1 });
const ok: CommandOutput = { stdout: '', stderr: '' };

/** A runner whose conntrack processes run until the test releases them, one by one. */
function gatedRunner(respond: (command: RecordedCommand) => CommandOutput = () => ok) {
  const state = { running: 0, mostAtOnce: 0, releases: [] as Array<() => void> };
  const runner = new ScriptedCommandRunner(async (command) => {
    state.running += 1;
    state.mostAtOnce = Math.max(state.mostAtOnce, state.running);
    await new Promise<void>((resolve) => state.releases.push(resolve));
    state.running -= 1;
    return respond(command);
  });
  /** Releases waiting processes until none is left (bounded). */
  const drain = async (): Promise<void> => {
    for (let round = 0; round < 1_000 && (state.releases.length > 0 || state.running > 0); round++) {
      await new Promise((resolve) => setImmediate(resolve));
      state.releases.shift()?.();
    }
  };
  return { runner, state, drain };
}

describe('deleteArgs', () => {
  it('deletes by source, with a mask for prefixes of either family', () => {
    expect([ip('192.0.2.7'), net('198.51.100.0/24'), net('2001:db8:1::/48')].map((ban) => deleteArgs(ban).join(' '))).toEqual([
      '-D -f ipv4 -s 192.0.2.7',
      '-D -f ipv4 -s 198.51.100.0 --mask-src 255.255.255.0',
      '-D -f ipv6 -s 2001:db8:1:: --mask-src ffff:ffff:ffff::',
    ]);
  });

  it('does not care whether the ban has run out by now', () => {
    expect(deleteArgs(ip('192.0.2.7', 0))).toEqual(['-D', '-f', 'ipv4', '-s', '192.0.2.7']);
  });
});

describe('ConntrackFlusher', () => {
  it('hands a batch of sources to one `conntrack -R -`, one command per line', async () => {
    const runner = new ScriptedCommandRunner();
    await new ConntrackFlusher(runner).forget([ip('192.0.2.7'), net('198.51.100.0/24')]);
    expect(runner.commands).toEqual([
      { file: 'conntrack', args: ['-R', SCRIPTED_INPUT_FILE], input: '-D -f ipv4 -s 192.0.2.7\n-D -f ipv4 -s 198.51.100.0 --mask-src 255.255.255.0\n' },
    ]);
  });

  it('runs at most `concurrency` processes of at most `batchSize` sources; waiting sources are coalesced, a duplicate flushed once', async () => {
    const { runner, state, drain } = gatedRunner();
    const flusher = new ConntrackFlusher(runner, { batchSize: 3, concurrency: 2 });
    const calls: Array<Promise<void>> = [];
    for (let i = 0; i < 20; i++) calls.push(flusher.forget([ip(`192.0.2.${i}`)]));
    calls.push(flusher.forget([ip('192.0.2.19')]));
    await drain();
    await Promise.all(calls);
    expect(state.mostAtOnce).toBe(2);
    // The first two sources start a process each at once; the other 18 wait and go 3 per process.
    expect(runner.commands).toHaveLength(2 + 6);
    const lines = runner.commands.flatMap((command) => (command.input ?? '').split('\n').filter(Boolean));
    expect(lines).toHaveLength(20);
    expect(new Set(lines).size).toBe(20);
  });

  it('an older conntrack without -R gets one `conntrack -D` per source, still bounded; "0 flow entries" is not a failure', async () => {
    const { runner, state, drain } = gatedRunner((command) => {
      if (command.args[0] === '-R') throw new FirewallCommandError('conntrack', command.args, "conntrack v1.4.5 (conntrack-tools): unknown option `-R'\nTry `conntrack -h' or 'conntrack --help' for more information.\n");
      throw new FirewallCommandError('conntrack', command.args, 'conntrack v1.4.5 (conntrack-tools): 0 flow entries have been deleted.\n');
    });
    const flusher = new ConntrackFlusher(runner, { concurrency: 1 });
    const first = flusher.forget([ip('192.0.2.1'), ip('192.0.2.2')]);
    const second = flusher.forget([ip('192.0.2.3')]);
    await drain();
    await Promise.all([first, second]);
    expect(state.mostAtOnce).toBe(1);
    expect(runner.commands.map((command) => command.args.join(' '))).toEqual([
      `-R ${SCRIPTED_INPUT_FILE}`,
      '-D -f ipv4 -s 192.0.2.1',
      '-D -f ipv4 -s 192.0.2.2',
      '-D -f ipv4 -s 192.0.2.3',
    ]);
  });

  it('a failing batch rejects the calls whose sources it held, and not the others', async () => {
    const runner = new ScriptedCommandRunner((command) => {
      if (command.input?.includes('192.0.2.1\n')) throw new FirewallCommandError('conntrack', command.args, 'conntrack v1.4.7 (conntrack-tools): Operation failed: invalid parameters\n');
      return ok;
    });
    const flusher = new ConntrackFlusher(runner, { batchSize: 1 });
    await expect(flusher.forget([ip('192.0.2.1')])).rejects.toThrow(FirewallCommandError);
    await expect(flusher.forget([ip('192.0.2.2')])).resolves.toBeUndefined();
  });

  it('without the conntrack tool, does nothing, and looks for it only once', async () => {
    const runner = new ScriptedCommandRunner(() => {
      throw new BackendUnavailableError('conntrack is not installed');
    });
    const flusher = new ConntrackFlusher(runner);
    await flusher.forget([ip('192.0.2.7')]);
    await flusher.forget([ip('192.0.2.8')]);
    expect(runner.commands).toHaveLength(1);
  });

  it('refuses an invalid target before running anything', async () => {
    const runner = new ScriptedCommandRunner();
    await expect(new ConntrackFlusher(runner).forget([ip('192.0.2.1'), ip('192.0.2.7 -D')])).rejects.toThrow(RangeError);
    expect(runner.commands).toEqual([]);
  });

  it('refuses flushes beyond `maxQueued` waiting sources, and flushes the rest', async () => {
    const { runner, drain } = gatedRunner();
    const flusher = new ConntrackFlusher(runner, { concurrency: 1, batchSize: 10, maxQueued: 2 });
    const running = flusher.forget([ip('192.0.2.1')]);
    const over = flusher.forget([ip('192.0.2.2'), ip('192.0.2.3'), ip('192.0.2.4')]);
    const refused = over.catch((error: unknown) => error);
    await drain();
    await running;
    expect(await refused).toBeInstanceOf(FirewallCommandError);
    expect(((await refused) as Error).message).toContain('192.0.2.4 is not flushed');
    expect(runner.commands.map((command) => command.input)).toEqual(['-D -f ipv4 -s 192.0.2.1\n', '-D -f ipv4 -s 192.0.2.2\n-D -f ipv4 -s 192.0.2.3\n']);
  });

  it('refuses invalid limits', () => {
    expect(() => new ConntrackFlusher(new ScriptedCommandRunner(), { concurrency: 0 })).toThrow(RangeError);
    expect(() => new ConntrackFlusher(new ScriptedCommandRunner(), { batchSize: 1.5 })).toThrow(RangeError);
  });
});
