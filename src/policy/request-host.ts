import { parseHostAuthority } from '../config/host-authority.js';

/** Where a request names its host, as the proxy received it. */
export interface RequestHostSources {
  /** `host[:port]` of an absolute-form request-target (see origin-form.ts); null for origin-form. */
  readonly authority: string | null;
  /** The Host header (one: two are refused as malformed before this). */
  readonly host: string | undefined;
  /** HTTP/2's `:authority` pseudo-header. */
  readonly h2Authority?: string | undefined;
}

/**
 * The host value Apache will choose the vhost by, which is the one portcullis
 * forwards as Host (upstream-headers.ts): an absolute-form authority replaces
 * Host (RFC 9112 §3.2.2, as Apache does), else the Host header, and over
 * HTTP/2 `:authority` only when no Host came with it. Undefined: none (an
 * HTTP/1.0 request without Host, which Apache serves from its first vhost).
 */
export function hostApacheUses(sources: RequestHostSources): string | undefined {
  return sources.authority ?? sources.host ?? sources.h2Authority;
}

/** Letters, digits, `-` and `_` in labels joined by single dots, one trailing dot, then an optional port. */
const NAME = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?(?::\d{1,5})?$/;

/**
 * A request's host value made canonical the way Apache compares it with
 * ServerName and ServerAlias: lower case, without port and without one
 * trailing dot. Null for what Apache refuses (400: an empty label, `/`, a
 * space or comma, an empty or too large port, raw UTF-8: clients send IDNs
 * as punycode) and for the few spellings it serves from its default vhost
 * by a rule of its own (a leading dot, which a `*` ServerAlias matches with
 * nothing; an IPv4 address spelt other than four decimal parts): portcullis
 * refuses those rather than guess, so that it never picks a site for a
 * spelling Apache serves from another vhost. test/integration/sites-apache
 * checks each spelling against a real Apache.
 */
export function canonicalRequestHost(value: string): string | null {
  if (value.charCodeAt(0) === 0x5b /* [ */) return parseHostAuthority(value)?.host ?? null;
  if (!NAME.test(value)) return null;
  const colon = value.lastIndexOf(':');
  let name = colon < 0 ? value : value.slice(0, colon);
  if (name.endsWith('.')) name = name.slice(0, -1);
  const parsed = parseHostAuthority(colon < 0 ? name : `${name}${value.slice(colon)}`);
  return parsed === null ? null : parsed.host;
}
