/*
 * Checks on everything a backend writes into a command or a batch file.
 *
 * A ban target ends up as text in `nft -f -`, `ipset restore` and
 * `iptables-restore` input, where a newline starts a new command and a `}`
 * closes an element list. Targets come from client addresses, so each one is
 * checked right before it is written: it must be an address or network in
 * canonical form (exactly what ipaddr.js prints), which leaves only hex
 * digits, dots, colons and one slash. Anything else throws a RangeError
 * before any command runs.
 */
import ipaddr from 'ipaddr.js';
import type { BanBackendOptions, KernelBan } from './ban-backend.js';

/**
 * Shortest prefixes a backend accepts, the same bounds as `identity.prefix`
 * in the policy: a /0 would drop the whole Internet on the listed ports, so a
 * short prefix is taken as a bug upstream, not a wish.
 */
export const MIN_PREFIX_LENGTH = { 4: 8, 6: 16 } as const;

/** Longest timeout accepted, in seconds (2^31 − 1, ~68 years); backends with a lower kernel limit clamp to it. */
export const MAX_TIMEOUT_SEC = 2 ** 31 - 1;

/** Largest `maxBans`: the kernel keeps set sizes in 32 bits; 2^31 − 1 stays clear of sign trouble in every tool. */
export const MAX_BANS_LIMIT = 2 ** 31 - 1;

/** Four-part decimal IPv4 without leading zeros: exactly what ipaddr.js and the kernel tools print. */
const CANONICAL_IPV4 = /^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;

/** A ban that passed validateBan: its target is canonical and safe to write into any batch. */
export interface ValidBan extends KernelBan {
  /** The network part without the length for a prefix, the target itself for an address. */
  readonly address: string;
  /** The prefix length: 32 / 128 for an address. */
  readonly prefixLength: number;
}

/**
 * Returns the ban with its target split into address and prefix length, or
 * throws a RangeError saying what is wrong. Rules:
 * - `scope: 'ip'`: a canonical address (`192.0.2.7`, `2001:db8::7`; not
 *   `2001:DB8::7`, `192.000.2.7` or `::ffff:192.0.2.7`) of the given family.
 * - `scope: 'prefix'`: canonical `network/length`, host bits zero, length
 *   8–32 (IPv4) or 16–128 (IPv6).
 * - `timeoutSec`: a whole number 1–2^31−1.
 */
export function validateBan(ban: KernelBan): ValidBan {
  // Checked before anything else reads the fields: a ban built from JSON may have any type.
  if (typeof ban.target !== 'string') throw new RangeError(`ban target must be a string, got ${describe(ban.target)}`);
  if (ban.family !== 4 && ban.family !== 6) throw new RangeError(`ban family must be 4 or 6, got ${describe(ban.family)} for ${describe(ban.target)}`);
  if (ban.scope !== 'ip' && ban.scope !== 'prefix') throw new RangeError(`ban scope must be 'ip' or 'prefix', got ${describe(ban.scope)} for ${describe(ban.target)}`);
  validateTimeoutSec(ban.timeoutSec, ban.target);
  const parsed = parseTarget(ban.target);
  if (parsed.family !== ban.family) {
    throw new RangeError(`ban target ${describe(ban.target)} is an IPv${parsed.family} ${parsed.isPrefix ? 'network' : 'address'}, but the ban says family ${ban.family}`);
  }
  if (parsed.isPrefix !== (ban.scope === 'prefix')) {
    throw new RangeError(
      ban.scope === 'prefix'
        ? `ban target ${describe(ban.target)} has scope 'prefix' but no /length (expected e.g. 198.51.100.0/24)`
        : `ban target ${describe(ban.target)} has scope 'ip' but is a network (use scope 'prefix')`,
    );
  }
  return { target: ban.target, family: ban.family, scope: ban.scope, timeoutSec: ban.timeoutSec, address: parsed.address, prefixLength: parsed.prefixLength };
}

/** What a canonical target text is: used by validateBan and by remove(target), which has no ban to go with it. */
export interface ParsedTarget {
  readonly family: 4 | 6;
  readonly isPrefix: boolean;
  readonly address: string;
  readonly prefixLength: number;
}

/** Parses a canonical address or network (see validateBan) or throws a RangeError. */
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
function canonicalFamily(text: string): 4 | 6 | null {
  if (CANONICAL_IPV4.test(text)) return 4;
  if (!text.includes(':') || !/^[0-9a-f:.]+$/.test(text) || !ipaddr.IPv6.isValid(text)) return null;
  const parsed = ipaddr.IPv6.parse(text);
  if (parsed.isIPv4MappedAddress()) return null;
  return parsed.toRFC5952String() === text ? 6 : null;
}

/** Throws a RangeError unless `timeoutSec` is a whole number 1–MAX_TIMEOUT_SEC. */
export function validateTimeoutSec(timeoutSec: unknown, target: unknown): asserts timeoutSec is number {
  if (typeof timeoutSec !== 'number' || !Number.isInteger(timeoutSec) || timeoutSec < 1 || timeoutSec > MAX_TIMEOUT_SEC) {
    throw new RangeError(`ban timeoutSec must be a whole number of seconds 1–${MAX_TIMEOUT_SEC}, got ${describe(timeoutSec)} for ${describe(target)}`);
  }
}

/** Backend options after validation: ports deduplicated and sorted. */
export interface ValidBackendOptions {
  readonly ports: readonly number[];
  readonly maxBans: number;
}

/** Throws a RangeError unless ports are whole numbers 1–65535 (at least one) and maxBans a whole number 1–2^31−1. */
export function validateBackendOptions(options: BanBackendOptions): ValidBackendOptions {
  if (!Array.isArray(options.ports) || options.ports.length === 0) {
    throw new RangeError(`ports must list at least one TCP port, got ${describe(options.ports)}`);
  }
  for (const port of options.ports) validatePort(port);
  if (typeof options.maxBans !== 'number' || !Number.isInteger(options.maxBans) || options.maxBans < 1 || options.maxBans > MAX_BANS_LIMIT) {
    throw new RangeError(`maxBans must be a whole number 1–${MAX_BANS_LIMIT}, got ${describe(options.maxBans)}`);
  }
  const ports = [...new Set(options.ports)].sort((a, b) => a - b);
  return Object.freeze({ ports: Object.freeze(ports), maxBans: options.maxBans });
}

/** Throws a RangeError unless `port` is a whole number 1–65535. */
export function validatePort(port: unknown): asserts port is number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new RangeError(`port must be a whole number 1–65535, got ${describe(port)}`);
  }
}

/**
 * A target as a kernel tool prints it, made canonical: IPv6 in RFC 5952 form
 * (tools print glibc's spelling), and for `scope: 'ip'` a `/32` or `/128`
 * dropped, while for `scope: 'prefix'` one is added where a tool leaves it out
 * (nft and ipset print a /32 network as a bare address). Returns null for
 * anything that is not an address or network.
 */
export function canonicalTarget(text: string, scope: 'ip' | 'prefix'): string | null {
  const slash = text.indexOf('/');
  const addressText = slash === -1 ? text : text.slice(0, slash);
  if (!ipaddr.isValid(addressText)) return null;
  const address = ipaddr.parse(addressText);
  if (address.kind() === 'ipv4' && !CANONICAL_IPV4.test(addressText)) return null;
  const canonical = address.kind() === 'ipv6' ? (address as ipaddr.IPv6).toRFC5952String() : address.toString();
  const maxBits = address.kind() === 'ipv4' ? 32 : 128;
  let bits = maxBits;
  if (slash !== -1) {
    const bitsText = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(bitsText) || Number(bitsText) > maxBits) return null;
    bits = Number(bitsText);
  }
  if (scope === 'ip') return bits === maxBits ? canonical : null;
  return `${canonical}/${bits}`;
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}
