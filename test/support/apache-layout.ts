/**
 * A Debian-like Apache configuration tree as `certbot --apache` leaves it,
 * for `portcullis init`: apache2.conf including ports.conf (Listen 80, and
 * 443 with mod_ssl), mods-enabled/*.load, conf-enabled/ and sites-enabled/
 * (symlinks into sites-available/, as a2ensite makes them); `*:80` vhosts
 * (certbot's redirect in those it secured), their `-le-ssl.conf` twins on
 * `*:443` inside `<IfModule mod_ssl.c>` with SSLCertificateFile naming a
 * certbot live directory of real openssl-made certificates, and whatever
 * else a test adds.
 * Nothing is started: `apache2 -f CONF -S` reads the tree (it binds no port,
 * so `*:80` and `*:443` need no privileges), and `dumpVhosts()` returns what
 * it printed. `remove()` deletes the tree.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { APACHE_BIN, APACHE_MODULES_DIR } from './apache.js';
import { certbotFiles, installCertbotVersion, TestCertificateAuthority } from './test-certificates.js';

const run = promisify(execFile);

/** One site as certbot's Apache plugin leaves it. */
export interface CertbotSiteSpec {
  /** sites-enabled/FILE.conf (and FILE-le-ssl.conf when `https`). */
  readonly file: string;
  readonly serverName: string;
  readonly aliases?: readonly string[];
  /** Secured by certbot: a `-le-ssl.conf` twin on *:443 with a certificate of its names, and (unless `redirect: false`) certbot's redirect in the :80 vhost. */
  readonly https?: boolean;
  /** @default true when `https` */
  readonly redirect?: boolean;
}

export interface ApacheLayout {
  readonly dir: string;
  /** The main config file, for `apache2 -f`. */
  readonly configFile: string;
  /** The certbot live directory (`letsencrypt/live`). */
  readonly certbotLive: string;
  readonly sitesEnabled: string;
  readonly sitesAvailable: string;
  readonly modsEnabled: string;
  readonly confEnabled: string;
  /** `apache2 -f CONF -S`: its standard output. */
  dumpVhosts(): Promise<string>;
  remove(): Promise<void>;
}

const CERTBOT_REDIRECT = (names: readonly string[]): string[] => [
  'RewriteEngine on',
  ...names.map((name, index) => `RewriteCond %{SERVER_NAME} =${name}${index < names.length - 1 ? ' [OR]' : ''}`),
  'RewriteRule ^ https://%{SERVER_NAME}%{REQUEST_URI} [END,NE,R=permanent]',
];

/**
 * Writes the tree: 000-default.conf (Debian's, no ServerName) first, then
 * each site, then `extraSites` verbatim (file name → content).
 */
export async function writeApacheLayout(sites: readonly CertbotSiteSpec[], extraSites: Readonly<Record<string, string>> = {}): Promise<ApacheLayout> {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-layout-'));
  const sitesEnabled = join(dir, 'sites-enabled');
  const sitesAvailable = join(dir, 'sites-available');
  const modsEnabled = join(dir, 'mods-enabled');
  const confEnabled = join(dir, 'conf-enabled');
  const letsencrypt = join(dir, 'letsencrypt');
  for (const folder of [sitesEnabled, sitesAvailable, modsEnabled, confEnabled, join(dir, 'conf-available')]) await mkdir(folder, { recursive: true });
  await mkdir(join(dir, 'run'));
  await mkdir(join(dir, 'www'));
  const ca = await TestCertificateAuthority.create(await mkdtemp(join(tmpdir(), 'portcullis-layout-ca-')));
  const configFile = join(dir, 'apache2.conf');
  await writeFile(
    configFile,
    [
      `ServerRoot "${dir}"`,
      `PidFile "${join(dir, 'run', 'apache2.pid')}"`,
      `DefaultRuntimeDir "${join(dir, 'run')}"`,
      `Mutex file:${join(dir, 'run')} default`,
      'IncludeOptional mods-enabled/*.load',
      'User www-data',
      'Group www-data',
      `ErrorLog "${join(dir, 'error.log')}"`,
      'Include ports.conf',
      'IncludeOptional conf-enabled/*.conf',
      'IncludeOptional sites-enabled/*.conf',
      '',
    ].join('\n'),
  );
  // Debian's own ports.conf.
  await writeFile(join(dir, 'ports.conf'), ['Listen 80', '', '<IfModule ssl_module>', '\tListen 443', '</IfModule>', ''].join('\n'));
  for (const m of ['mpm_event', 'authz_core', 'rewrite', 'ssl', 'socache_shmcb']) await enableModule(modsEnabled, m);
  const enableSite = async (file: string, content: string): Promise<void> => {
    await writeFile(join(sitesAvailable, file), content);
    await symlink(join('..', 'sites-available', file), join(sitesEnabled, file));
  };
  const docroot = join(dir, 'www');
  await enableSite('000-default.conf', ['<VirtualHost *:80>', '\tServerAdmin webmaster@localhost', `\tDocumentRoot ${docroot}`, '</VirtualHost>', ''].join('\n'));
  for (const site of sites) {
    const names = [site.serverName, ...(site.aliases ?? [])];
    const nameLines = [`\tServerName ${site.serverName}`, ...(site.aliases?.length ? [`\tServerAlias ${site.aliases.join(' ')}`] : [])];
    const redirect = site.https === true && site.redirect !== false ? CERTBOT_REDIRECT(names) : [];
    await enableSite(`${site.file}.conf`, ['<VirtualHost *:80>', ...nameLines, `\tDocumentRoot ${docroot}`, ...redirect, '</VirtualHost>', ''].join('\n'));
    if (site.https !== true) continue;
    const issued = await ca.issue(site.serverName, { dnsNames: names });
    await installCertbotVersion(letsencrypt, site.serverName, 1, await certbotFiles(issued));
    const live = join(letsencrypt, 'live', site.serverName);
    await enableSite(
      `${site.file}-le-ssl.conf`,
      [
        '<IfModule mod_ssl.c>',
        '<VirtualHost *:443>',
        ...nameLines,
        `\tDocumentRoot ${docroot}`,
        'SSLEngine on',
        `SSLCertificateFile ${join(live, 'fullchain.pem')}`,
        `SSLCertificateKeyFile ${join(live, 'privkey.pem')}`,
        '</VirtualHost>',
        '</IfModule>',
        '',
      ].join('\n'),
    );
  }
  for (const [file, content] of Object.entries(extraSites)) await enableSite(file, content);
  await mkdir(join(letsencrypt, 'live'), { recursive: true });
  return {
    dir,
    configFile,
    certbotLive: join(letsencrypt, 'live'),
    sitesEnabled,
    sitesAvailable,
    modsEnabled,
    confEnabled,
    dumpVhosts: async () => (await run(APACHE_BIN, ['-f', configFile, '-S'], { timeout: 20_000 })).stdout,
    remove: async () => {
      await rm(dir, { recursive: true, force: true });
      await rm(join(ca.caFile, '..'), { recursive: true, force: true });
    },
  };
}

/** What a2enmod does for a module without a .conf: a .load file with its LoadModule. */
export async function enableModule(modsEnabled: string, name: string): Promise<void> {
  await writeFile(join(modsEnabled, `${name}.load`), `LoadModule ${name}_module ${APACHE_MODULES_DIR}/mod_${name}.so\n`);
}
