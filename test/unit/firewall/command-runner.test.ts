import { access } from 'node:fs/promises';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BackendUnavailableError, FirewallCommandError } from '../../../src/core/errors.js';
import { CommandRunner, runCommand, SCRIPTED_INPUT_FILE, ScriptedCommandRunner, unavailableWhenUnprivileged } from '../../../src/firewall/command-runner.js';

describe('runCommand', () => {
  it('writes input to stdin and resolves with the output', async () => {
    expect(await runCommand('cat', [], { input: 'add element x { 1 }\n' })).toEqual({ stdout: 'add element x { 1 }\n', stderr: '' });
  });

  it('passes arguments as they are: no shell sees them', async () => {
    const { stdout } = await runCommand('printf', ['%s|', '$(touch /tmp/never)', '; echo', '}\n{']);
    expect(stdout).toBe('$(touch /tmp/never)|; echo|}\n{|');
  });

  it('rejects a non-zero exit with FirewallCommandError carrying stderr', async () => {
    const error = await runCommand('sh', ['-c', 'echo "Error: set is full" >&2; exit 1']).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(FirewallCommandError);
    expect(error).toMatchObject({ code: 'PC_ERR_FIREWALL_COMMAND', command: 'sh', stderr: 'Error: set is full\n' });
  });

  it('names the Debian package when the tool is missing', async () => {
    const error = await runCommand('/nonexistent/bin/nft', ['-f', '-']).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect((error as Error).message).toBe('nft is not installed or not on PATH (Debian/Ubuntu: apt-get install nftables)');
    const ipset = await runCommand('/nonexistent/bin/ipset', []).catch((reason: unknown) => reason);
    expect((ipset as Error).message).toMatch(/apt-get install ipset/);
    const conntrack = await runCommand('/nonexistent/bin/conntrack', []).catch((reason: unknown) => reason);
    expect((conntrack as Error).message).toMatch(/apt-get install conntrack/);
  });

  it('kills a command that takes too long', async () => {
    const started = Date.now();
    const error = await runCommand('sleep', ['5'], { timeoutMs: 200 }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(FirewallCommandError);
    expect((error as FirewallCommandError).stderr).toMatch(/timed out after 200 ms/);
    expect(Date.now() - started).toBeLessThan(4_000);
  });

  it('bounds the output it keeps', async () => {
    const error = await runCommand('head', ['-c', '100000', '/dev/zero'], { maxOutputBytes: 1000 }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(FirewallCommandError);
    expect((error as FirewallCommandError).stderr).toMatch(/output exceeded 1000 bytes/);
  });

  it('rejects invalid options', async () => {
    await expect(runCommand('true', [], { timeoutMs: 0 })).rejects.toThrow(RangeError);
    await expect(runCommand('true', [], { maxOutputBytes: -1 })).rejects.toThrow(RangeError);
  });
});

describe('CommandRunner', () => {
  it('runs in the caller\'s namespace by default', async () => {
    expect((await new CommandRunner().run('echo', ['hi'])).stdout).toBe('hi\n');
  });

  it('runWithInputFile hands the tool a private file holding the input (readable by path, unlike stdin), removed afterwards', async () => {
    let path = '';
    const { stdout } = await new CommandRunner().runWithInputFile(
      'sh',
      (file) => {
        path = file;
        return ['-c', 'stat -c %a "$1"; cat "$1"', 'sh', file];
      },
      '-D -f ipv4 -s 192.0.2.7\n',
    );
    expect(stdout).toBe('600\n-D -f ipv4 -s 192.0.2.7\n');
    await expect(access(path)).rejects.toThrow();
    await expect(access(dirname(path))).rejects.toThrow();
  });

  it('runWithInputFile removes the file when the command fails too', async () => {
    let path = '';
    const failing = new CommandRunner().runWithInputFile('false', (file) => [(path = file)], 'x');
    await expect(failing).rejects.toThrow(FirewallCommandError);
    await expect(access(dirname(path))).rejects.toThrow();
  });

  it.each(['-n', '', 'a b', 'x;y', '../x', 'a'.repeat(65)])('refuses the namespace name %j', (netns) => {
    expect(() => new CommandRunner({ netns })).toThrow(RangeError);
  });
});

describe('unavailableWhenUnprivileged', () => {
  it.each([
    'Error: Could not process rule: Operation not permitted',
    'ipset v7.17: Kernel error received: Operation not permitted',
    'iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)',
  ])('turns "%s" into BackendUnavailableError naming CAP_NET_ADMIN', (stderr) => {
    const error = unavailableWhenUnprivileged(new FirewallCommandError('nft', ['-f', '-'], stderr));
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect((error as Error).message).toMatch(/CAP_NET_ADMIN/);
  });

  it('leaves other failures alone', () => {
    const original = new FirewallCommandError('nft', ['-f', '-'], 'Error: syntax error');
    expect(unavailableWhenUnprivileged(original)).toBe(original);
  });
});

describe('ScriptedCommandRunner', () => {
  it('records commands and runs nothing', async () => {
    const runner = new ScriptedCommandRunner(() => ({ stdout: 'ok', stderr: '' }));
    expect(await runner.run('nft', ['-f', '-'], { input: 'x' })).toEqual({ stdout: 'ok', stderr: '' });
    expect(runner.commands).toEqual([{ file: 'nft', args: ['-f', '-'], input: 'x' }]);
  });

  it('records a runWithInputFile command with a placeholder path and the input, writing no file', async () => {
    const runner = new ScriptedCommandRunner();
    await runner.runWithInputFile('conntrack', (path) => ['-R', path], 'y\n');
    expect(runner.commands).toEqual([{ file: 'conntrack', args: ['-R', SCRIPTED_INPUT_FILE], input: 'y\n' }]);
  });
});
