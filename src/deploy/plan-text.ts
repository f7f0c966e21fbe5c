/**
 * What `portcullis init` prints: what it found in Apache's layout, what it
 * wrote, and the exact commands that apply it, in the order that keeps the
 * sites up (README, "Deploying"). init runs none of them.
 */
import { dirname, join } from 'node:path';
import { shellQuote, vhostEditSteps } from './apache-changes.js';
import type { FoundCertificate, FrontDoorPlan, PlannedSite } from './front-door-plan.js';
import { webrootReissueCommands } from './webroot-reissue.js';

/** The hook's own default for PORTCULLIS_CERT_DIR (deploy/certbot/portcullis-reload). */
export const HOOK_CERT_DIR = '/etc/portcullis/certs';

export interface PlanContext {
  /** The command that printed the layout, as run. */
  readonly dumpCommand: string;
  readonly outDir: string;
  readonly writtenFiles: readonly string[];
  /** Where the policy is installed (the unit's --config). */
  readonly policyPath: string;
  /** The certbot live directory read, and the directory the policy's tls.certbot_live names. */
  readonly certbotLive: string;
  readonly certDir: string;
  /** deploy/certbot/portcullis-reload in this installation. */
  readonly hookFile: string;
  /** Apache's ServerRoot (/etc/apache2 on Debian). */
  readonly apacheRoot: string;
  /** The certificates found in certbotLive. */
  readonly certificates: readonly FoundCertificate[];
}

/** Renders the report and the plan. Pure. */
export function renderPlan(plan: FrontDoorPlan, context: PlanContext): string {
  const out: string[] = [`portcullis init: Apache's layout as \`${context.dumpCommand}\` printed it`, '', 'Sites:'];
  if (plan.sites.length === 0) out.push('  none: Apache has no named vhost on a public :80 or :443');
  for (const site of plan.sites) out.push(`  ${site.name}${site.isDefault ? ' (default)' : ''}: ${site.hosts.join(', ')}`, `      ${describeSite(site)}`);
  out.push('', 'Listeners (portcullis):');
  if (plan.plainListener !== undefined) out.push(`  ${plan.plainListener.address}${plan.plainListener.redirectHttps ? '   redirect_https: every site Apache served on :80 redirected to https' : ''}`);
  if (plan.tlsListener !== undefined) out.push(`  ${plan.tlsListener.address}   tls, ${context.certificates.length} certificate${context.certificates.length === 1 ? '' : 's'} found in ${context.certbotLive}`);
  out.push(`  both forward to ${plan.upstream}, where Apache moves`);
  if (plan.leftAlone.length > 0) out.push('', 'Left alone:', ...plan.leftAlone.map((entry) => `  ${entry.address}: ${entry.reason}`));
  if (plan.notes.length > 0) out.push('', 'Notes:', ...plan.notes.map((note) => `  - ${note}`));
  out.push('', `Written to ${context.outDir}: ${context.writtenFiles.join(', ')}`);

  const file = (name: string): string => shellQuote(join(context.outDir, name));
  const root = context.apacheRoot;
  const commands: string[] = [];
  let steps = 0;
  const step = (title: string): void => {
    commands.push(`# ${++steps}. ${title}`);
  };
  step('The portcullis user and the policy.');
  commands.push(
    'id portcullis >/dev/null 2>&1 || useradd --system --home-dir /var/lib/portcullis --shell /usr/sbin/nologin portcullis',
    `install -d -m 0750 -g portcullis ${shellQuote(dirname(context.policyPath))}`,
    `install -m 0640 -g portcullis ${file('portcullis.yaml')} ${shellQuote(context.policyPath)}`,
  );
  if (plan.tlsListener !== undefined) {
    step('Certificates: renewals must stop using the apache plugin, so each certificate is issued again with --webroot while Apache still serves :80 (README, "Certificates").');
    commands.push(...webrootReissueCommands(plan, context.certificates));
    if (context.certDir === context.certbotLive) {
      commands.push("# portcullis reads certbot's live/ in place: its group must read it (and archive/).");
      commands.push(`chgrp -R portcullis ${shellQuote(context.certbotLive)} ${shellQuote(join(context.certbotLive, '..', 'archive'))} && chmod -R g+rX ${shellQuote(context.certbotLive)} ${shellQuote(join(context.certbotLive, '..', 'archive'))}`);
    } else {
      const env = context.certDir === HOOK_CERT_DIR ? '' : ` PORTCULLIS_CERT_DIR=${shellQuote(context.certDir)}`;
      commands.push(
        "# certbot's live/ is root-only: the deploy hook copies each certificate for portcullis's user, now and at every renewal.",
        `install -m 0755 ${shellQuote(context.hookFile)} /etc/letsencrypt/renewal-hooks/deploy/portcullis-reload`,
        `for d in ${shellQuote(context.certbotLive)}/*/; do env RENEWED_LINEAGE="\${d%/}"${env} PORTCULLIS_RELOAD= /etc/letsencrypt/renewal-hooks/deploy/portcullis-reload; done`,
      );
      if (env !== '') commands.push(`# certbot runs the hook without PORTCULLIS_CERT_DIR: set cert_dir's default in the installed hook to ${context.certDir} too.`);
    }
  }
  commands.push(`portcullis check ${shellQuote(context.policyPath)}`);
  step('The systemd unit (started with the switch, below).');
  commands.push(
    `install -m 0644 ${file('portcullis.service')} /etc/systemd/system/portcullis.service`,
    'systemctl daemon-reload && systemctl enable portcullis',
  );
  step('Apache on loopback, believing portcullis for the client address and HTTPS.');
  commands.push(
    `cp ${shellQuote(join(root, 'ports.conf'))} ${shellQuote(join(root, 'ports.conf.before-portcullis'))}`,
    `install -m 0644 ${file('ports.conf')} ${shellQuote(join(root, 'ports.conf'))}`,
    `install -m 0644 ${file('portcullis.conf')} ${shellQuote(join(root, 'conf-available', 'portcullis.conf'))}`,
    'a2enmod remoteip setenvif && a2enconf portcullis',
  );
  for (const step of vhostEditSteps(plan)) commands.push(`# ${step.why}`, ...step.commands);
  if (plan.tlsListener !== undefined && !plan.leftAlone.some((entry) => entry.tls)) commands.push('# No vhost serves TLS any more.', 'a2dismod ssl');
  commands.push('apache2ctl configtest');
  step('The switch (clients see nothing on :80 for a moment).');
  commands.push('systemctl restart apache2 && systemctl restart portcullis');
  if (plan.tlsListener !== undefined) {
    step('A renewal through portcullis.');
    commands.push('certbot renew --dry-run');
  }
  out.push('', 'Plan: nothing above has been run and Apache has not been changed. Review, then run as root, in this order:', '', ...commands, '');
  return out.join('\n');
}

function describeSite(site: PlannedSite): string {
  const parts: string[] = [];
  if (site.plain !== undefined) parts.push(`:80 ${site.plain.vhost.file}:${site.plain.vhost.line}${site.redirectsToHttps ? ' (redirects to https)' : ''}`);
  if (site.tls !== undefined) parts.push(`:443 ${site.tls.vhost.file}:${site.tls.vhost.line}${site.certificate === undefined ? ' (no certificate found)' : ` (certificate ${site.certificate})`}`);
  parts.push(site.xmlrpc === 'limited' ? 'xmlrpc.php limited to 6/min' : 'xmlrpc.php blocked');
  return parts.join('; ');
}
