/*
 * What a ban may name: one address or one network, in canonical form
 * (exactly what ipaddr.js prints). The ledger, the state file and every
 * firewall backend hold targets in this form, and the backends write them
 * into batch files where a newline starts a new command and a `}` closes an
 * element list: canonical text leaves only hex digits, dots, colons and one
 * slash. Pure, so the escalation layer checks targets without the firewall.
 */
import ipaddr from 'ipaddr.js';

/**
 * Shortest prefixes a ban may cover, the same bounds as `identity.prefix`
 * in the policy: a /0 would drop the whole Internet on the listed ports, so a
 * short prefix is taken as a bug upstream, not a wish.
 */
export const MIN_PREFIX_LENGTH = { 4: 8, 6: 16 } as const;

/** Four-part decimal IPv4 without leading zeros: exactly what ipaddr.js and the kernel tools print. */
const CANONICAL_IPV4 = /^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;

/** What a canonical target text is. */
export interface ParsedTarget {
  readonly family: 4 | 6;
  readonly isPrefix: boolean;
  /** The network part without the length for a prefix, the target itself for an address. */
  readonly address: string;
  /** The prefix length: 32 / 128 for an address. */
  readonly prefixLength: number;
}

/**
 * Parses a canonical address (`192.0.2.7`, `2001:db8::7`; not `2001:DB8::7`,
 * `192.000.2.7` or `::ffff:192.0.2.7`) or network (`network/length`, host
 * bits zero, length 8–32 for IPv4 or 16–128 for IPv6), or throws a
 * RangeError saying what is wrong.
 */
export function parseTarget(target: string): ParsedTarget {
  if (typeof target !== 'string') throw new RangeError(`ban target must be a string, got ${describe(target)}`);
  // Longest canonical form: a full IPv6 address (39) plus "/128".
  if (target.length === 0 || target.length > 43) throw new RangeError(`ban target ${describe(target)} is not an IP address or network`);
  const slash = target.indexOf('/');
  const address = slash === -1 ? target : target.slice(0, slash);
  const family = canonicalFamily(address);
  if (family === null) {
    throw new RangeError(`ban target ${describe(target)} is not a canonical IP address or network (expected e.g. 192.0.2.7, 2001:db8::7, 198.51.100.0/24, 2001:db8:1::/48)`);
  }
  const maxBits = family === 4 ? 32 : 128;
  if (slash === -1) return { family, isPrefix: false, address, prefixLength: maxBits };
  const bitsText = target.slice(slash + 1);
  const min = MIN_PREFIX_LENGTH[family];
  if (!/^[1-9][0-9]{0,2}$/.test(bitsText) || Number(bitsText) < min || Number(bitsText) > maxBits) {
    throw new RangeError(`ban target ${describe(target)} has prefix length ${describe(bitsText)}: expected a whole number ${min}–${maxBits}`);
  }
  const bits = Number(bitsText);
  const network = family === 4 ? ipaddr.IPv4.networkAddressFromCIDR(target).toString() : ipaddr.IPv6.networkAddressFromCIDR(target).toRFC5952String();
  if (network !== address) throw new RangeError(`ban target ${describe(target)} has host bits set: the network is ${network}/${bits}`);
  return { family, isPrefix: true, address, prefixLength: bits };
}

/** 4 or 6 when `text` is an address exactly as ipaddr.js prints it, else null. IPv4-mapped IPv6 is refused: the kernel sees those clients as IPv4. */
export function canonicalFamily(text: string): 4 | 6 | null {
  if (CANONICAL_IPV4.test(text)) return 4;
  if (!text.includes(':') || !/^[0-9a-f:.]+$/.test(text) || !ipaddr.IPv6.isValid(text)) return null;
  const parsed = ipaddr.IPv6.parse(text);
  if (parsed.isIPv4MappedAddress()) return null;
  return parsed.toRFC5952String() === text ? 6 : null;
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}
