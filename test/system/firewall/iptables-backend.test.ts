import { expect, it } from 'vitest';
import { IptablesBackend } from '../../../src/firewall/iptables-backend.js';
import type { CommandRunner } from '../../../src/firewall/command-runner.js';
import { describeBanBackend, ipBan, prefixBan } from '../support/ban-backend-suite.js';

/** Our hooks in the raw table of each family (not the per-ban rules), as iptables-save prints them. */
async function structure(runner: CommandRunner): Promise<unknown> {
  const ours = async (tool: string): Promise<string[]> =>
    (await runner.run(tool, ['-t', 'raw'])).stdout.split('\n').filter((line) => line.startsWith('-A PREROUTING') || line.startsWith('-A PORTCULLIS '));
  return { 4: await ours('iptables-save'), 6: await ours('ip6tables-save') };
}

const hooks = [
  '-A PREROUTING -j PORTCULLIS',
  '-A PORTCULLIS -p tcp -m multiport --dports 8080,8443 -j PORTCULLIS-ADDR',
  '-A PORTCULLIS -p tcp -m multiport --dports 8080,8443 -j PORTCULLIS-NET',
];

await describeBanBackend(
  {
    name: 'iptables',
    tools: ['iptables', 'ip6tables', 'iptables-restore', 'ip6tables-restore', 'conntrack'],
    create: (options, runner) => new IptablesBackend(options, runner),
    kernelTimeouts: false,
    structure,
    trackConnections: async (runner) => {
      await runner.run('iptables', ['-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT']);
    },
    expectedStructure: { 4: hooks, 6: hooks },
  },
  (context) => {
    it('writes one DROP rule per ban, a /32 prefix apart from the address', async () => {
      const { backend, serverRunner } = context();
      await backend.replaceAll([ipBan('198.51.100.10'), prefixBan('198.51.100.10/32'), prefixBan('2001:db8:2::/64')]);
      expect((await backend.list()).sort()).toEqual(['198.51.100.10', '198.51.100.10/32', '2001:db8:2::/64']);
      const saved = (await serverRunner.run('iptables-save', ['-t', 'raw'])).stdout;
      expect(saved).toContain('-A PORTCULLIS-ADDR -s 198.51.100.10/32 -j DROP');
      expect(saved).toContain('-A PORTCULLIS-NET -s 198.51.100.10/32 -j DROP');
      await backend.replaceAll([]);
    });
  },
);
