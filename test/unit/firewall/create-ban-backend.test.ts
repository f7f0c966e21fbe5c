import { describe, expect, it } from 'vitest';
import { ScriptedCommandRunner } from '../../../src/firewall/command-runner.js';
import { createBanBackend } from '../../../src/firewall/create-ban-backend.js';
import { NoneBackend } from '../../../src/firewall/none-backend.js';

describe('createBanBackend', () => {
  it.each(['nftables', 'ipset', 'iptables', 'none'] as const)('builds the %s backend without running anything', (name) => {
    const runner = new ScriptedCommandRunner();
    expect(createBanBackend(name, { ports: [80], maxBans: 10 }, runner).name).toBe(name);
    expect(runner.commands).toEqual([]);
  });

  it('refuses an unknown name', () => {
    expect(() => createBanBackend('pf' as never, { ports: [80], maxBans: 10 })).toThrow(/unknown firewall backend "pf"/);
  });
});

describe('NoneBackend', () => {
  it('does nothing and holds nothing', async () => {
    const backend = new NoneBackend();
    await backend.init();
    backend.add({ target: '192.0.2.1', family: 4, scope: 'ip', timeoutSec: 5 });
    backend.remove('192.0.2.1');
    await backend.commit();
    await backend.replaceAll([{ target: '192.0.2.1', family: 4, scope: 'ip', timeoutSec: 5 }]);
    await backend.forgetConnections([{ target: '192.0.2.1', family: 4, scope: 'ip', timeoutSec: 5 }]);
    expect(await backend.list()).toEqual([]);
  });
});
