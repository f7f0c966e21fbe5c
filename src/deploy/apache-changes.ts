/**
 * The Apache side of a front-door plan, as files and commands for a person
 * to run: a ports.conf with Apache on loopback (deploy/apache/ports.conf's
 * address), and per vhost file one `sed` that moves its `<VirtualHost>` to
 * that address and removes (or, when only some sites redirect, restricts to
 * plain HTTP) certbot's redirect; a redirecting pair's `:443` twin is
 * disabled instead, since the `:80` vhost, moved, now serves both. Every
 * edit is by line number, from the lines `init` read, in one `sed` per file
 * (so its numbers are the file's as read), keeping a `.before-portcullis`
 * copy; `--follow-symlinks`, or sed would replace sites-enabled's symlink by
 * a file.
 */
import { basename, dirname } from 'node:path';
import { type FrontDoorPlan, type PlacedVhost, type PlannedSite } from './front-door-plan.js';

/** A step of the Apache changes: what it does, and the shell commands, or none when it is by hand. */
export interface ApacheStep {
  readonly why: string;
  readonly commands: readonly string[];
}

/** The ports.conf to install: Apache's new address, and the loopback addresses Apache already had (their Listen lines are kept). */
export function renderPortsConf(plan: FrontDoorPlan): string {
  const kept = plan.leftAlone.filter((entry) => /^(127\.|\[::1\])/.test(entry.address)).map((entry) => entry.address);
  return [
    '# /etc/apache2/ports.conf behind portcullis, written by `portcullis init`',
    '# (the shipped deploy/apache/ports.conf, with the loopback addresses Apache',
    '# already had). Apache listens on loopback only, so clients reach it through',
    "# portcullis and nowhere else: this is the policy's `upstream`. There is no",
    '# Listen 443: TLS ends at portcullis, which forwards HTTPS requests here as',
    '# plain HTTP with X-Forwarded-Proto: https (see portcullis.conf).',
    '',
    `Listen ${plan.apacheAddress}`,
    // Apache has no trailing comments: a word after Listen's address is its protocol.
    ...[...new Set(kept)].filter((address) => address !== plan.apacheAddress).flatMap((address) => ['# A vhost already on loopback, left as it was.', `Listen ${address}`]),
    '',
  ].join('\n');
}

/** The per-vhost edits, in file order. */
export function vhostEditSteps(plan: FrontDoorPlan): ApacheStep[] {
  const siteOf = new Map<PlacedVhost, PlannedSite>();
  for (const site of plan.sites) for (const placed of [site.plain, site.tls]) if (placed !== undefined) siteOf.set(placed, site);
  const redirectByPortcullis = plan.plainListener?.redirectHttps === true;
  const edits = new Map<string, { expressions: string[]; why: string[] }>();
  // In the order a person runs them: the edits, then the twins disabled, then what is left to do by hand.
  const disables: ApacheStep[] = [];
  const byHand: ApacheStep[] = [];
  const edit = (file: string, why: string, expressions: string[]): void => {
    const entry = edits.get(file) ?? { expressions: [], why: [] };
    entry.expressions.push(...expressions);
    entry.why.push(why);
    edits.set(file, entry);
  };
  for (const placed of plan.moved) {
    const site = siteOf.get(placed);
    const { file, line } = placed.vhost;
    const name = site?.name ?? `the catch-all ${placed.vhost.serverName}`;
    const move = `${line}s/<VirtualHost [^>]*>/<VirtualHost ${plan.apacheAddress}>/`;
    const moved = `<VirtualHost> on line ${line} to ${plan.apacheAddress}`;
    if (site !== undefined && placed === site.tls && site.plain !== undefined) {
      const enabled = /\/sites-enabled$/.test(dirname(file));
      disables.push({
        why: `${name}: its :443 twin ${file}:${line} goes; the :80 vhost, moved, serves HTTP and HTTPS (merge into it anything you added only here)`,
        commands: enabled ? [`a2dissite ${shellQuote(basename(file).replace(/\.conf$/, ''))}`] : [],
      });
      continue;
    }
    if (placed.block === null) {
      byHand.push({ why: `${name}: ${file}:${line} could not be read: move its <VirtualHost> to ${plan.apacheAddress} by hand${placed === site?.tls ? ' and remove its SSL directives' : ''}`, commands: [] });
      continue;
    }
    if (site !== undefined && placed === site.tls) {
      // A TLS-only site: the vhost itself moves, without its TLS directives (portcullis holds the certificate now).
      edit(file, `${name}: ${moved}, its SSL lines removed`, [move, ...placed.block.tlsLines.map((entry) => `${entry.line}d`)]);
      continue;
    }
    const redirects = placed.block.httpsRedirects;
    if (redirects.length > 0 && site?.redirectsToHttps === true && redirectByPortcullis) {
      const lines = redirects.flatMap((redirect) => redirect.lines);
      edit(file, `${name}: ${moved}, its redirects to https (lines ${lines.map((entry) => entry.line).join(', ')}) removed: portcullis redirects`, [move, ...lines.map((entry) => `${entry.line}d`)]);
      continue;
    }
    // Apache sees HTTPS requests as plain HTTP now: a redirect to https:// that stays must be limited to those that came over plain HTTP, or they loop.
    const rewrites = redirects.filter((redirect) => redirect.kind === 'rewrite');
    const kept = rewrites.length === 0 ? '' : `, its redirect to https (line ${rewrites.map((redirect) => redirect.lines.at(-1)?.line).join(', ')}) kept for requests that came over plain HTTP`;
    edit(file, `${name}: ${moved}${kept}`, [move, ...rewrites.map((redirect) => `${redirect.lines[0]?.line}i RewriteCond %{HTTP:X-Forwarded-Proto} !=https`)]);
    for (const redirect of redirects.filter((entry) => entry.kind === 'redirect')) {
      byHand.push({ why: `${name}: replace its ${redirect.lines[0]?.text} (${file}:${redirect.lines[0]?.line}) by a RewriteRule under RewriteCond %{HTTP:X-Forwarded-Proto} !=https, or HTTPS requests loop`, commands: [] });
    }
  }
  const seds = [...edits].map(([file, entry]) => ({ why: entry.why.join('; '), commands: [`sed --follow-symlinks -i.before-portcullis ${entry.expressions.map((expression) => `-e ${shellQuote(expression)}`).join(' ')} ${shellQuote(file)}`] }));
  return [...seds, ...disables, ...byHand];
}

/** Quotes a word for a POSIX shell when it needs it. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
