import { expect, it } from 'vitest';
import { NftablesBackend } from '../../../src/firewall/nftables-backend.js';
import type { CommandRunner } from '../../../src/firewall/command-runner.js';
import { CLIENT, describeBanBackend, prefixBan } from '../support/ban-backend-suite.js';

/** The chain's hook and rules, and the sets' sizes, as nft reports them. */
async function structure(runner: CommandRunner): Promise<unknown> {
  const { stdout } = await runner.run('nft', ['-j', '-t', 'list', 'table', 'inet', 'portcullis']);
  const items = (JSON.parse(stdout) as { nftables: Array<Record<string, Record<string, unknown>>> }).nftables;
  return {
    chains: items.filter((item) => item.chain).map((item) => ({ name: item.chain?.name, hook: item.chain?.hook, prio: item.chain?.prio, policy: item.chain?.policy })),
    rules: items.filter((item) => item.rule).length,
    sets: Object.fromEntries(items.filter((item) => item.set).map((item) => [item.set?.name, { size: item.set?.size, flags: item.set?.flags }])),
  };
}

await describeBanBackend(
  {
    name: 'nftables',
    tools: ['nft', 'conntrack'],
    create: (options, runner) => new NftablesBackend(options, runner),
    kernelTimeouts: true,
    structure,
    trackConnections: async (runner) => {
      await runner.run('nft', ['-f', '-'], { input: 'add table inet test_stateful\nadd chain inet test_stateful input { type filter hook input priority filter; }\nadd rule inet test_stateful input ct state established,related accept\n' });
    },
    expectedStructure: {
      chains: [{ name: 'prerouting', hook: 'prerouting', prio: -300, policy: 'accept' }],
      rules: 4,
      sets: {
        addr4: { size: 64, flags: ['timeout'] },
        addr6: { size: 64, flags: ['timeout'] },
        net4: { size: 64, flags: ['interval', 'timeout'] },
        net6: { size: 64, flags: ['interval', 'timeout'] },
      },
    },
  },
  (context) => {
    it('replaceAll() keeps the outer one of nested prefixes (an interval set refuses overlaps)', async () => {
      const { backend } = context();
      await backend.replaceAll([prefixBan('198.51.100.0/24'), prefixBan('198.51.0.0/16'), prefixBan('198.51.100.128/25'), prefixBan('203.0.113.0/24')]);
      expect((await backend.list()).sort()).toEqual(['198.51.0.0/16', '203.0.113.0/24']);
      expect(await context().connect(CLIENT.c, { timeoutMs: 1_500 })).toBe('timeout');
      await backend.replaceAll([]);
    });
  },
);
