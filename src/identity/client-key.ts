import ipaddr from 'ipaddr.js';

/** An address as ipaddr.js represents it. */
export type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;

/**
 * Who a request is charged to. Built once per distinct address and shared, so
 * treat it as immutable.
 */
export interface ClientKey {
  /** Canonical address: dotted IPv4, or RFC 5952 IPv6 (compact, lower case, no zone id). */
  readonly ip: string;
  /** The client's network in CIDR form (`192.0.2.0/24`, `2001:db8:1:2::/64`), for per-prefix limits and bans. */
  readonly prefix: string;
  readonly family: 4 | 6;
  /** The parsed address (IPv4-mapped IPv6 already turned into IPv4), for CidrSet lookups. */
  readonly addr: IpAddress;
  /**
   * The address and the prefix as numbers, for tables keyed without strings
   * (see BinaryKeyLru): at IP_KEY the address's key, at PREFIX_KEY the
   * prefix's, each a tag word (scope, family, prefix length) and four 32-bit
   * words of address (IPv4 in the first, the rest zero).
   */
  readonly words: Int32Array;
}

/** Where a ClientKey's `words` hold the address's binary key, and where the prefix's; each is KEY_WORDS long. */
export const IP_KEY = 0;
export const PREFIX_KEY = 5;
/** Words in one binary key: the tag and four words of address. */
export const KEY_WORDS = 5;

/** How many leading bits make one "network owner" (the `prefix` of a ClientKey). */
export interface PrefixLengths {
  /** 0–32. A /24 is the usual unit of IPv4 assignment to one customer. */
  readonly ipv4: number;
  /** 0–128. A /64 is one LAN; hosts rotate freely inside it, so /64 is the least that identifies an IPv6 client. */
  readonly ipv6: number;
}

/**
 * Parses an address the way Node reports a socket's peer (`socket.remoteAddress`)
 * and returns it normalised, or null if it is not an address.
 *
 * - `::ffff:1.2.3.4` (an IPv4 client on a dual-stack socket) becomes IPv4 1.2.3.4,
 *   so one client has one identity whichever socket it arrived on.
 * - A zone id (`fe80::1%eth0`) is dropped: it names our interface, not the client.
 *   It is cut off before ipaddr.js sees the text, because ipaddr.js rejects
 *   legal interface names such as `eth0.100` or `br-lan`.
 * - Only four-part decimal IPv4 is accepted. ipaddr.js on its own also accepts
 *   `127.1`, `0x7f.0.0.1` and `2130706433`, and reads `010.0.0.1` as octal
 *   (8.0.0.1) but `::ffff:010.0.0.1` as decimal: no socket produces these, and
 *   in a header or a config file they are a way to make one address look like
 *   another, so they are refused.
 * - No surrounding whitespace, brackets or ports: callers strip those.
 */
export function parseClientAddress(text: string): IpAddress | null {
  let bare = text;
  const zone = text.indexOf('%');
  if (zone !== -1) {
    // An empty zone (`fe80::1%`) is not something Node produces: refuse it.
    if (zone === 0 || zone === text.length - 1) return null;
    bare = text.slice(0, zone);
  }
  // Route on the colon rather than trying IPv4 first: ipaddr.js's IPv4
  // validators throw and catch internally on an IPv6 string, which costs ~10 µs.
  if (!bare.includes(':')) {
    // A zone id on an IPv4 address is meaningless: refuse rather than guess.
    return zone === -1 && ipaddr.IPv4.isValidFourPartDecimal(bare) ? ipaddr.IPv4.parse(bare) : null;
  }
  if (!ipaddr.IPv6.isValid(bare)) return null;
  // IPv6 with a trailing dotted quad (`::ffff:1.2.3.4`): hold the dotted part to
  // the same strict rule as plain IPv4.
  if (bare.includes('.') && !ipaddr.IPv4.isValidFourPartDecimal(bare.slice(bare.lastIndexOf(':') + 1))) return null;
  const v6 = ipaddr.IPv6.parse(bare);
  return isIPv4Mapped(v6) ? v6.toIPv4Address() : v6;
}

/**
 * Builds the ClientKey for an address. The address is normalised first
 * (IPv4-mapped IPv6 → IPv4, zone id dropped), so any ipaddr.js value is safe to pass.
 * Throws a RangeError if a prefix length is not a whole number in range.
 */
export function makeClientKey(addr: IpAddress, prefixLengths: PrefixLengths): ClientKey {
  assertPrefixLengths(prefixLengths);
  const normal = normaliseAddress(addr);
  if (normal.kind() === 'ipv4') {
    const bits = prefixLengths.ipv4;
    const network = networkAddress(normal, bits);
    return Object.freeze({
      ip: normal.toString(),
      prefix: `${network.toString()}/${bits}`,
      family: 4,
      addr: normal,
      words: binaryKeys(4, normal, network, bits),
    });
  }
  const bits = prefixLengths.ipv6;
  const network = networkAddress(normal, bits);
  return Object.freeze({
    // ipaddr.js 2's IPv6 toString() is RFC 5952 (longest zero run compressed, lower case).
    ip: normal.toString(),
    prefix: `${network.toString()}/${bits}`,
    family: 6,
    addr: normal,
    words: binaryKeys(6, normal, network, bits),
  });
}

/**
 * The two binary keys of a ClientKey's `words`. The tag keeps apart what the
 * words alone would not: an address from its /32, 10.0.0.0/24 from
 * 10.0.0.0/23, and IPv4 from the IPv6 address with the same leading word.
 */
function binaryKeys(family: 4 | 6, addr: IpAddress, network: IpAddress, prefixBits: number): Int32Array {
  const words = new Int32Array(2 * KEY_WORDS);
  const family6 = family === 6 ? 1 << 8 : 0;
  words[IP_KEY] = family6 | (family === 4 ? 32 : 128);
  words[PREFIX_KEY] = (1 << 9) | family6 | prefixBits;
  writeAddressWords(addr, words, IP_KEY + 1);
  writeAddressWords(network, words, PREFIX_KEY + 1);
  return words;
}

function writeAddressWords(addr: IpAddress, into: Int32Array, at: number): void {
  const bytes = addr.toByteArray();
  for (let i = 0; i < bytes.length; i++) into[at + (i >> 2)] = (into[at + (i >> 2)] as number) | ((bytes[i] as number) << (24 - 8 * (i & 3)));
}

/**
 * Throws a RangeError naming the bad field unless `ipv4` is a whole number
 * 0–32 and `ipv6` a whole number 0–128.
 */
export function assertPrefixLengths(prefixLengths: PrefixLengths): void {
  const { ipv4, ipv6 } = prefixLengths;
  if (!Number.isInteger(ipv4) || ipv4 < 0 || ipv4 > 32) {
    throw new RangeError(`prefix.ipv4 must be a whole number 0–32, got ${String(ipv4)}`);
  }
  if (!Number.isInteger(ipv6) || ipv6 < 0 || ipv6 > 128) {
    throw new RangeError(`prefix.ipv6 must be a whole number 0–128, got ${String(ipv6)}`);
  }
}

/**
 * The network address of `addr` under a `bits`-long prefix (host bits zeroed).
 * `bits` must already be in range for the address family.
 */
export function networkAddress(addr: IpAddress, bits: number): IpAddress {
  if (addr.kind() === 'ipv4') {
    const octets = (addr as ipaddr.IPv4).octets.map((octet, i) => octet & maskByte(bits - 8 * i, 8));
    return new ipaddr.IPv4(octets);
  }
  const parts = (addr as ipaddr.IPv6).parts.map((part, i) => part & maskByte(bits - 16 * i, 16));
  return new ipaddr.IPv6(parts);
}

/** Mask for one `width`-bit group of which the first `bits` (clamped to 0..width) belong to the network. */
function maskByte(bits: number, width: number): number {
  if (bits <= 0) return 0;
  if (bits >= width) return (1 << width) - 1;
  return ((1 << width) - 1) ^ ((1 << (width - bits)) - 1);
}

/** IPv4-mapped IPv6 → IPv4; IPv6 without its zone id; IPv4 unchanged. */
function normaliseAddress(addr: IpAddress): IpAddress {
  if (addr.kind() === 'ipv4') return addr;
  const v6 = addr as ipaddr.IPv6;
  if (isIPv4Mapped(v6)) return v6.toIPv4Address();
  // toString() would print the zone id; the key must not carry it.
  return v6.zoneId === undefined ? v6 : new ipaddr.IPv6(v6.parts.slice());
}

/**
 * `::ffff:a.b.c.d`, read off the parts: ipaddr.js's isIPv4MappedAddress()
 * matches the address against every special range it knows, which cost
 * more than the rest of an IPv6 decision.
 */
export function isIPv4Mapped(v6: ipaddr.IPv6): boolean {
  const parts = v6.parts;
  return parts[0] === 0 && parts[1] === 0 && parts[2] === 0 && parts[3] === 0 && parts[4] === 0 && parts[5] === 0xffff;
}
