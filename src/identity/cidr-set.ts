import type ipaddr from 'ipaddr.js';
import { isIPv4Mapped, networkAddress, parseClientAddress, type IpAddress } from './client-key.js';

/** A network: its address (host bits zero) and prefix length. */
export interface Cidr {
  readonly addr: IpAddress;
  readonly bits: number;
}

/**
 * Parses `10.0.0.0/8`, `2001:db8::/32` or a plain address (`127.0.0.1` is
 * `127.0.0.1/32`, `::1` is `::1/128`). Throws an Error whose message quotes the
 * entry and says what is wrong with it.
 *
 * - Host bits set (`1.2.3.4/24`) is an error, not rounded down to `1.2.3.0/24`.
 *   The entry is ambiguous: it may mean the one address or the whole network,
 *   and silently picking the network would trust (or allow) 255 hosts the
 *   operator never named. The message offers both spellings.
 * - IPv4-mapped IPv6 (`::ffff:10.0.0.0/104`) becomes IPv4 (`10.0.0.0/8`),
 *   because client addresses are normalised the same way before lookup.
 * - Prefix lengths are decimal 0–32 / 0–128, no sign, no leading zeros.
 * - Addresses follow parseClientAddress's strict rules (no `010.0.0.0`, which
 *   some tools read as octal); zone ids are refused, they mean nothing in a list.
 */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const addrText = slash === -1 ? text : text.slice(0, slash);
  if (addrText.includes('%')) {
    throw new Error(`${quote(text)} has a zone id (%...): zone ids name a local interface and cannot be listed`);
  }
  const addr = parseClientAddress(addrText);
  if (addr === null) {
    throw new Error(`${quote(text)} is not an IP address or CIDR (expected e.g. 10.0.0.0/8, 2001:db8::/32 or 192.0.2.7)`);
  }
  // parseClientAddress maps ::ffff:a.b.c.d to IPv4, so ask the text which
  // family the prefix length was written for.
  const writtenAsV6 = addrText.includes(':');
  const maxBits = writtenAsV6 ? 128 : 32;
  let bits = maxBits;
  if (slash !== -1) {
    const bitsText = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(bitsText) || Number(bitsText) > maxBits) {
      throw new Error(`${quote(text)} has prefix length ${quote(bitsText)}: expected a whole number 0–${maxBits}`);
    }
    bits = Number(bitsText);
  }
  if (writtenAsV6 && addr.kind() === 'ipv4') {
    // An IPv4-mapped network: only /96 and longer stay inside ::ffff:0:0/96,
    // shorter ones have host bits set in the ffff group and fail below.
    if (bits < 96) {
      throw new Error(`${quote(text)} has host bits set: an IPv4-mapped network needs a prefix length of 96 or more`);
    }
    bits -= 96;
  }
  const network = networkAddress(addr, bits);
  if (network.toString() !== addr.toString()) {
    // Suggestions are in the normalised family (IPv4 for a mapped entry).
    const single = addr.kind() === 'ipv4' ? 32 : 128;
    throw new Error(
      `${quote(text)} has host bits set: write ${network.toString()}/${bits} for the network or ${addr.toString()}/${single} for the one address`,
    );
  }
  return { addr: network, bits };
}

/** `addr/bits` in canonical form (`10.0.0.0/8`, `2001:db8::/32`). */
export function formatCidr(cidr: Cidr): string {
  return `${cidr.addr.toString()}/${cidr.bits}`;
}

/** The networks of one prefix length, keyed so that a lookup is one mask and one Set.has. */
interface V4Bucket {
  readonly bits: number;
  readonly mask: number;
  readonly networks: Set<number>;
}
interface V6Bucket {
  readonly bits: number;
  readonly networks: Set<string>;
}

/**
 * A set of networks, IPv4 and IPv6, answering "is this address inside any of
 * them?" — used for trusted proxies and allowlists, so `has` runs on every request.
 *
 * Lookup cost is one Set probe per distinct prefix length in the set (at most
 * 33 for IPv4, 129 for IPv6; real lists have a handful), independent of the
 * number of entries. The families are kept apart because ipaddr.js's `match`
 * throws when asked to compare across them, and an IPv4 client is never in an
 * IPv6 network: IPv4-mapped entries and addresses are both normalised to IPv4.
 * An IPv6 entry like `::/0` therefore matches native IPv6 only; list IPv4 ranges in IPv4 form.
 */
export class CidrSet {
  readonly #v4: V4Bucket[] = [];
  readonly #v6: V6Bucket[] = [];
  readonly #entries: string[] = [];

  /**
   * Builds a set from CIDR strings / plain addresses (see parseCidr) or parsed
   * Cidrs. Throws on the first bad entry, naming it and its index.
   */
  constructor(entries: Iterable<string | Cidr> = []) {
    let index = 0;
    for (const entry of entries) {
      let cidr: Cidr;
      try {
        cidr = typeof entry === 'string' ? parseCidr(entry) : entry;
      } catch (error) {
        throw new Error(`entry ${index}: ${(error as Error).message}`, { cause: error });
      }
      this.#add(cidr);
      index += 1;
    }
    // Longer prefixes first: no effect on the answer, but specific entries
    // (single proxies) are the likelier hits in a trusted list.
    this.#v4.sort((a, b) => b.bits - a.bits);
    this.#v6.sort((a, b) => b.bits - a.bits);
  }

  /** Same as the constructor; reads better at call sites that validate config. */
  static parse(entries: Iterable<string | Cidr>): CidrSet {
    return new CidrSet(entries);
  }

  /** Number of distinct networks (duplicates collapse). */
  get size(): number {
    return this.#entries.length;
  }

  /** The networks in canonical form, in insertion order; for `check`, `explain` and logs. */
  entries(): readonly string[] {
    return this.#entries;
  }

  /**
   * True if `addr` is inside any network of the set. Pass addresses from
   * parseClientAddress or ClientKey.addr (IPv4-mapped already turned into IPv4);
   * a mapped address passed raw is normalised here too.
   */
  has(addr: ipaddr.IPv4 | ipaddr.IPv6): boolean {
    // The shipped allowlist is empty: answer before touching the address,
    // whose object is a cache miss per request at a million clients (a tenth
    // of a decision's time there).
    if (this.#entries.length === 0) return false;
    if (addr.kind() === 'ipv6') {
      const v6 = addr as ipaddr.IPv6;
      if (isIPv4Mapped(v6)) return this.#hasV4(v4Number(v6.toIPv4Address()));
      if (this.#v6.length === 0) return false;
      const parts = v6.parts;
      for (const bucket of this.#v6) {
        if (bucket.networks.has(v6Key(parts, bucket.bits))) return true;
      }
      return false;
    }
    return this.#hasV4(v4Number(addr as ipaddr.IPv4));
  }

  #hasV4(n: number): boolean {
    for (const bucket of this.#v4) {
      if (bucket.networks.has((n & bucket.mask) >>> 0)) return true;
    }
    return false;
  }

  #add(cidr: Cidr): void {
    const { addr, bits } = cidr;
    let added: boolean;
    if (addr.kind() === 'ipv4') {
      let bucket = this.#v4.find((b) => b.bits === bits);
      if (bucket === undefined) {
        bucket = { bits, mask: v4Mask(bits), networks: new Set() };
        this.#v4.push(bucket);
      }
      const key = (v4Number(addr as ipaddr.IPv4) & bucket.mask) >>> 0;
      added = !bucket.networks.has(key);
      bucket.networks.add(key);
    } else {
      let bucket = this.#v6.find((b) => b.bits === bits);
      if (bucket === undefined) {
        bucket = { bits, networks: new Set() };
        this.#v6.push(bucket);
      }
      const key = v6Key((addr as ipaddr.IPv6).parts, bits);
      added = !bucket.networks.has(key);
      bucket.networks.add(key);
    }
    if (added) this.#entries.push(formatCidr(cidr));
  }
}

function quote(text: string): string {
  return JSON.stringify(text);
}

/** The address as an unsigned 32-bit number, so a network test is one AND. */
function v4Number(addr: ipaddr.IPv4): number {
  const [a = 0, b = 0, c = 0, d = 0] = addr.octets;
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

function v4Mask(bits: number): number {
  // `<< 32` is a no-op in JS (shift counts are mod 32), hence the special case.
  return bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
}

/**
 * The first `bits` of an IPv6 address as a string key: whole 16-bit groups
 * joined by ':', the last partial group masked. Only groups inside the prefix
 * take part, so keys of different lengths never need to agree.
 */
function v6Key(parts: readonly number[], bits: number): string {
  let key = '';
  for (let i = 0; i * 16 < bits; i++) {
    const keep = bits - i * 16;
    const part = parts[i] ?? 0;
    const masked = keep >= 16 ? part : part & (0xffff ^ ((1 << (16 - keep)) - 1));
    key += i === 0 ? masked.toString(16) : `:${masked.toString(16)}`;
  }
  return key;
}
