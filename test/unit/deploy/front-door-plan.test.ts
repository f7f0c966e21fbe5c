import { describe, expect, it } from 'vitest';
import type { ApacheVhostDump, DumpedAddress } from '../../../src/deploy/apache-vhost-dump.js';
import { planFrontDoor, type FrontDoorInput } from '../../../src/deploy/front-door-plan.js';
import { readVirtualHostBlock, type VirtualHostBlock } from '../../../src/deploy/virtual-host-block.js';

/** An address of the dump, with vhosts `[serverName, file, aliases]` at line 1. */
function address(text: string, nameBased: boolean, vhosts: [string, string, string[]?][]): DumpedAddress {
  const [host, port] = text.split(/:(?=[^:]*$)/) as [string, string];
  return { address: text, host: host.replace(/^\[|\]$/g, ''), port: Number(port), nameBased, vhosts: vhosts.map(([serverName, file, aliases]) => ({ serverName, file, line: 1, aliases: aliases ?? [] })) };
}

function input(addresses: DumpedAddress[], blocks: Record<string, string>, extra: Partial<FrontDoorInput> = {}): FrontDoorInput {
  const dump: ApacheVhostDump = { addresses };
  const read = new Map<string, VirtualHostBlock | null>(Object.entries(blocks).map(([file, text]) => [`${file}:1`, readVirtualHostBlock(text, 1)]));
  return { dump, blocks: read, certificates: [], allowXmlrpc: [], ...extra };
}

const plain80 = (name: string, extra = '') => `<VirtualHost *:80>\nServerName ${name}\n${extra}\n</VirtualHost>\n`;
const tls443 = (name: string, aliases = '') => `<VirtualHost *:443>\nServerName ${name}\n${aliases === '' ? '' : `ServerAlias ${aliases}\n`}SSLEngine on\n</VirtualHost>\n`;
const REDIRECT = 'RewriteRule ^ https://%{SERVER_NAME}%{REQUEST_URI} [END,NE,R=permanent]';

describe('planFrontDoor', () => {
  it("makes Apache's first named :80 vhost the default site, and leaves loopback and other ports alone", () => {
    const plan = planFrontDoor(
      input(
        [address('*:80', true, [['a.example', 'a.conf', ['www.a.example']], ['b.example', 'b.conf']]), address('127.0.0.1:8081', false, [['internal', 'i.conf']]), address('*:8000', false, [['c.example', 'c.conf']])],
        { 'a.conf': plain80('a.example'), 'b.conf': plain80('b.example'), 'c.conf': plain80('c.example') },
      ),
    );
    expect(plan.sites.map((site) => [site.name, site.hosts, site.isDefault, site.xmlrpc])).toEqual([
      ['a.example', ['a.example', 'www.a.example'], true, 'blocked'],
      ['b.example', ['b.example'], false, 'blocked'],
    ]);
    expect(plan.plainListener).toEqual({ address: '0.0.0.0:80', redirectHttps: false });
    expect(plan.tlsListener).toBeUndefined();
    expect(plan.leftAlone.map((entry) => entry.address)).toEqual(['127.0.0.1:8081', '*:8000']);
    expect(plan.moved.map((placed) => placed.vhost.file)).toEqual(['a.conf', 'b.conf']);
  });

  it("takes a lone :443 vhost's aliases from its block (apache2ctl -S prints none), and the certificate covering its names", () => {
    const plan = planFrontDoor(
      input([address('*:80', true, [['127.0.1.1', '000.conf'], ['a.example', 'a.conf']]), address('*:443', false, [['a.example', 'a-le-ssl.conf']])], { '000.conf': '<VirtualHost *:80>\n</VirtualHost>\n', 'a.conf': plain80('a.example', REDIRECT), 'a-le-ssl.conf': tls443('a.example', 'www.a.example shop.a.example') }, {
        certificates: [{ name: 'a.example', hostNames: ['a.example', '*.a.example'] }],
        allowXmlrpc: ['a.example'],
      }),
    );
    // The catch-all (no ServerName: Apache shows the host's address) is no site, and no site is the default.
    expect(plan.sites).toHaveLength(1);
    expect(plan.sites[0]).toMatchObject({ name: 'a.example', hosts: ['a.example', 'www.a.example', 'shop.a.example'], isDefault: false, redirectsToHttps: true, certificate: 'a.example', uncoveredHosts: [], xmlrpc: 'limited' });
    expect(plan.plainListener).toEqual({ address: '0.0.0.0:80', redirectHttps: true });
    expect(plan.tlsListener).toEqual({ address: '0.0.0.0:443' });
  });

  it('does not redirect when a :80 site has no :443 twin, or its :80 vhost does not redirect, and names uncovered hosts', () => {
    const addresses = [address('*:80', true, [['a.example', 'a.conf'], ['b.example', 'b.conf']]), address('*:443', true, [['a.example', 'a-le-ssl.conf'], ['b.example', 'b-le-ssl.conf']])];
    const blocks = { 'a.conf': plain80('a.example', REDIRECT), 'b.conf': plain80('b.example'), 'a-le-ssl.conf': tls443('a.example'), 'b-le-ssl.conf': tls443('b.example', 'www.b.example') };
    const plan = planFrontDoor(input(addresses, blocks, { certificates: [{ name: 'a', hostNames: ['a.example', 'b.example'] }] }));
    expect(plan.sites.map((site) => site.redirectsToHttps)).toEqual([true, false]);
    expect(plan.plainListener?.redirectHttps).toBe(false);
    expect(plan.notes).toEqual(expect.arrayContaining([expect.stringMatching(/^only some sites redirect to https \(a\.example\)/), expect.stringMatching(/^no certificate found covers www\.b\.example \(site b\.example\)/)]));
  });

  it('refuses --allow-xmlrpc for a site Apache does not have, listing those it has', () => {
    expect(() => planFrontDoor(input([address('*:80', false, [['a.example', 'a.conf']])], { 'a.conf': plain80('a.example') }, { allowXmlrpc: ['blog'] }))).toThrow(
      expect.objectContaining({ code: 'PC_ERR_USAGE', message: "--allow-xmlrpc names no site of Apache's: blog (the sites are a.example)" }),
    );
  });

  it('falls back to the port for TLS where a block cannot be read', () => {
    const plan = planFrontDoor(input([address('*:443', false, [['a.example', 'gone.conf']])], {}, { certificates: [{ name: 'a', hostNames: ['a.example'] }] }));
    expect(plan.sites[0]?.tls?.block).toBeNull();
    expect(plan.tlsListener).toEqual({ address: '0.0.0.0:443' });
    expect(plan.plainListener).toBeUndefined();
  });
});

describe('planFrontDoor and names an earlier vhost has', () => {
  it("leaves out of a site the names an earlier vhost serves in Apache (the same name, or below its wildcard), and a site with none left", () => {
    const plan = planFrontDoor(
      input([address('*:80', true, [['a.example', 'a.conf', ['*.a.example']], ['shop.a.example', 'shop.conf', ['shop.example']], ['b.example', 'b.conf', ['shop.example', 'b2.example']], ['x.a.example', 'x.conf']])], {
        'a.conf': plain80('a.example'),
        'shop.conf': plain80('shop.a.example'),
        'b.conf': plain80('b.example'),
        'x.conf': plain80('x.a.example'),
      }),
    );
    expect(plan.sites.map((site) => [site.name, site.hosts])).toEqual([
      ['a.example', ['a.example', '*.a.example']],
      ['shop.a.example', ['shop.example']],
      ['b.example', ['b.example', 'b2.example']],
    ]);
    expect(plan.notes).toEqual(
      expect.arrayContaining([
        'shop.a.example is served by the earlier vhost a.example (its *.a.example) in Apache, not by shop.a.example: left out of site shop.a.example',
        'shop.example is served by the earlier vhost shop.a.example (its shop.example) in Apache, not by b.example: left out of site b.example',
        'x.a.example has no name Apache would choose it by: no site for it',
      ]),
    );
  });
});

describe('planFrontDoor and the port Apache moves to', () => {
  it('takes --apache-port for the upstream, and refuses one Apache already has vhosts on while others must move there', () => {
    const addresses = [address('*:80', false, [['a.example', 'a.conf']]), address('127.0.0.1:8080', false, [['tomcat.example', 't.conf']])];
    const blocks = { 'a.conf': plain80('a.example') };
    expect(() => planFrontDoor(input(addresses, blocks))).toThrow(expect.objectContaining({ code: 'PC_ERR_USAGE', message: expect.stringMatching(/^Apache already has vhosts on 127\.0\.0\.1:8080 \(t\.conf:1\)/) }));
    const plan = planFrontDoor(input(addresses, blocks, { apachePort: 8090 }));
    expect([plan.upstream, plan.apacheAddress]).toEqual(['http://127.0.0.1:8090', '127.0.0.1:8090']);
    // Nothing left to move (a second init after the first was applied): the loopback vhosts are left alone.
    expect(planFrontDoor(input(addresses.slice(1), {})).leftAlone.map((entry) => entry.address)).toEqual(['127.0.0.1:8080']);
  });
});
