/**
 * The certbot commands that move each certificate from the apache plugin to
 * the webroot one (README, "Certificates"): certbot renews a certificate the
 * way it was last issued, and the apache plugin has no TLS vhost to edit once
 * portcullis holds :443. Each certificate is issued again for the names it
 * has now, each name with the DocumentRoot of the vhost that serves it, where
 * HTTP-01 challenges are written (and which portcullis forwards them to, even
 * with redirect_https).
 */
import { shellQuote } from './apache-changes.js';
import type { FoundCertificate, FrontDoorPlan } from './front-door-plan.js';

/** One certbot command per certificate a site uses, or a comment saying why it is left as it is. Pure. */
export function webrootReissueCommands(plan: FrontDoorPlan, certificates: readonly FoundCertificate[]): string[] {
  const used = certificates.filter((certificate) => plan.sites.some((site) => site.certificate === certificate.name));
  return used.map((certificate) => {
    // Wildcard names need the DNS-01 challenge: no webroot can answer for them.
    const wildcards = certificate.hostNames.filter((name) => name.startsWith('*.'));
    if (wildcards.length > 0) return `# ${certificate.name} has ${wildcards.join(', ')}: DNS-01 only, so it keeps renewing as it was issued (a DNS plugin), not with --webroot`;
    const groups: { root: string; names: string[] }[] = [];
    for (const name of certificate.hostNames) {
      const site = plan.sites.find((candidate) => candidate.hosts.includes(name.toLowerCase()));
      const root = site?.plain?.block?.documentRoot ?? site?.tls?.block?.documentRoot;
      if (root === undefined) return `# ${certificate.name}: no DocumentRoot found for ${name}; re-issue it with certbot certonly --webroot by hand`;
      const last = groups.at(-1);
      if (last?.root === root) last.names.push(name);
      else groups.push({ root, names: [name] });
    }
    const args = groups.map((group) => `-w ${shellQuote(group.root)} ${group.names.map((name) => `-d ${shellQuote(name)}`).join(' ')}`);
    return `certbot certonly --webroot --cert-name ${shellQuote(certificate.name)} ${args.join(' ')} --force-renewal`;
  });
}
