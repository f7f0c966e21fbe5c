/**
 * A Debian-like Apache configuration tree as `certbot --apache` leaves it,
 * for `portcullis init`: apache2.conf including ports.conf (Listen 80, and
 * 443 with mod_ssl), mods-enabled/*.load, conf-enabled/ and sites-enabled/
 * (symlinks into sites-available/, as a2ensite makes them); `*:80` vhosts
 * (certbot's redirect in those it secured), their `-le-ssl.conf` twins on
 * `*:443` inside `<IfModule mod_ssl.c>` with SSLCertificateFile naming a
 * certbot live directory of real openssl-made certificates, and whatever
 * else a test adds.
 * Each vhost serves a docroot of its own (www/FILE/) whose index.html says
 * `site:SERVERNAME` (`site:default` for 000-default), beside an xmlrpc.php
 * stand-in. `apache2 -f CONF -S` reads the tree without binding a port (so
 * `*:80` and `*:443` need no privileges) and `dumpVhosts()` returns what it
 * printed; once a test has moved it to loopback, `startLayoutApache()` runs
 * it. `remove()` deletes the tree.
 */
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
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
  /** The CA that signed the certificates, PEM, for clients. */
  readonly caFile: string;
  /** A vhost's docroot (`default` for 000-default). */
  docroot(file: string): string;
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
  // mkdtemp makes 0700: Apache's workers (www-data) must reach the docroots.
  await chmod(dir, 0o755);
  const sitesEnabled = join(dir, 'sites-enabled');
  const sitesAvailable = join(dir, 'sites-available');
  const modsEnabled = join(dir, 'mods-enabled');
  const confEnabled = join(dir, 'conf-enabled');
  const letsencrypt = join(dir, 'letsencrypt');
  for (const folder of [sitesEnabled, sitesAvailable, modsEnabled, confEnabled, join(dir, 'conf-available')]) await mkdir(folder, { recursive: true });
  await mkdir(join(dir, 'run'));
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
  for (const m of ['mpm_event', 'authz_core', 'dir', 'rewrite', 'ssl', 'socache_shmcb']) await enableModule(modsEnabled, m);
  const enableSite = async (file: string, content: string): Promise<void> => {
    await writeFile(join(sitesAvailable, file), content);
    await symlink(join('..', 'sites-available', file), join(sitesEnabled, file));
  };
  const docroot = (file: string): string => join(dir, 'www', file);
  const makeDocroot = async (file: string, serverName: string): Promise<void> => {
    await mkdir(docroot(file), { recursive: true, mode: 0o755 });
    await chmod(join(dir, 'www'), 0o755);
    await writeFile(join(docroot(file), 'index.html'), `site:${serverName}\n`, { mode: 0o644 });
    await writeFile(join(docroot(file), 'xmlrpc.php'), `xmlrpc:${serverName}\n`, { mode: 0o644 });
  };
  await makeDocroot('default', 'default');
  await enableSite('000-default.conf', ['<VirtualHost *:80>', '\tServerAdmin webmaster@localhost', `\tDocumentRoot ${docroot('default')}`, '</VirtualHost>', ''].join('\n'));
  for (const site of sites) {
    const names = [site.serverName, ...(site.aliases ?? [])];
    const nameLines = [`\tServerName ${site.serverName}`, ...(site.aliases?.length ? [`\tServerAlias ${site.aliases.join(' ')}`] : [])];
    const redirect = site.https === true && site.redirect !== false ? CERTBOT_REDIRECT(names) : [];
    await makeDocroot(site.file, site.serverName);
    await enableSite(`${site.file}.conf`, ['<VirtualHost *:80>', ...nameLines, `\tDocumentRoot ${docroot(site.file)}`, ...redirect, '</VirtualHost>', ''].join('\n'));
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
        `\tDocumentRoot ${docroot(site.file)}`,
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
    caFile: ca.caFile,
    docroot,
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

/** A running layout Apache; `stop()` ends it and waits. */
export interface LayoutApache {
  stop(): Promise<void>;
}

/**
 * Runs the layout's Apache in the foreground until `stop()`, once it has been
 * moved to `127.0.0.1:port` (it must not listen on :80 or :443 any more);
 * resolves when that port accepts connections, rejects with its error log.
 */
export async function startLayoutApache(layout: ApacheLayout, port: number): Promise<LayoutApache> {
  const child = spawn(APACHE_BIN, ['-f', layout.configFile, '-DFOREGROUND'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const stop = async (): Promise<void> => {
    process.removeListener('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  };
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      const errorLog = await readFile(join(layout.dir, 'error.log'), 'utf8').catch(() => '');
      throw new Error(`the layout's Apache did not start on 127.0.0.1:${port}:\n${stderr}\n${errorLog}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return { stop };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}
