import { domainToASCII } from 'node:url';
import { parseHostAuthority } from '../config/host-authority.js';

/** One `sites[].hosts` entry, canonical: lower-case, punycode, no trailing dot. */
export interface HostPattern {
  /** `exact` matches one name; `wildcard` (`*.example.org`) every name below `base`, at any depth, not `base` itself (Apache's ServerAlias `*`). */
  readonly kind: 'exact' | 'wildcard';
  /** The name, or for a wildcard the name below which it matches (`example.org`). */
  readonly base: string;
  /** As it is shown and compared: `blog.example.org` or `*.example.org`. */
  readonly text: string;
}

/** Why a pattern could never match; a value, so the schema can put it in a message with its position. */
export type HostPatternProblem = 'port' | 'star' | 'ipv6' | 'invalid';

/**
 * Parses a site's host pattern: an exact name (`blog.example.org`, an IDN
 * such as `bücher.example` written as it reads, or a dotted IPv4 address) or
 * `*.` and a name. Names are made canonical the way a request's Host is
 * compared (request-host.ts): lower case, one trailing dot dropped, IDNs as
 * punycode (clients send punycode: Apache refuses raw UTF-8 in Host). Nothing
 * is accepted that a Host Apache serves could never spell: no port (Apache
 * picks a name-based vhost by name), no `*` elsewhere than as the first
 * label.
 */
export function parseHostPattern(text: string): HostPattern | HostPatternProblem {
  const wildcard = text.startsWith('*.');
  let name = wildcard ? text.slice(2) : text;
  if (name.includes('*') || text === '*') return 'star';
  if (name.startsWith('[')) return 'ipv6';
  if (/:\d*$/.test(name) && !name.includes('::')) return 'port';
  if (name.endsWith('.')) name = name.slice(0, -1);
  const ascii = domainToASCII(name);
  if (ascii === '') return 'invalid';
  const parsed = parseHostAuthority(ascii);
  if (parsed === null || parsed.port !== null) return 'invalid';
  if (parsed.host.includes(':')) return 'ipv6';
  // A wildcard below an address (`*.192.0.2.7`) names nothing.
  if (wildcard && /^[0-9.]+$/.test(parsed.host)) return 'invalid';
  return { kind: wildcard ? 'wildcard' : 'exact', base: parsed.host, text: wildcard ? `*.${parsed.host}` : parsed.host };
}

/** True when every name `inner` matches is matched by `outer` too (so a later site with `inner` never gets it). */
export function hostPatternCovers(outer: HostPattern, inner: HostPattern): boolean {
  if (outer.kind === 'exact') return inner.kind === 'exact' && inner.base === outer.base;
  return inner.base.endsWith(`.${outer.base}`) || (inner.kind === 'wildcard' && inner.base === outer.base);
}
