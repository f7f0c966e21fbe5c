/**
 * The starter policy `portcullis init` writes: the shipped
 * config/portcullis.yaml as it is, comments, limits and layout kept, with
 * its `listen` and `upstream` lines replaced by the plan's and the plan's
 * `tls` and `sites` added at the end. Editing the shipped text (rather than
 * writing a new document) keeps every reason next to its value, and a later
 * change to the shipped limits reaches the next `init` by itself.
 */
import { basename } from 'node:path';
import { PortcullisError } from '../core/errors.js';
import type { FrontDoorPlan, PlacedVhost, PlannedSite } from './front-door-plan.js';

/** The shipped block every site keeps unless told otherwise, by its rule name (its path). */
export const XMLRPC_BLOCK = '/xmlrpc.php';

export interface StarterPolicyOptions {
  /** What `tls.certbot_live` names: where portcullis's user reads the certificates. */
  readonly certbotLive: string;
}

const HEADER = `# Written by \`portcullis init\` from Apache's layout (apache2ctl -S): the
# listeners, upstream, certificates and sites are what it found (at the end
# of the file); everything else is the shipped policy. Check it with
# \`portcullis check FILE\` after every edit.
#
`;

/** Renders the policy text for `plan` from the shipped policy's text. Pure. */
export function renderStarterPolicy(shipped: string, plan: FrontDoorPlan, options: StarterPolicyOptions): string {
  let text = shipped;
  const listeners = [
    ...(plan.plainListener === undefined ? [] : [plan.plainListener.redirectHttps ? `{ address: "${plan.plainListener.address}", redirect_https: true }   # Apache's :80 redirected every site: a 308 to https:// (ACME challenges still forwarded)` : `{ address: "${plan.plainListener.address}" }   # Apache's :80`]),
    ...(plan.tlsListener === undefined ? [] : [`{ address: "${plan.tlsListener.address}", tls: true }   # Apache's :443: TLS ends here, HTTP/2 and HTTP/1.1`]),
  ];
  if (listeners.length > 0) text = replaceTopLevelLine(text, 'listen', `listen:\n${listeners.map((line) => `  - ${line}`).join('\n')}`);
  text = replaceTopLevelLine(text, 'upstream', `upstream: ${JSON.stringify(plan.upstream)}  # Apache on loopback (ports.conf, written beside this file); both listeners forward here`);
  const added: string[] = [];
  if (plan.tlsListener !== undefined) {
    added.push(`# Certificates for the TLS listener: every NAME/fullchain.pem + NAME/privkey.pem here.\ntls:\n  certbot_live: ${JSON.stringify(options.certbotLive)}`);
  }
  if (plan.sites.length > 0) {
    added.push(`# One site per Apache vhost, in Apache's order (README, "Several sites").\nsites:\n${plan.sites.map(siteLines).join('\n')}`);
  }
  return `${HEADER}${text.replace(/\n*$/, '\n')}${added.map((block) => `\n${block}\n`).join('')}`;
}

function siteLines(site: PlannedSite): string {
  const from = [site.plain, site.tls].filter((placed): placed is PlacedVhost => placed !== undefined).map(describeVhost(site)).join(', ');
  const lines = [`  - name: ${JSON.stringify(site.name)}${from === '' ? '' : `   # ${from}`}`, `    hosts: [${site.hosts.map((host) => JSON.stringify(host)).join(', ')}]`];
  if (site.isDefault) lines.push('    default: true   # Apache\'s first vhost: it answers the names no vhost has');
  if (site.xmlrpc === 'limited') {
    // The README's Jetpack site: the global block traded for a tight limit on this site only.
    lines.push(
      `    disable: [${XMLRPC_BLOCK}]   # xmlrpc.php allowed here (--allow-xmlrpc), a few a minute`,
      '    limits:',
      '      - name: xmlrpc',
      '        methods: [POST]',
      `        paths: [${XMLRPC_BLOCK}]`,
      '        per_ip:     { rate: 6/min, burst: 6 }',
      '        per_prefix: { rate: 20/min, burst: 20 }',
    );
  }
  return lines.join('\n');
}

function describeVhost(site: PlannedSite): (placed: PlacedVhost) => string {
  return (placed) => {
    const where = `${basename(placed.vhost.file)}:${placed.vhost.line}`;
    if (placed === site.tls) return `${where} (${placed.address}${site.certificate === undefined ? ', no certificate found' : `, certificate ${site.certificate}`})`;
    return `${where} (${placed.address}${site.redirectsToHttps ? ', redirected to https' : ''})`;
  };
}

/** Replaces the one top-level `KEY: value` line of the shipped policy. */
function replaceTopLevelLine(text: string, key: string, replacement: string): string {
  const pattern = new RegExp(`^${key}:[^\\n]*$`, 'm');
  if (!pattern.test(text)) throw new PortcullisError('PC_ERR_INIT_OUTPUT', `the shipped policy has no one-line top-level "${key}:" to replace`);
  return text.replace(pattern, () => replacement);
}
