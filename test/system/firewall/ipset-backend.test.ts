import { expect, it } from 'vitest';
import { IpsetBackend } from '../../../src/firewall/ipset-backend.js';
import type { CommandRunner } from '../../../src/firewall/command-runner.js';
import { describeBanBackend, ipBan, prefixBan } from '../support/ban-backend-suite.js';

/** Our rules in the raw table of each family, as iptables-save prints them. */
async function structure(runner: CommandRunner): Promise<unknown> {
  const ours = async (tool: string): Promise<string[]> =>
    (await runner.run(tool, ['-t', 'raw'])).stdout.split('\n').filter((line) => line.startsWith('-A PREROUTING') || line.startsWith('-A PORTCULLIS'));
  return { 4: await ours('iptables-save'), 6: await ours('ip6tables-save') };
}

await describeBanBackend(
  {
    name: 'ipset',
    tools: ['ipset', 'iptables', 'ip6tables', 'conntrack'],
    create: (options, runner) => new IpsetBackend(options, runner),
    kernelTimeouts: true,
    structure,
    trackConnections: async (runner) => {
      await runner.run('iptables', ['-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT']);
    },
    expectedStructure: {
      4: [
        '-A PREROUTING -j PORTCULLIS',
        '-A PORTCULLIS -p tcp -m multiport --dports 8080,8443 -m set --match-set portcullis4 src -j DROP',
        '-A PORTCULLIS -p tcp -m multiport --dports 8080,8443 -m set --match-set portcullis-net4 src -j DROP',
      ],
      6: [
        '-A PREROUTING -j PORTCULLIS',
        '-A PORTCULLIS -p tcp -m multiport --dports 8080,8443 -m set --match-set portcullis6 src -j DROP',
        '-A PORTCULLIS -p tcp -m multiport --dports 8080,8443 -m set --match-set portcullis-net6 src -j DROP',
      ],
    },
  },
  (context) => {
    it('keeps overlapping prefixes (hash:net allows them) and leaves no temporary sets behind', async () => {
      const { backend, serverRunner } = context();
      await backend.replaceAll([prefixBan('198.51.100.0/24'), prefixBan('198.51.0.0/16'), ipBan('198.51.100.10')]);
      expect((await backend.list()).sort()).toEqual(['198.51.0.0/16', '198.51.100.0/24', '198.51.100.10']);
      const names = (await serverRunner.run('ipset', ['list', '-n'])).stdout.split('\n').filter(Boolean).sort();
      expect(names).toEqual(['portcullis-net4', 'portcullis-net6', 'portcullis4', 'portcullis6']);
      await backend.replaceAll([]);
    });
  },
);
