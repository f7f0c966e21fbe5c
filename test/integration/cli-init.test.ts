import { execFile } from 'node:child_process';
import { lstat, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicyFile } from '../../src/config/policy-loader.js';
import { parseApacheVhostDump } from '../../src/deploy/apache-vhost-dump.js';
import { APACHE_BIN } from '../support/apache.js';
import { writeApacheLayout, type ApacheLayout } from '../support/apache-layout.js';
import { runCli, type Finished } from '../support/cli.js';
import { applyApacheStep, planStep } from '../support/init-plan.js';

const run = promisify(execFile);
const SNIPPET = join(import.meta.dirname, '../../deploy/apache/portcullis.conf');

/** `portcullis init` against the layout's Apache config, read by the real apache2 -S. */
function init(layout: ApacheLayout, out: string, ...extra: string[]): Promise<Finished> {
  return runCli(['init', '--out', out, '--apachectl', APACHE_BIN, '--apache-config', layout.configFile, '--certbot-live', layout.certbotLive, ...extra]);
}

describe('portcullis init: certbot --apache sites, every one redirected', () => {
  let layout: ApacheLayout;
  let out: string;
  let result: Finished;

  beforeAll(async () => {
    layout = await writeApacheLayout(
      [
        { file: 'blog', serverName: 'blog.example.org', aliases: ['www.blog.example.org'], https: true },
        { file: 'shop', serverName: 'shop.example.org', aliases: ['*.shop.example.org'], https: true },
      ],
      { 'zz-internal.conf': '<VirtualHost 127.0.0.1:8081>\n\tServerName internal.example.org\n</VirtualHost>\n' },
    );
    out = join(await mkdtemp(join(tmpdir(), 'portcullis-init-')), 'out');
    // --cert-dir: the policy reads the certificates where this test made them, so check can load them.
    result = await init(layout, out, '--cert-dir', layout.certbotLive, '--allow-xmlrpc', 'blog.example.org', '--config-path', '/etc/portcullis/site.yaml');
  }, 120_000);

  afterAll(async () => {
    await layout?.remove();
    if (out !== undefined) await rm(join(out, '..'), { recursive: true, force: true });
  });

  it('writes a policy with a site per vhost, :80 redirecting, :443 with the certificates, forwarding to Apache on loopback', async () => {
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const policy = await loadPolicyFile(join(out, 'portcullis.yaml'));
    expect(policy.listen).toEqual([
      expect.objectContaining({ address: '0.0.0.0:80', redirect_https: true, tls: false }),
      expect.objectContaining({ address: '0.0.0.0:443', tls: true, redirect_https: false }),
    ]);
    expect(policy.upstream).toBe('http://127.0.0.1:8080');
    expect(policy.tls.certbot_live).toBe(layout.certbotLive);
    expect(policy.sites.map((site) => [site.name, site.hosts, site.default, site.disable])).toEqual([
      ['blog.example.org', ['blog.example.org', 'www.blog.example.org'], false, ['/xmlrpc.php']],
      ['shop.example.org', ['shop.example.org', '*.shop.example.org'], false, []],
    ]);
    expect(policy.sites[0]?.limits).toEqual([expect.objectContaining({ name: 'xmlrpc', methods: ['POST'], paths: ['/xmlrpc.php'] })]);
    // The shipped limits, and the xmlrpc block every other site keeps.
    expect(policy.limits.map((rule) => rule.name)).toEqual(['read', 'write', 'other', 'login']);
    expect(policy.block.map((rule) => rule.path)).toEqual(['/xmlrpc.php']);
  });

  it('writes a policy portcullis check passes, with both certificates', async () => {
    const checked = await runCli(['check', join(out, 'portcullis.yaml')]);
    expect(checked.stderr).toBe('');
    expect(checked.code).toBe(0);
    expect(checked.stdout).toMatch(/OK .*2 certificates: blog\.example\.org, shop\.example\.org/);
  });

  it('writes the Apache files and the unit: the shipped snippet, ports on loopback, ExecStart on the policy path', async () => {
    expect(await readFile(join(out, 'portcullis.conf'), 'utf8')).toBe(await readFile(SNIPPET, 'utf8'));
    const ports = await readFile(join(out, 'ports.conf'), 'utf8');
    expect(ports.split('\n').filter((line) => line.startsWith('Listen'))).toEqual(['Listen 127.0.0.1:8080', 'Listen 127.0.0.1:8081']);
    const unit = await readFile(join(out, 'portcullis.service'), 'utf8');
    const shipped = await readFile(join(import.meta.dirname, '../../deploy/portcullis.service'), 'utf8');
    expect(unit).toBe(shipped.replace('--config /etc/portcullis/portcullis.yaml', '--config /etc/portcullis/site.yaml'));
  });

  it('prints a plan in order: policy, certificates, unit, Apache, the switch', () => {
    expect(result.stdout).toContain('Plan: nothing above has been run');
    expect(planStep(result.stdout, 1)).toContain(`install -m 0640 -g portcullis ${join(out, 'portcullis.yaml')} /etc/portcullis/site.yaml`);
    // --cert-dir is certbot's own live directory here: portcullis's group must read it in place.
    const archive = join(layout.certbotLive, '..', 'archive');
    expect(planStep(result.stdout, 2)).toEqual([
      `certbot certonly --webroot --cert-name blog.example.org -w ${layout.docroot('blog')} -d blog.example.org -d www.blog.example.org --force-renewal`,
      '# shop.example.org has *.shop.example.org: DNS-01 only, so it keeps renewing as it was issued (a DNS plugin), not with --webroot',
      expect.stringMatching(/^# portcullis reads certbot's live\/ in place/),
      `chgrp -R portcullis ${layout.certbotLive} ${archive} && chmod -R g+rX ${layout.certbotLive} ${archive}`,
      'portcullis check /etc/portcullis/site.yaml',
    ]);
    expect(planStep(result.stdout, 3)).toEqual([`install -m 0644 ${join(out, 'portcullis.service')} /etc/systemd/system/portcullis.service`, 'systemctl daemon-reload && systemctl enable portcullis']);
    const apache = planStep(result.stdout, 4);
    expect(apache).toEqual(expect.arrayContaining(['a2enmod remoteip setenvif && a2enconf portcullis', 'a2dissite blog-le-ssl', 'a2dissite shop-le-ssl', 'a2dismod ssl']));
    expect(apache.at(-1)).toBe('apache2ctl configtest');
    expect(planStep(result.stdout, 5)).toEqual(['systemctl restart apache2 && systemctl restart portcullis']);
    expect(result.stdout).toMatch(/127\.0\.0\.1:8081: already on loopback/);
  });

  it("has a plan whose Apache step, run, leaves every vhost on 127.0.0.1:8080 without certbot's redirect, and a config apache2 -t accepts", async () => {
    await applyApacheStep(layout, planStep(result.stdout, 4));
    const dump = parseApacheVhostDump(await layout.dumpVhosts());
    expect(dump.addresses.map((address) => address.address).sort()).toEqual(['127.0.0.1:8080', '127.0.0.1:8081']);
    const moved = dump.addresses.find((address) => address.address === '127.0.0.1:8080');
    expect(moved?.vhosts.slice(1).map((vhost) => [vhost.serverName, vhost.aliases])).toEqual([
      ['blog.example.org', ['www.blog.example.org']],
      ['shop.example.org', ['*.shop.example.org']],
    ]);
    const blog = await readFile(join(layout.sitesEnabled, 'blog.conf'), 'utf8');
    expect(blog).not.toMatch(/RewriteRule|RewriteCond/);
    expect(blog).toMatch(/^<VirtualHost 127\.0\.0\.1:8080>$/m);
    // sed followed the symlink: sites-enabled still links to sites-available, where the copy was kept.
    expect((await lstat(join(layout.sitesEnabled, 'blog.conf'))).isSymbolicLink()).toBe(true);
    expect(await readFile(join(layout.sitesAvailable, 'blog.conf.before-portcullis'), 'utf8')).toMatch(/RewriteRule \^ https:/);
    const config = await run(APACHE_BIN, ['-f', layout.configFile, '-t', '-D', 'DUMP_MODULES']);
    expect(config.stdout).toMatch(/remoteip_module/);
    expect(config.stdout).not.toMatch(/ssl_module/);
  });

  it('refuses to overwrite what it wrote, unless --force', async () => {
    const again = await init(layout, out);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already has portcullis\.yaml, ports\.conf, portcullis\.conf, portcullis\.service: nothing written \(--force replaces them\) \[PC_ERR_INIT_OUTPUT\]/);
    const forced = await init(layout, out, '--force');
    expect(forced.code).toBe(0);
  });
});

describe('portcullis init: one site redirected, one plain', () => {
  let layout: ApacheLayout;
  let out: string;
  let result: Finished;

  beforeAll(async () => {
    layout = await writeApacheLayout([
      { file: 'blog', serverName: 'blog.example.org', aliases: ['www.blog.example.org'], https: true },
      { file: 'plain', serverName: 'plain.example.org' },
    ]);
    out = await mkdtemp(join(tmpdir(), 'portcullis-init-'));
    result = await init(layout, out, '--cert-dir', layout.certbotLive);
  }, 120_000);

  afterAll(async () => {
    await layout?.remove();
    if (out !== undefined) await rm(out, { recursive: true, force: true });
  });

  it("points the policy at the deploy hook's copies by default, and plans the hook", async () => {
    const copies = await mkdtemp(join(tmpdir(), 'portcullis-init-'));
    try {
      const byDefault = await init(layout, copies);
      expect(byDefault.code).toBe(0);
      expect((await loadPolicyFile(join(copies, 'portcullis.yaml'))).tls.certbot_live).toBe('/etc/portcullis/certs');
      // Issued again for the names it has, at the docroot of the vhost serving them; then the hook installed and run once over them all.
      expect(planStep(byDefault.stdout, 2).filter((line) => !line.startsWith('#'))).toEqual([
        `certbot certonly --webroot --cert-name blog.example.org -w ${layout.docroot('blog')} -d blog.example.org -d www.blog.example.org --force-renewal`,
        expect.stringMatching(/^install -m 0755 \S+\/deploy\/certbot\/portcullis-reload \/etc\/letsencrypt\/renewal-hooks\/deploy\/portcullis-reload$/),
        `for d in ${layout.certbotLive}/*/; do env RENEWED_LINEAGE="\${d%/}" PORTCULLIS_RELOAD= /etc/letsencrypt/renewal-hooks/deploy/portcullis-reload; done`,
        'portcullis check /etc/portcullis/portcullis.yaml',
      ]);
    } finally {
      await rm(copies, { recursive: true, force: true });
    }
  });

  // Last: it runs the plan's Apache step on the layout.
  it('keeps :80 forwarding, and Apache redirecting only what came over plain HTTP', async () => {
    expect(result.code).toBe(0);
    const policy = await loadPolicyFile(join(out, 'portcullis.yaml'));
    expect(policy.listen.map((listener) => [listener.address, listener.tls, listener.redirect_https])).toEqual([
      ['0.0.0.0:80', false, false],
      ['0.0.0.0:443', true, false],
    ]);
    expect(policy.sites.map((site) => site.name)).toEqual(['blog.example.org', 'plain.example.org']);
    expect(result.stdout).toMatch(/only some sites redirect to https \(blog\.example\.org\)/);
    expect((await runCli(['check', join(out, 'portcullis.yaml')])).code).toBe(0);

    await applyApacheStep(layout, planStep(result.stdout, 4));
    const blog = (await readFile(join(layout.sitesEnabled, 'blog.conf'), 'utf8')).split('\n').map((line) => line.trim());
    const guard = blog.indexOf('RewriteCond %{HTTP:X-Forwarded-Proto} !=https');
    expect(guard).toBeGreaterThan(0);
    expect(blog[guard + 1]).toMatch(/^RewriteCond %\{SERVER_NAME\} =blog\.example\.org \[OR\]$/);
    expect(blog).toContain('RewriteRule ^ https://%{SERVER_NAME}%{REQUEST_URI} [END,NE,R=permanent]');
  });
});

describe('portcullis init: no certificates found', () => {
  it('writes no TLS listener (it could not start), says why, and check passes', async () => {
    const layout = await writeApacheLayout([{ file: 'blog', serverName: 'blog.example.org', https: true }]);
    const out = await mkdtemp(join(tmpdir(), 'portcullis-init-'));
    try {
      const result = await runCli(['init', '--out', out, '--apachectl', APACHE_BIN, '--apache-config', layout.configFile, '--certbot-live', join(layout.dir, 'nowhere')]);
      expect(result.code).toBe(0);
      expect(result.stderr).toMatch(/warning: .*nowhere: cannot list tls\.certbot_live/);
      expect(result.stdout).toMatch(/no certificate was found in certbot's live directory: no TLS listener is written/);
      const policy = await loadPolicyFile(join(out, 'portcullis.yaml'));
      expect(policy.listen.map((listener) => [listener.address, listener.tls, listener.redirect_https])).toEqual([['0.0.0.0:80', false, false]]);
      expect(policy.tls.certbot_live).toBeUndefined();
      expect((await runCli(['check', join(out, 'portcullis.yaml')])).code).toBe(0);
    } finally {
      await layout.remove();
      await rm(out, { recursive: true, force: true });
    }
  }, 120_000);

  it('has --help, and is in the command list', async () => {
    const help = await runCli(['init', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: portcullis init --out DIR/);
    expect(help.stdout).toContain('--allow-xmlrpc SITES');
    expect((await runCli(['help'])).stdout).toMatch(/^ {2}init --out DIR {10}read Apache's layout/m);
    const missing = await runCli(['init']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/init needs --out DIR.*\n.*\[PC_ERR_USAGE\]/);
  });

  it('fails with PC_ERR_APACHE_LAYOUT when apachectl cannot run, and writes nothing', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'portcullis-init-')), 'out');
    try {
      const result = await runCli(['init', '--out', out, '--apachectl', '/nonexistent/apache2ctl']);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/\/nonexistent\/apache2ctl -S failed: .*not installed .*\[PC_ERR_APACHE_LAYOUT\]/);
      await expect(lstat(out)).rejects.toThrow(/ENOENT/);
    } finally {
      await rm(join(out, '..'), { recursive: true, force: true });
    }
  });
});
