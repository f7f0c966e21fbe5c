import { parseClientAddress } from '../identity/client-key.js';

/** A `Host` value (RFC 9110 §7.2: `uri-host [":" port]`), split and made canonical so equal names compare equal. */
export interface HostAuthority {
  /** A lower-case name, a dotted IPv4 address, or an RFC 5952 IPv6 address without brackets (IPv4-mapped IPv6 as IPv4). */
  readonly host: string;
  /** Null when the value names no port. */
  readonly port: number | null;
}

/** An IPv6 literal in brackets, then an optional port. */
const IP_LITERAL = /^\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?$/;
/** DNS labels (letters, digits, `-`, `_`) joined by single dots, then an optional port. */
const NAME = /^([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)(?::(\d{1,5}))?$/;
/** Longest DNS name (RFC 1035) plus `:65535`. */
const MAX_LENGTH = 253 + 6;

/**
 * Parses `web1`, `web1:9181`, `192.0.2.7:9181` or `[2001:db8::1]:9181` into
 * a canonical host and port; returns null for anything else. Deliberately
 * narrower than the URI grammar: no user part, no empty port (`web1:`), no
 * trailing dot, no zone id, no percent-encoding, and no IPv4 spelt other than
 * four-part decimal (`127.1`, `0x7f.0.0.1`), so that one host has one spelling
 * and a check against a list cannot be talked around.
 */
export function parseHostAuthority(text: string): HostAuthority | null {
  if (text.length === 0 || text.length > MAX_LENGTH) return null;
  const literal = IP_LITERAL.exec(text);
  if (literal !== null) {
    // Brackets hold IPv6 only (RFC 3986 IP-literal): `[127.0.0.1]` is not a spelling of 127.0.0.1.
    if (!(literal[1] as string).includes(':')) return null;
    const addr = parseClientAddress(literal[1] as string);
    return addr === null ? null : withPort(addr.toString(), literal[2]);
  }
  const name = NAME.exec(text);
  if (name === null) return null;
  const host = (name[1] as string).toLowerCase();
  if (/^[0-9.]+$/.test(host)) {
    // All digits and dots is an IPv4 address or nothing: never a name.
    const addr = parseClientAddress(host);
    return addr === null ? null : withPort(addr.toString(), name[2]);
  }
  return withPort(host, name[2]);
}

function withPort(host: string, portText: string | undefined): HostAuthority | null {
  if (portText === undefined) return { host, port: null };
  const port = Number(portText);
  return port >= 1 && port <= 65_535 ? { host, port } : null;
}
