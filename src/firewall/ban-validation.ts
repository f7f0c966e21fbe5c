/*
 * Checks on everything a backend writes into a command or a batch file.
 *
 * A ban target ends up as text in `nft -f -`, `ipset restore` and
 * `iptables-restore` input, where a newline starts a new command and a `}`
 * closes an element list. Targets come from client addresses, so each one is
 * checked right before it is written: it must be an address or network in
 * canonical form (escalation/ban-target.ts, shared with the ledger and the
 * state file). Anything else throws a RangeError before any command runs.
 */
import ipaddr from 'ipaddr.js';
import type { BanBackendOptions, KernelBan } from './ban-backend.js';
import { canonicalFamily, parseTarget } from '../escalation/ban-target.js';
import { MAX_TIMEOUT_SEC } from '../escalation/max-ban-timeout.js';


/** Largest `maxBans`: the kernel keeps set sizes in 32 bits; 2^31 − 1 stays clear of sign trouble in every tool. */
export const MAX_BANS_LIMIT = 2 ** 31 - 1;

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
  if (address.kind() === 'ipv4' && canonicalFamily(addressText) !== 4) return null;
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
