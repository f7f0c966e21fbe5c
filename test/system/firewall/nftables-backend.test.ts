import { expect, it } from 'vitest';
import { NftablesBackend } from '../../../src/firewall/nftables-backend.js';
import type { CommandRunner } from '../../../src/firewall/command-runner.js';
import { CLIENT, describeBanBackend, ipBan, prefixBan } from '../support/ban-backend-suite.js';

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
    // No prefix set until a prefix is banned.
    expectedStructure: {
      chains: [{ name: 'prerouting', hook: 'prerouting', prio: -300, policy: 'accept' }],
      rules: 2,
      sets: {
        addr4: { size: 64, flags: ['timeout'] },
        addr6: { size: 64, flags: ['timeout'] },
      },
    },
  },
  (context) => {
    it('one set and one masked rule per prefix length in use: created by the first ban of that length, removed by replaceAll() when unused', async () => {
      const { backend, serverRunner } = context();
      await backend.replaceAll([]);
      backend.add(prefixBan('198.51.100.0/24'));
      backend.add(prefixBan('2001:db8:2::/64'));
      await backend.commit();
      backend.add(prefixBan('203.0.113.0/24'));
      await backend.commit();
      const grown = (await structure(serverRunner)) as { rules: number; sets: Record<string, unknown> };
      expect(grown.rules).toBe(4);
      expect(Object.keys(grown.sets).sort()).toEqual(['addr4', 'addr6', 'net4_24', 'net6_64']);
      expect(await context().connect(CLIENT.c, { timeoutMs: 1_500 })).toBe('timeout');
      expect(await context().connect(CLIENT.other, { timeoutMs: 1_500 })).toBe('timeout');
      await backend.replaceAll([prefixBan('198.51.0.0/16')]);
      const shrunk = (await structure(serverRunner)) as { rules: number; sets: Record<string, unknown> };
      expect(shrunk.rules).toBe(3);
      expect(Object.keys(shrunk.sets).sort()).toEqual(['addr4', 'addr6', 'net4_16']);
      expect(await backend.list()).toEqual(['198.51.0.0/16']);
      expect(await context().connect(CLIENT.c, { timeoutMs: 1_500 })).toBe('timeout');
      await backend.replaceAll([]);
    });

    it('init() deletes the interval sets of earlier versions (net4, net6) and keeps every other ban', async () => {
      const { backend, serverRunner } = context();
      await backend.replaceAll([ipBan(CLIENT.a), prefixBan('2001:db8:2::/64')]);
      await serverRunner.run('nft', ['-f', '-'], {
        input: [
          'add set inet portcullis net4 { type ipv4_addr; flags interval, timeout; size 64; }',
          'add set inet portcullis net6 { type ipv6_addr; flags interval, timeout; size 64; }',
          'add element inet portcullis net4 { 203.0.113.0/24 timeout 600s }',
          'add rule inet portcullis prerouting tcp dport { 8080, 8443 } ip saddr @net4 counter drop',
          '',
        ].join('\n'),
      });
      await backend.init();
      const after = (await structure(serverRunner)) as { rules: number; sets: Record<string, unknown> };
      expect(Object.keys(after.sets).sort()).toEqual(['addr4', 'addr6', 'net6_64']);
      expect(after.rules).toBe(3);
      expect((await backend.list()).sort()).toEqual([CLIENT.a, '2001:db8:2::/64']);
      await backend.replaceAll([]);
    });
  },
);
