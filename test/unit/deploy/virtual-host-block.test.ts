import { describe, expect, it } from 'vitest';
import { readVirtualHostBlock } from '../../../src/deploy/virtual-host-block.js';

const CERTBOT_80 = `# Debian's default, secured by certbot
<VirtualHost *:80>
\tServerName blog.example.org
\tServerAlias www.blog.example.org
\tServerAlias "old.blog.example.org"
\tDocumentRoot /var/www/blog
RewriteEngine on
RewriteCond %{SERVER_NAME} =www.blog.example.org [OR]
RewriteCond %{SERVER_NAME} =blog.example.org
RewriteRule ^ https://%{SERVER_NAME}%{REQUEST_URI} [END,NE,R=permanent]
</VirtualHost>
`;

const CERTBOT_443 = `<IfModule mod_ssl.c>
<VirtualHost *:443>
\tServerName blog.example.org
\t# SSLEngine off would be a comment here
SSLCertificateFile /etc/letsencrypt/live/blog.example.org/fullchain.pem
SSLCertificateKeyFile /etc/letsencrypt/live/blog.example.org/privkey.pem
Include /etc/letsencrypt/options-ssl-apache.conf
</VirtualHost>
</IfModule>
`;

describe('readVirtualHostBlock', () => {
  it("finds certbot's redirect with its conditions, and the aliases, in a :80 vhost", () => {
    const block = readVirtualHostBlock(CERTBOT_80, 2);
    expect(block).toMatchObject({ opening: { line: 2, text: '<VirtualHost *:80>' }, aliases: ['www.blog.example.org', 'old.blog.example.org'], tls: false, tlsLines: [] });
    expect(block?.httpsRedirect.map((entry) => entry.line)).toEqual([8, 9, 10]);
  });

  it("finds TLS, the certificate file and certbot's TLS lines in a -le-ssl.conf vhost", () => {
    const block = readVirtualHostBlock(CERTBOT_443, 2);
    expect(block).toMatchObject({ tls: true, certificateFile: '/etc/letsencrypt/live/blog.example.org/fullchain.pem', httpsRedirect: [] });
    expect(block?.tlsLines.map((entry) => entry.line)).toEqual([5, 6, 7]);
  });

  it('takes Redirect and RedirectMatch to https:// as redirects, and neither a rewrite without R nor a redirect elsewhere', () => {
    const block = (body: string) => readVirtualHostBlock(`<VirtualHost *:80>\n${body}\n</VirtualHost>\n`, 1);
    expect(block('Redirect permanent / https://example.org/')?.httpsRedirect).toHaveLength(1);
    expect(block('RedirectMatch 301 ^(.*)$ https://example.org$1')?.httpsRedirect).toHaveLength(1);
    expect(block('RewriteRule ^/?(.*) https://example.org/$1 [R=301,L]')?.httpsRedirect).toHaveLength(1);
    expect(block('RewriteRule ^/old https://example.org/new [P]')?.httpsRedirect).toEqual([]);
    expect(block('Redirect permanent / http://example.org/')?.httpsRedirect).toEqual([]);
    // A condition belongs to the next rule only: a later redirect does not take an earlier rule's conditions.
    expect(block('RewriteCond %{HTTP_HOST} ^a\nRewriteRule ^ - [F]\nRedirect / https://b/')?.httpsRedirect.map((entry) => entry.text)).toEqual(['Redirect / https://b/']);
    expect(block('SSLEngine on')?.tls).toBe(true);
  });

  it('is null where the line opens no block, or the block never closes', () => {
    expect(readVirtualHostBlock(CERTBOT_443, 1)).toBeNull();
    expect(readVirtualHostBlock(CERTBOT_80, 99)).toBeNull();
    expect(readVirtualHostBlock('<VirtualHost *:80>\nServerName a\n', 1)).toBeNull();
  });
});
