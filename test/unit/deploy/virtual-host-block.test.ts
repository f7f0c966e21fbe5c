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
    expect(block?.httpsRedirects).toEqual([{ kind: 'rewrite', lines: [8, 9, 10].map((line) => expect.objectContaining({ line })), everyRequest: true }]);
  });

  it("finds TLS, the certificate file and certbot's TLS lines in a -le-ssl.conf vhost", () => {
    const block = readVirtualHostBlock(CERTBOT_443, 2);
    expect(block).toMatchObject({ tls: true, certificateFile: '/etc/letsencrypt/live/blog.example.org/fullchain.pem', httpsRedirects: [] });
    expect(block?.tlsLines.map((entry) => entry.line)).toEqual([5, 6, 7]);
  });

  it('takes Redirect and RedirectMatch to https:// as redirects, and neither a rewrite without R nor a redirect elsewhere', () => {
    const every = (body: string) => readVirtualHostBlock(`<VirtualHost *:80>\n${body}\n</VirtualHost>\n`, 1)?.httpsRedirects.map((redirect) => [redirect.kind, redirect.everyRequest]);
    expect(every('Redirect permanent / https://example.org/')).toEqual([['redirect', true]]);
    expect(every('RedirectMatch 301 ^(.*)$ https://example.org$1')).toEqual([['redirect', true]]);
    expect(every('RewriteRule ^/?(.*) https://example.org/$1 [R=301,L]')).toEqual([['rewrite', true]]);
    expect(every('RewriteCond %{HTTPS} off\nRewriteRule .* https://%{HTTP_HOST}%{REQUEST_URI} [L,R=301]')).toEqual([['rewrite', true]]);
    expect(every('RewriteRule ^/old https://example.org/new [P]')).toEqual([]);
    expect(every('Redirect permanent / http://example.org/')).toEqual([]);
    expect(every('SSLEngine on')).toEqual([]);
  });

  it('tells a redirect of every request from one of some paths or under a condition on the path', () => {
    const every = (body: string) => readVirtualHostBlock(`<VirtualHost *:80>\n${body}\n</VirtualHost>\n`, 1)?.httpsRedirects.map((redirect) => redirect.everyRequest);
    expect(every('Redirect /wp-admin https://example.org/wp-admin')).toEqual([false]);
    expect(every('RedirectMatch ^/$ https://example.org/')).toEqual([false]);
    expect(every('RewriteRule ^/wp-admin https://%{SERVER_NAME}%{REQUEST_URI} [R=301]')).toEqual([false]);
    expect(every('RewriteCond %{REQUEST_URI} !^/api\nRewriteRule ^ https://%{SERVER_NAME}%{REQUEST_URI} [R]')).toEqual([false]);
    // A condition belongs to the next rule only: a later redirect does not take an earlier rule's conditions.
    const block = readVirtualHostBlock('<VirtualHost *:80>\nRewriteCond %{REQUEST_URI} ^/a\nRewriteRule ^ - [F]\nRedirect / https://b/\n</VirtualHost>\n', 1);
    expect(block?.httpsRedirects).toEqual([{ kind: 'redirect', lines: [{ line: 4, text: 'Redirect / https://b/' }], everyRequest: true }]);
  });

  it('is null where the line opens no block, or the block never closes', () => {
    expect(readVirtualHostBlock(CERTBOT_443, 1)).toBeNull();
    expect(readVirtualHostBlock(CERTBOT_80, 99)).toBeNull();
    expect(readVirtualHostBlock('<VirtualHost *:80>\nServerName a\n', 1)).toBeNull();
  });
});
