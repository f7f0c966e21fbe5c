import { describe, expect, it } from 'vitest';
import type { DumpedAddress } from '../../../src/deploy/apache-vhost-dump.js';
import { planFrontDoor, type FoundCertificate } from '../../../src/deploy/front-door-plan.js';
import { readVirtualHostBlock } from '../../../src/deploy/virtual-host-block.js';
import { webrootReissueCommands } from '../../../src/deploy/webroot-reissue.js';

const vhost = (serverName: string, root: string | null): string => `<VirtualHost *:443>\nServerName ${serverName}\n${root === null ? '' : `DocumentRoot "${root}"\n`}SSLEngine on\n</VirtualHost>\n`;

function commands(vhosts: [string, string | null][], certificates: FoundCertificate[]): string[] {
  const address: DumpedAddress = { address: '*:443', host: '*', port: 443, nameBased: true, vhosts: vhosts.map(([serverName]) => ({ serverName, file: `/${serverName}.conf`, line: 1, aliases: [] })) };
  const blocks = new Map(vhosts.map(([serverName, root]) => [`/${serverName}.conf:1`, readVirtualHostBlock(vhost(serverName, root), 1)]));
  return webrootReissueCommands(planFrontDoor({ dump: { addresses: [address] }, blocks, certificates, allowXmlrpc: [] }), certificates);
}

describe('webrootReissueCommands', () => {
  it('issues a certificate again for the names it has, each with the DocumentRoot of the vhost serving it', () => {
    expect(commands([['a.example', '/var/www/a'], ['b.example', '/srv/b site']], [{ name: 'both', hostNames: ['a.example', 'b.example'] }])).toEqual([
      "certbot certonly --webroot --cert-name both -w /var/www/a -d a.example -w '/srv/b site' -d b.example --force-renewal",
    ]);
  });

  it('leaves wildcard certificates, names without a DocumentRoot, and certificates no site uses to the person', () => {
    expect(commands([['a.example', '/var/www/a']], [{ name: 'wild', hostNames: ['a.example', '*.a.example'] }])).toEqual(['# wild has *.a.example: DNS-01 only, so it keeps renewing as it was issued (a DNS plugin), not with --webroot']);
    expect(commands([['a.example', null]], [{ name: 'a', hostNames: ['a.example'] }])).toEqual(['# a: no DocumentRoot found for a.example; re-issue it with certbot certonly --webroot by hand']);
    expect(commands([['a.example', '/var/www/a']], [{ name: 'a', hostNames: ['a.example'] }, { name: 'unused', hostNames: ['z.example'] }])).toHaveLength(1);
  });
});
