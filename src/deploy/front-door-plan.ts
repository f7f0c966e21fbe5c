/**
 * Where each of Apache's public vhosts goes once portcullis is in front:
 * Apache's `*:80` and `*:443` become portcullis listeners on the same ports,
 * every name becomes a site, and Apache moves to one loopback port
 * (deploy/apache/ports.conf's 127.0.0.1:8080) that both listeners forward to.
 *
 * certbot's Apache plugin leaves each secured site as a pair: the `:80` vhost
 * with a redirect to https:// and a `-le-ssl.conf` copy on `:443` serving
 * the content, both with the same ServerName. A site whose `:80` vhost
 * redirects (found in its block) and has a `:443` twin is a redirecting
 * pair; when every site Apache serves on `:80` is one, the `:80` listener
 * gets `redirect_https` and Apache stops redirecting (it would see HTTPS
 * requests as plain HTTP and redirect them to themselves). When only some
 * are, the listener forwards and those sites keep Apache's redirect, limited
 * to plain HTTP requests. A TLS listener is planned only when certificates
 * were found: without one it would not start.
 */
import { PortcullisError } from '../core/errors.js';
import { hostPatternCovers, parseHostPattern, type HostPattern } from '../policy/host-pattern.js';
import type { ApacheVhostDump, DumpedVirtualHost } from './apache-vhost-dump.js';
import type { VirtualHostBlock } from './virtual-host-block.js';

/** Apache's new port by default: deploy/apache/ports.conf's, and the shipped policy's upstream. */
export const APACHE_LOOPBACK_PORT = 8080;
const PLAIN_PORT = 80;
const TLS_PORT = 443;

/** A certificate found in certbot's live directory, with the host names it serves. */
export interface FoundCertificate {
  readonly name: string;
  readonly hostNames: readonly string[];
}

export interface FrontDoorInput {
  readonly dump: ApacheVhostDump;
  /** Each vhost's block, by `FILE:LINE`; null where the file could not be read or the line is not a block. */
  readonly blocks: ReadonlyMap<string, VirtualHostBlock | null>;
  readonly certificates: readonly FoundCertificate[];
  /** Sites (by name) that keep xmlrpc.php, with a tight limit. */
  readonly allowXmlrpc: readonly string[];
  /** The port on 127.0.0.1 Apache moves to. @default APACHE_LOOPBACK_PORT */
  readonly apachePort?: number;
}

/** A vhost Apache has on a public address, and what its block said. */
export interface PlacedVhost {
  readonly address: string;
  readonly vhost: DumpedVirtualHost;
  readonly block: VirtualHostBlock | null;
}

export interface PlannedSite {
  /** The site's name in the policy: its ServerName. */
  readonly name: string;
  /** ServerName first, then the aliases of its :80 and :443 vhosts. */
  readonly hosts: readonly string[];
  /** Apache's first vhost on :80 (or :443): it answers names no vhost has. */
  readonly isDefault: boolean;
  readonly plain?: PlacedVhost;
  readonly tls?: PlacedVhost;
  /** Its :80 vhost redirects every request to https:// and a :443 twin serves it. */
  readonly redirectsToHttps: boolean;
  /** The certificate serving its ServerName, when it has a :443 vhost. */
  readonly certificate?: string;
  /** Hosts of a :443 site no certificate found covers. */
  readonly uncoveredHosts: readonly string[];
  readonly xmlrpc: 'blocked' | 'limited';
}

export interface FrontDoorPlan {
  readonly sites: readonly PlannedSite[];
  /** `0.0.0.0:80`, when Apache had a public :80. */
  readonly plainListener?: { readonly address: string; readonly redirectHttps: boolean };
  /** `0.0.0.0:443`, when Apache had a public :443 and certificates were found. */
  readonly tlsListener?: { readonly address: string };
  readonly upstream: string;
  /** Where Apache moves: `127.0.0.1:PORT`. */
  readonly apacheAddress: string;
  /** Every public :80 and :443 vhost, which must move to `apacheAddress` or go. */
  readonly moved: readonly PlacedVhost[];
  /** Addresses not mapped, and why. */
  readonly leftAlone: readonly { readonly address: string; readonly reason: string; readonly tls: boolean }[];
  /** What the person applying the plan must know. */
  readonly notes: readonly string[];
}

/** Maps Apache's layout to portcullis's listeners, sites and upstream. Pure. */
export function planFrontDoor(input: FrontDoorInput): FrontDoorPlan {
  const apacheAddress = `127.0.0.1:${input.apachePort ?? APACHE_LOOPBACK_PORT}`;
  const leftAlone: { address: string; reason: string; tls: boolean }[] = [];
  const notes: string[] = [];
  const moved: PlacedVhost[] = [];
  const plainSide: PlacedVhost[] = [];
  const tlsSide: PlacedVhost[] = [];
  for (const address of input.dump.addresses) {
    if (isLoopback(address.host)) {
      const tls = address.vhosts.some((vhost) => input.blocks.get(`${vhost.file}:${vhost.line}`)?.tls ?? address.port === TLS_PORT);
      leftAlone.push({ address: address.address, reason: 'already on loopback: clients cannot reach it, so it stays as it is', tls });
      continue;
    }
    for (const vhost of address.vhosts) {
      const block = input.blocks.get(`${vhost.file}:${vhost.line}`) ?? null;
      // TLS as the block says (SSLEngine, a certificate); where it could not be read, by the port.
      const tls = block?.tls ?? address.port === TLS_PORT;
      const placed = { address: address.address, vhost, block };
      if (!tls && address.port === PLAIN_PORT) plainSide.push(placed);
      else if (tls && address.port === TLS_PORT) tlsSide.push(placed);
      else {
        leftAlone.push({ address: address.address, reason: `${vhost.serverName} (${vhost.file}:${vhost.line}) is ${tls ? 'TLS' : 'plain HTTP'} on port ${address.port ?? '*'}: only :80 and :443 are mapped; put it behind portcullis by hand`, tls });
        continue;
      }
      moved.push(placed);
    }
  }

  const taken = input.dump.addresses.find((address) => address.address === apacheAddress);
  if (taken !== undefined && moved.length > 0) {
    // The moved vhosts would join that address's name-based set and change what it serves.
    throw new PortcullisError('PC_ERR_USAGE', `Apache already has vhosts on ${apacheAddress} (${taken.vhosts[0]?.file}:${taken.vhosts[0]?.line}): choose another --apache-port for the ones that move`);
  }

  const sites = new Map<string, { plain?: PlacedVhost; tls?: PlacedVhost; hosts: string[] }>();
  const defaultName = [plainSide[0], tlsSide[0]].map((placed) => placed?.vhost.serverName.toLowerCase()).find((name) => name !== undefined);
  for (const [side, list] of [['plain', plainSide], ['tls', tlsSide]] as const) {
    for (const placed of list) {
      const serverName = placed.vhost.serverName.toLowerCase();
      // A vhost without ServerName shows the server's name, often an address: a catch-all, not a site.
      if (isAddressLiteral(serverName)) continue;
      const site = sites.get(serverName) ?? { hosts: [] };
      if (site[side] !== undefined) notes.push(`${serverName} has two ${side === 'tls' ? ':443' : ':80'} vhosts (${site[side].vhost.file}:${site[side].vhost.line} and ${placed.vhost.file}:${placed.vhost.line}): Apache serves it from the first, and so does the plan`);
      else site[side] = placed;
      for (const host of [serverName, ...placed.vhost.aliases, ...(placed.block?.aliases ?? [])].map((name) => name.toLowerCase())) {
        if (!site.hosts.includes(host)) site.hosts.push(host);
      }
      sites.set(serverName, site);
    }
  }

  // Apache gives a name to the first vhost any of whose names match it: a later vhost's name an earlier one
  // covers (the same name, or below an earlier wildcard) is never served by it, and a site listing it fails check.
  const earlier: { pattern: HostPattern; site: string }[] = [];
  for (const [serverName, site] of sites) {
    const kept: string[] = [];
    for (const host of site.hosts) {
      const pattern = parseHostPattern(host);
      if (typeof pattern === 'string') {
        notes.push(`${host} (site ${serverName}) is not a name a site can have (${pattern}): left out`);
        continue;
      }
      const cover = earlier.find((other) => other.site !== serverName && hostPatternCovers(other.pattern, pattern));
      if (cover !== undefined) {
        notes.push(`${host} is served by the earlier vhost ${cover.site} (its ${cover.pattern.text}) in Apache, not by ${serverName}: left out of site ${serverName}`);
        continue;
      }
      kept.push(pattern.text);
    }
    site.hosts = kept;
    earlier.push(...kept.map((host) => ({ pattern: parseHostPattern(host) as HostPattern, site: serverName })));
    if (kept.length === 0) {
      notes.push(`${serverName} has no name Apache would choose it by: no site for it`);
      sites.delete(serverName);
    }
  }

  const known = new Set([...sites.keys()].map(siteName));
  const unknown = input.allowXmlrpc.filter((name) => !known.has(name));
  if (unknown.length > 0) {
    throw new PortcullisError('PC_ERR_USAGE', `--allow-xmlrpc names no site of Apache's: ${unknown.join(', ')} (the sites are ${[...known].join(', ') || 'none'})`);
  }

  const planned: PlannedSite[] = [...sites.entries()].map(([serverName, site]) => {
    const coveredBy = (host: string): FoundCertificate | undefined => input.certificates.find((certificate) => certificate.hostNames.some((pattern) => covers(pattern, host)));
    const certificate = site.tls === undefined ? undefined : coveredBy(serverName);
    const name = siteName(serverName);
    return {
      name,
      hosts: site.hosts,
      isDefault: serverName === defaultName,
      ...(site.plain === undefined ? {} : { plain: site.plain }),
      ...(site.tls === undefined ? {} : { tls: site.tls }),
      redirectsToHttps: site.plain !== undefined && site.tls !== undefined && (site.plain.block?.httpsRedirects.some((redirect) => redirect.everyRequest) ?? false),
      ...(certificate === undefined ? {} : { certificate: certificate.name }),
      uncoveredHosts: site.tls === undefined ? [] : site.hosts.filter((host) => coveredBy(host) === undefined),
      xmlrpc: input.allowXmlrpc.includes(name) ? 'limited' : 'blocked',
    };
  });

  const tlsListener = tlsSide.length > 0 && input.certificates.length > 0 ? { address: `0.0.0.0:${TLS_PORT}` } : undefined;
  if (tlsSide.length > 0 && tlsListener === undefined) {
    notes.push(`Apache serves :443, but no certificate was found in certbot's live directory: no TLS listener is written (it could not start without one); add { address: "0.0.0.0:443", tls: true } and tls.certbot_live once the certificates are there`);
  }
  for (const site of planned) {
    if (site.uncoveredHosts.length > 0 && tlsListener !== undefined) notes.push(`no certificate found covers ${site.uncoveredHosts.join(', ')} (site ${site.name}): clients asking for ${site.uncoveredHosts.length === 1 ? 'it' : 'them'} over HTTPS get the default certificate`);
  }
  const plainSites = planned.filter((site) => site.plain !== undefined);
  const redirectHttps = tlsListener !== undefined && plainSites.length > 0 && plainSites.every((site) => site.redirectsToHttps);
  if (!redirectHttps && tlsListener !== undefined && plainSites.some((site) => site.redirectsToHttps)) {
    notes.push(`only some sites redirect to https (${plainSites.filter((site) => site.redirectsToHttps).map((site) => site.name).join(', ')}): the :80 listener forwards, and Apache keeps their redirect for requests that came over plain HTTP`);
  }
  if (plainSide.length > 0 || tlsListener !== undefined) {
    notes.push('the listeners are IPv4 (0.0.0.0), where Apache\'s Listen 80 took IPv6 too: for IPv6 clients write "[::]:PORT" instead, which on Linux takes both (net.ipv6.bindv6only=0); both at once cannot bind');
  }
  return {
    sites: planned,
    ...(plainSide.length === 0 ? {} : { plainListener: { address: `0.0.0.0:${PLAIN_PORT}`, redirectHttps } }),
    ...(tlsListener === undefined ? {} : { tlsListener }),
    upstream: `http://${apacheAddress}`,
    apacheAddress,
    moved,
    leftAlone,
    notes,
  };
}

/** An IPv4 or IPv6 literal (host names have no colon). */
function isAddressLiteral(name: string): boolean {
  return /^\d{1,3}(?:\.\d{1,3}){3}$/.test(name) || name.includes(':');
}

function isLoopback(host: string): boolean {
  return /^127\./.test(host) || host === '::1';
}

/** A ServerName as a policy name (letters, digits, `_.-`, at most 64). */
function siteName(serverName: string): string {
  return serverName.replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64) || 'site';
}

/** RFC 6125 as portcullis's certificate choice does it: `*.example.org` covers one label below, a wildcard host only the same wildcard. */
function covers(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  if (p === host) return true;
  if (!p.startsWith('*.') || host.startsWith('*.')) return false;
  const dot = host.indexOf('.');
  return dot > 0 && host.slice(dot) === p.slice(1);
}
