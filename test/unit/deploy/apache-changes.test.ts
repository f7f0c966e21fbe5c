import { describe, expect, it } from 'vitest';
import { renderPortsConf, shellQuote, vhostEditSteps } from '../../../src/deploy/apache-changes.js';
import type { DumpedAddress } from '../../../src/deploy/apache-vhost-dump.js';
import { planFrontDoor } from '../../../src/deploy/front-door-plan.js';
import { readVirtualHostBlock, type VirtualHostBlock } from '../../../src/deploy/virtual-host-block.js';

const lone = (text: string, serverName: string, file: string, line = 1): DumpedAddress => {
  const [host, port] = text.split(/:(?=[^:]*$)/) as [string, string];
  return { address: text, host, port: Number(port), nameBased: false, vhosts: [{ serverName, file, line, aliases: [] }] };
};

function plan(addresses: DumpedAddress[], blocks: Record<string, string | null>) {
  const read = new Map<string, VirtualHostBlock | null>(Object.entries(blocks).map(([key, text]) => [key, text === null ? null : readVirtualHostBlock(text, Number(key.split(':').at(-1)))]));
  return planFrontDoor({ dump: { addresses }, blocks: read, certificates: [{ name: 'c', hostNames: ['*.example'] }], allowXmlrpc: [] });
}

describe('the Apache side of a plan', () => {
  it('moves a TLS-only vhost to loopback without its SSL lines, in one sed by line number', () => {
    const file = '/etc/apache2/sites-enabled/a.conf';
    const text = '# a\n<VirtualHost *:443>\nServerName a.example\nSSLEngine on\nSSLCertificateFile /x/fullchain.pem\n</VirtualHost>\n';
    const steps = vhostEditSteps(plan([lone('*:443', 'a.example', file, 2)], { [`${file}:2`]: text }));
    expect(steps).toEqual([{ why: 'a.example: <VirtualHost> on line 2 to 127.0.0.1:8080, its SSL lines removed', commands: [`sed --follow-symlinks -i.before-portcullis -e '2s/<VirtualHost [^>]*>/<VirtualHost 127.0.0.1:8080>/' -e 4d -e 5d ${file}`] }]);
  });

  it('says what to do by hand where a block cannot be read, or a Redirect cannot be limited to plain HTTP', () => {
    const unreadable = vhostEditSteps(plan([lone('*:80', 'a.example', '/gone.conf')], { '/gone.conf:1': null }));
    expect(unreadable).toEqual([{ why: 'a.example: /gone.conf:1 could not be read: move its <VirtualHost> to 127.0.0.1:8080 by hand', commands: [] }]);

    const addresses: DumpedAddress[] = [
      { address: '*:80', host: '*', port: 80, nameBased: true, vhosts: [{ serverName: 'a.example', file: '/a.conf', line: 1, aliases: [] }, { serverName: 'b.example', file: '/b.conf', line: 1, aliases: [] }] },
      { address: '*:443', host: '*', port: 443, nameBased: false, vhosts: [{ serverName: 'a.example', file: '/a-le-ssl.conf', line: 1, aliases: [] }] },
    ];
    const steps = vhostEditSteps(plan(addresses, { '/a.conf:1': '<VirtualHost *:80>\nRedirect permanent / https://a.example/\n</VirtualHost>\n', '/b.conf:1': '<VirtualHost *:80>\n</VirtualHost>\n', '/a-le-ssl.conf:1': '<VirtualHost *:443>\nSSLEngine on\n</VirtualHost>\n' }));
    expect(steps.map((step) => step.why)).toEqual([
      'a.example: <VirtualHost> on line 1 to 127.0.0.1:8080',
      'b.example: <VirtualHost> on line 1 to 127.0.0.1:8080',
      'a.example: its :443 twin /a-le-ssl.conf:1 goes; the :80 vhost, moved, serves HTTP and HTTPS (merge into it anything you added only here)',
      'a.example: replace its Redirect permanent / https://a.example/ (/a.conf:2) by a RewriteRule under RewriteCond %{HTTP:X-Forwarded-Proto} !=https, or HTTPS requests loop',
    ]);
    // Not in sites-enabled/: a2dissite would not know it.
    expect(steps[2]?.commands).toEqual([]);
  });

  it('keeps a partial redirect to https for plain HTTP only: it is no reason to redirect the whole listener', () => {
    const addresses: DumpedAddress[] = [lone('*:80', 'a.example', '/a.conf'), lone('*:443', 'a.example', '/a-le-ssl.conf')];
    const result = plan(addresses, { '/a.conf:1': '<VirtualHost *:80>\nRewriteEngine on\nRewriteRule ^/wp-admin https://%{SERVER_NAME}%{REQUEST_URI} [R=301]\n</VirtualHost>\n', '/a-le-ssl.conf:1': '<VirtualHost *:443>\nSSLEngine on\n</VirtualHost>\n' });
    expect(result.plainListener?.redirectHttps).toBe(false);
    expect(vhostEditSteps(result)[0]).toEqual({
      why: 'a.example: <VirtualHost> on line 1 to 127.0.0.1:8080, its redirect to https (line 3) kept for requests that came over plain HTTP',
      commands: [`sed --follow-symlinks -i.before-portcullis -e '1s/<VirtualHost [^>]*>/<VirtualHost 127.0.0.1:8080>/' -e '3i RewriteCond %{HTTP:X-Forwarded-Proto} !=https' /a.conf`],
    });
  });

  it("writes ports.conf with Apache's loopback port and the loopback addresses it already had, each Listen alone on its line", () => {
    const text = renderPortsConf(plan([lone('127.0.0.1:8081', 'i', '/i.conf'), lone('[::1]:8082', 'j', '/j.conf')], {}));
    expect(text.split('\n').filter((line) => !line.startsWith('#') && line !== '')).toEqual(['Listen 127.0.0.1:8080', 'Listen 127.0.0.1:8081', 'Listen [::1]:8082']);
  });

  it('quotes for the shell only what needs it', () => {
    expect(shellQuote('/etc/apache2/sites-enabled/a.conf')).toBe('/etc/apache2/sites-enabled/a.conf');
    expect(shellQuote("/srv/it's here")).toBe(`'/srv/it'\\''s here'`);
  });
});
