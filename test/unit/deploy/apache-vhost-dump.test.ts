import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseApacheVhostDump } from '../../../src/deploy/apache-vhost-dump.js';
import { writeApacheLayout, type ApacheLayout } from '../../support/apache-layout.js';

/** The parser on what a real apache2 -S prints for a certbot-secured Debian tree (captured here, never typed). */
describe('parseApacheVhostDump on real apache2 -S output', () => {
  let layout: ApacheLayout;
  let output: string;

  beforeAll(async () => {
    layout = await writeApacheLayout(
      [
        { file: 'blog', serverName: 'blog.example.org', aliases: ['www.blog.example.org'], https: true },
        { file: 'shop', serverName: 'shop.example.org', aliases: ['*.shop.example.org'], https: true },
        { file: 'plain', serverName: 'plain.example.org' },
      ],
      { 'zz-internal.conf': '<VirtualHost 127.0.0.1:8081>\n\tServerName internal.example.org\n</VirtualHost>\n<VirtualHost [::1]:8082>\n\tServerName v6.example.org\n</VirtualHost>\n' },
    );
    output = await layout.dumpVhosts();
  }, 60_000);

  afterAll(async () => {
    await layout?.remove();
  });

  it('reads every address with its vhosts in Apache order, aliases and wildcards included', () => {
    const dump = parseApacheVhostDump(output);
    const byAddress = Object.fromEntries(dump.addresses.map((address) => [address.address, address]));
    expect(Object.keys(byAddress).sort()).toEqual(['*:443', '*:80', '127.0.0.1:8081', '[::1]:8082']);
    const http = byAddress['*:80']!;
    expect(http).toMatchObject({ host: '*', port: 80, nameBased: true });
    expect(http.vhosts.map((vhost) => [vhost.serverName, vhost.aliases, vhost.file, vhost.line])).toEqual([
      [http.vhosts[0]!.serverName, [], join(layout.sitesEnabled, '000-default.conf'), 1],
      ['blog.example.org', ['www.blog.example.org'], join(layout.sitesEnabled, 'blog.conf'), 1],
      ['plain.example.org', [], join(layout.sitesEnabled, 'plain.conf'), 1],
      ['shop.example.org', ['*.shop.example.org'], join(layout.sitesEnabled, 'shop.conf'), 1],
    ]);
    expect(byAddress['*:443']!.vhosts.map((vhost) => [vhost.serverName, vhost.aliases, vhost.line])).toEqual([
      ['blog.example.org', ['www.blog.example.org'], 2],
      ['shop.example.org', ['*.shop.example.org'], 2],
    ]);
    expect(byAddress['127.0.0.1:8081']).toMatchObject({ host: '127.0.0.1', port: 8081, nameBased: false, vhosts: [{ serverName: 'internal.example.org', aliases: [], line: 1 }] });
    expect(byAddress['[::1]:8082']).toMatchObject({ host: '::1', port: 8082, nameBased: false, vhosts: [{ serverName: 'v6.example.org', line: 4 }] });
    expect(dump.serverRoot).toBe(layout.dir);
  });

  it('refuses output that is not a vhost dump, and a line it does not know, naming it', () => {
    expect(() => parseApacheVhostDump('Syntax OK\n')).toThrow(expect.objectContaining({ code: 'PC_ERR_APACHE_LAYOUT' }));
    const damaged = output.replace(/^(\s+)alias www\.blog/m, '$1allias www.blog');
    expect(() => parseApacheVhostDump(damaged)).toThrow(/cannot read "allias www\.blog\.example\.org"/);
  });
});
