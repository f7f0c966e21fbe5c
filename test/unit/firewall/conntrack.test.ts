import { describe, expect, it } from 'vitest';
import { BackendUnavailableError, FirewallCommandError } from '../../../src/core/errors.js';
import { ScriptedCommandRunner } from '../../../src/firewall/command-runner.js';
import { forgetConnections } from '../../../src/firewall/conntrack.js';

describe('forgetConnections', () => {
  it('deletes by source, with a mask for prefixes of either family', async () => {
    const runner = new ScriptedCommandRunner();
    const state = { conntrackMissing: false };
    await forgetConnections(runner, { target: '192.0.2.7', family: 4, scope: 'ip', timeoutSec: 1 }, state);
    await forgetConnections(runner, { target: '198.51.100.0/24', family: 4, scope: 'prefix', timeoutSec: 1 }, state);
    await forgetConnections(runner, { target: '2001:db8:1::/48', family: 6, scope: 'prefix', timeoutSec: 1 }, state);
    expect(runner.commands.map((command) => [command.file, ...command.args].join(' '))).toEqual([
      'conntrack -D -f ipv4 -s 192.0.2.7',
      'conntrack -D -f ipv4 -s 198.51.100.0 --mask-src 255.255.255.0',
      'conntrack -D -f ipv6 -s 2001:db8:1:: --mask-src ffff:ffff:ffff::',
    ]);
  });

  it('does not care whether the ban has run out by now', async () => {
    const runner = new ScriptedCommandRunner();
    await forgetConnections(runner, { target: '192.0.2.7', family: 4, scope: 'ip', timeoutSec: 0 }, { conntrackMissing: false });
    expect(runner.commands).toHaveLength(1);
  });

  it('"0 flow entries have been deleted" (exit 1) is not a failure; other failures are', async () => {
    const nothing = new ScriptedCommandRunner((command) => {
      throw new FirewallCommandError('conntrack', command.args, 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n');
    });
    await forgetConnections(nothing, { target: '192.0.2.7', family: 4, scope: 'ip', timeoutSec: 1 }, { conntrackMissing: false });
    const broken = new ScriptedCommandRunner((command) => {
      throw new FirewallCommandError('conntrack', command.args, 'conntrack v1.4.7 (conntrack-tools): Operation failed: invalid parameters\n');
    });
    await expect(forgetConnections(broken, { target: '192.0.2.7', family: 4, scope: 'ip', timeoutSec: 1 }, { conntrackMissing: false })).rejects.toThrow(FirewallCommandError);
  });

  it('without the conntrack tool, does nothing, and looks for it only once', async () => {
    const runner = new ScriptedCommandRunner(() => {
      throw new BackendUnavailableError('conntrack is not installed');
    });
    const state = { conntrackMissing: false };
    await forgetConnections(runner, { target: '192.0.2.7', family: 4, scope: 'ip', timeoutSec: 1 }, state);
    await forgetConnections(runner, { target: '192.0.2.8', family: 4, scope: 'ip', timeoutSec: 1 }, state);
    expect(runner.commands).toHaveLength(1);
    expect(state.conntrackMissing).toBe(true);
  });

  it('refuses an invalid target before running anything', async () => {
    const runner = new ScriptedCommandRunner();
    await expect(forgetConnections(runner, { target: '192.0.2.7 -D', family: 4, scope: 'ip', timeoutSec: 1 }, { conntrackMissing: false })).rejects.toThrow(RangeError);
    expect(runner.commands).toEqual([]);
  });
});
