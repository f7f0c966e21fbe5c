import { execFile } from 'node:child_process';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DEFAULT_POLICY_FILE } from '../config/policy-loader.js';
import { PortcullisError } from '../core/errors.js';
import { renderPortsConf } from '../deploy/apache-changes.js';
import { parseApacheVhostDump, type ApacheVhostDump } from '../deploy/apache-vhost-dump.js';
import { APACHE_LOOPBACK_PORT, planFrontDoor, type FoundCertificate } from '../deploy/front-door-plan.js';
import { HOOK_CERT_DIR, renderPlan } from '../deploy/plan-text.js';
import { unitForPolicy } from '../deploy/service-unit.js';
import { renderStarterPolicy } from '../deploy/starter-policy.js';
import { readVirtualHostBlock, type VirtualHostBlock } from '../deploy/virtual-host-block.js';
import { checkCertificates } from '../tls/certificate-check.js';
import { formatCertificateProblem, type CertificateProblem } from '../tls/certificate-problem.js';
import { parseCommandArgs } from './usage-error.js';

const run = promisify(execFile);

/** The installation's root: deploy/ and config/ are beside dist/ (and src/). */
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SHIPPED_SNIPPET = join(PACKAGE_ROOT, 'deploy', 'apache', 'portcullis.conf');
const SHIPPED_UNIT = join(PACKAGE_ROOT, 'deploy', 'portcullis.service');
const HOOK_FILE = join(PACKAGE_ROOT, 'deploy', 'certbot', 'portcullis-reload');
const DUMP_TIMEOUT_MS = 30_000;

export const INIT_HELP = `Usage: portcullis init --out DIR [--apachectl PATH] [--apache-config FILE]
                       [--apache-port PORT] [--certbot-live DIR] [--cert-dir DIR]
                       [--config-path FILE] [--allow-xmlrpc SITE,...] [--force]

Reads the running Apache's layout with 'apache2ctl -S' (its listeners and
name-based vhosts with their ServerName and ServerAlias, and each vhost's
<VirtualHost> block for TLS and certbot's https redirect) and certbot's live
directory, and writes into DIR:
  portcullis.yaml     a starter policy: the shipped limits, one site per vhost,
                      xmlrpc.php blocked but on --allow-xmlrpc sites, :80 (with
                      redirect_https where every site redirected) and :443 with
                      the certificates found, forwarding to Apache on loopback
  ports.conf          Apache on 127.0.0.1:8080 (--apache-port) only
  portcullis.conf     mod_remoteip, HTTPS=on from X-Forwarded-Proto, %a in logs
  portcullis.service  the shipped systemd unit, its --config at --config-path
and prints a plan: the exact commands that apply it, in order. It runs none
of them and never changes Apache.

Options:
  -o, --out DIR              where the files go (made if missing)
      --apachectl PATH       the command run as PATH [-f FILE] -S (default:
                             apache2ctl; apachectl, or /usr/sbin/apache2 for a
                             config of your own, work too)
      --apache-config FILE   Apache's main config file, passed as -f FILE
                             (default: the one apachectl uses)
      --apache-port PORT     the port on 127.0.0.1 Apache moves to, the
                             policy's upstream (default: 8080)
      --certbot-live DIR     where certbot keeps its certificates (default:
                             /etc/letsencrypt/live)
      --cert-dir DIR         what the policy's tls.certbot_live names: where
                             portcullis's user reads the certificates
                             (default: ${HOOK_CERT_DIR}, where the
                             deploy hook copies them)
      --config-path FILE     where the policy is installed, for the unit and the
                             plan (default: /etc/portcullis/portcullis.yaml)
      --allow-xmlrpc SITES   comma-separated sites (by ServerName) that keep
                             xmlrpc.php (Jetpack, the WordPress app), limited to
                             6 a minute per address
  -f, --force                replace files DIR already has
  -h, --help                 show this help`;

/** `portcullis init`: returns the exit code. */
export async function runInit(args: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const { values, positionals } = parseCommandArgs('init', {
    args,
    allowPositionals: true,
    options: {
      out: { type: 'string', short: 'o' },
      apachectl: { type: 'string', default: 'apache2ctl' },
      'apache-config': { type: 'string' },
      'apache-port': { type: 'string', default: String(APACHE_LOOPBACK_PORT) },
      'certbot-live': { type: 'string', default: '/etc/letsencrypt/live' },
      'cert-dir': { type: 'string', default: HOOK_CERT_DIR },
      'config-path': { type: 'string', default: '/etc/portcullis/portcullis.yaml' },
      'allow-xmlrpc': { type: 'string', default: '' },
      force: { type: 'boolean', short: 'f' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    out.write(`${INIT_HELP}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new PortcullisError('PC_ERR_USAGE', `init takes no positional arguments, got ${positionals.join(' ')}\nRun 'portcullis init --help' for usage.`);
  if (values.out === undefined || values.out === '') throw new PortcullisError('PC_ERR_USAGE', `init needs --out DIR, the directory to write into\nRun 'portcullis init --help' for usage.`);
  const outDir = resolve(values.out);
  const certbotLive = resolve(values['certbot-live'] as string);
  const certDir = resolve(values['cert-dir'] as string);
  const policyPath = resolve(values['config-path'] as string);
  const apachePort = Number(values['apache-port']);
  if (!/^\d+$/.test(values['apache-port'] as string) || apachePort < 1 || apachePort > 65535) throw new PortcullisError('PC_ERR_USAGE', `--apache-port must be a port from 1 to 65535, got "${values['apache-port']}"`);
  const allowXmlrpc = (values['allow-xmlrpc'] as string).split(',').map((name) => name.trim()).filter((name) => name !== '');

  const dumpArgs = [...(values['apache-config'] === undefined ? [] : ['-f', values['apache-config']]), '-S'];
  const dumpCommand = [values.apachectl as string, ...dumpArgs].join(' ');
  const dump = parseApacheVhostDump(await dumpVhosts(values.apachectl as string, dumpArgs, dumpCommand));
  const { certificates, problems } = await findCertificates(certbotLive);
  const plan = planFrontDoor({ dump, blocks: await readBlocks(dump), certificates, allowXmlrpc, apachePort });
  // Certificates matter only where Apache served TLS: elsewhere a missing live directory is no news.
  if (plan.sites.some((site) => site.tls !== undefined)) for (const problem of problems) err.write(`portcullis init: warning: ${formatCertificateProblem(problem)}\n`);

  const files: Record<string, string> = {
    'portcullis.yaml': renderStarterPolicy(await readShipped(DEFAULT_POLICY_FILE), plan, { certbotLive: certDir }),
    'ports.conf': renderPortsConf(plan),
    // The shipped snippet as it is: the one file test/deploy/apache-snippets.test.ts runs behind a real portcullis.
    'portcullis.conf': await readShipped(SHIPPED_SNIPPET),
    'portcullis.service': unitForPolicy(await readShipped(SHIPPED_UNIT), policyPath),
  };
  await writeAll(outDir, files, values.force === true);
  out.write(
    renderPlan(plan, {
      dumpCommand,
      outDir,
      writtenFiles: Object.keys(files),
      policyPath,
      certbotLive,
      certDir,
      hookFile: HOOK_FILE,
      apacheRoot: dump.serverRoot ?? '/etc/apache2',
      certificates,
    }),
  );
  return 0;
}

/** Runs apachectl with fixed arguments (never through a shell) and returns what it printed. */
async function dumpVhosts(command: string, args: string[], shown: string): Promise<string> {
  try {
    const { stdout } = await run(command, args, { timeout: DUMP_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const failed = error as { code?: unknown; stderr?: string; message: string };
    const detail = failed.code === 'ENOENT' ? `${command} is not installed or not on PATH (give --apachectl PATH)` : (failed.stderr?.trim() || failed.message);
    throw new PortcullisError('PC_ERR_APACHE_LAYOUT', `${shown} failed: ${detail}`, { cause: error });
  }
}

/** Each vhost's block from the file -S named; null where it cannot be read (the plan then says so). */
async function readBlocks(dump: ApacheVhostDump): Promise<Map<string, VirtualHostBlock | null>> {
  const texts = new Map<string, Promise<string | null>>();
  const blocks = new Map<string, VirtualHostBlock | null>();
  for (const address of dump.addresses) {
    for (const vhost of address.vhosts) {
      if (!texts.has(vhost.file)) texts.set(vhost.file, readFile(vhost.file, 'utf8').catch(() => null));
      const text = await texts.get(vhost.file);
      blocks.set(`${vhost.file}:${vhost.line}`, text === null || text === undefined ? null : readVirtualHostBlock(text, vhost.line));
    }
  }
  return blocks;
}

/** The certificates certbot's live directory holds, read and checked as serve would, and the problems of those it cannot serve. */
async function findCertificates(certbotLive: string): Promise<{ certificates: FoundCertificate[]; problems: readonly CertificateProblem[] }> {
  const { served, problems } = await checkCertificates({ certificates: [], certbot_live: certbotLive });
  return { certificates: served.map((certificate) => ({ name: certificate.name, hostNames: certificate.hostNames })), problems };
}

async function readShipped(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new PortcullisError('PC_ERR_INIT_OUTPUT', `cannot read ${file}, which init copies from the installation: ${(error as Error).message}`, { cause: error });
  }
}

/** Writes every file, or none: existing ones are refused first unless `force`. */
async function writeAll(outDir: string, files: Record<string, string>, force: boolean): Promise<void> {
  const existing: string[] = [];
  for (const name of Object.keys(files)) {
    if (await access(join(outDir, name)).then(() => true, () => false)) existing.push(name);
  }
  if (existing.length > 0 && !force) {
    throw new PortcullisError('PC_ERR_INIT_OUTPUT', `${outDir} already has ${existing.join(', ')}: nothing written (--force replaces them)`);
  }
  try {
    await mkdir(outDir, { recursive: true });
    for (const [name, text] of Object.entries(files)) await writeFile(join(outDir, name), text, { mode: 0o644, flag: force ? 'w' : 'wx' });
  } catch (error) {
    throw new PortcullisError('PC_ERR_INIT_OUTPUT', `cannot write into ${outDir}: ${(error as Error).message}`, { cause: error });
  }
}
