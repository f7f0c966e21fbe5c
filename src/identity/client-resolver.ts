import { LRUCache } from 'lru-cache';
import { systemClock, type Clock } from '../core/clock.js';
import { detachedString } from '../core/detached-string.js';
import type { CidrSet } from './cidr-set.js';
import { assertPrefixLengths, makeClientKey, parseClientAddress, type ClientKey, type PrefixLengths } from './client-key.js';

/** An address we have identified, and whether it is one of our trusted proxies. */
export interface ResolvedPeer {
  readonly key: ClientKey;
  /** In `trustedProxies`: its X-Forwarded-For is believed. */
  readonly trusted: boolean;
}

export interface ClientResolverOptions {
  /** Proxies whose X-Forwarded-For is believed (a CDN, a load balancer). Empty: nobody's. */
  readonly trustedProxies: CidrSet;
  /** Prefix lengths for ClientKey.prefix. */
  readonly prefix: PrefixLengths;
  /**
   * Called when a peer that is not a trusted proxy sends X-Forwarded-For, at
   * most once per peer per hour, so a CDN whose ranges were left out of
   * `trusted_proxies` shows up in the log (every visitor would otherwise look
   * like a handful of CDN nodes) without a line per request. Must not throw:
   * it runs inside resolve().
   */
  readonly onUntrustedForwardedFor?: (peerIp: string) => void;
  /** Time for the once-an-hour memory. @default systemClock */
  readonly clock?: Clock;
  /**
   * Distinct address strings (peers and X-Forwarded-For entries) whose
   * ClientKey is remembered. A miss costs ~1 µs for IPv4 and ~2.5 µs for IPv6
   * (ipaddr.js validates with regular expressions); a hit ~30 ns. Measured
   * ~0.5 KiB per IPv4 entry and ~0.7 KiB per IPv6 entry, so the default costs
   * at most ~12 MiB. A judgement call: enough for the addresses active at any
   * moment on a busy site, small next to the bucket tables.
   * @default 16384
   */
  readonly addressCacheMax?: number;
  /**
   * Distinct untrusted peers remembered for the once-an-hour report. When more
   * peers than this send X-Forwarded-For within the hour, the least recent are
   * forgotten and may be reported again: still one line per peer, not per request.
   * @default 10000
   */
  readonly reportCacheMax?: number;
}

/** How long a reported peer stays quiet. */
const REPORT_INTERVAL_MS = 60 * 60 * 1000;

/**
 * Works out which client a request is charged to.
 *
 * The client is the socket's peer. X-Forwarded-For is read only when that peer
 * is a trusted proxy, and then only as far as the trusted hops go: anyone can
 * write anything into the header, so only entries appended by proxies we trust
 * mean something. Counting a fixed number of hops instead would let a client
 * that adds its own entries choose its identity.
 *
 * The caches belong to one configuration: on a policy reload that changes
 * trusted proxies or prefix lengths, build a new resolver.
 */
export class ClientResolver {
  readonly #trustedProxies: CidrSet;
  readonly #prefix: PrefixLengths;
  readonly #onUntrustedForwardedFor: ((peerIp: string) => void) | undefined;
  readonly #clock: Clock;
  readonly #addresses: LRUCache<string, ResolvedPeer>;
  /** Peer ip → when it was last reported (clock ms). */
  readonly #reported: LRUCache<string, number>;

  constructor(options: ClientResolverOptions) {
    assertPrefixLengths(options.prefix);
    this.#trustedProxies = options.trustedProxies;
    this.#prefix = { ipv4: options.prefix.ipv4, ipv6: options.prefix.ipv6 };
    this.#onUntrustedForwardedFor = options.onUntrustedForwardedFor;
    this.#clock = options.clock ?? systemClock;
    this.#addresses = new LRUCache({ max: positiveInt('addressCacheMax', options.addressCacheMax ?? 16_384) });
    // The hour is checked against a stored timestamp rather than with
    // lru-cache's own `ttl`: lru-cache treats an entry stored at time 0 as
    // never stale and caches "now" for 1 ms of wall time, both of which go
    // wrong under a ManualClock (tests, and any replay of recorded traffic).
    this.#reported = new LRUCache({ max: positiveInt('reportCacheMax', options.reportCacheMax ?? 10_000) });
  }

  /**
   * The client behind a request, or null if the peer address is missing or
   * not an address (a socket that closed before we looked).
   *
   * `forwardedFor` is the X-Forwarded-For header as Node gives it: a string,
   * or several header lines which are read as one list in order.
   */
  resolve(peerAddress: string | undefined, forwardedFor: string | string[] | undefined): ClientKey | null {
    const peer = this.lookupPeer(peerAddress);
    return peer === null ? null : this.resolveFromPeer(peer, forwardedFor);
  }

  /**
   * Identifies the socket's peer. A socket's peer never changes, so the proxy
   * may keep the result on the socket and call resolveFromPeer per request.
   */
  lookupPeer(peerAddress: string | undefined): ResolvedPeer | null {
    return peerAddress === undefined ? null : this.#identify(peerAddress);
  }

  /**
   * The client behind a request from a known peer.
   *
   * Walks X-Forwarded-For from the right (the entry the peer itself appended)
   * past trusted proxies; the first untrusted address is the client, and if
   * every entry is trusted, the leftmost is. Entries may carry ports
   * (`1.2.3.4:567`, `[2001:db8::1]:443`) and spaces; empty list elements are
   * skipped, as HTTP list syntax requires.
   *
   * An entry that is not an address (`unknown`, a hostname, garbage) stops the
   * walk and the last good address — a trusted proxy, possibly the peer itself
   * — is the client. Fail closed: everything left of the junk came from a party
   * no trusted proxy vouched for, so skipping over it would let that party pick
   * the identity we charge. The cost is that traffic through that proxy shares
   * one identity and gets limited together, which is visible and safe.
   */
  resolveFromPeer(peer: ResolvedPeer, forwardedFor: string | string[] | undefined): ClientKey {
    if (forwardedFor === undefined) return peer.key;
    if (!peer.trusted) {
      if (this.#onUntrustedForwardedFor !== undefined && hasContent(forwardedFor)) this.#report(peer.key.ip);
      return peer.key;
    }
    const lines = typeof forwardedFor === 'string' ? [forwardedFor] : forwardedFor;
    let client = peer;
    // Scan from the right with lastIndexOf instead of split(): the walk usually
    // stops after one or two entries, and a long header should not cost an
    // array of every entry.
    walk: for (let l = lines.length - 1; l >= 0; l--) {
      const line = lines[l] ?? '';
      let end = line.length;
      while (end >= 0) {
        const comma = end === 0 ? -1 : line.lastIndexOf(',', end - 1);
        const element = line.slice(comma + 1, end).trim();
        end = comma;
        if (element === '') continue;
        const host = stripPort(element);
        const hop = host === null ? null : this.#identify(host);
        if (hop === null) break walk;
        client = hop;
        if (!hop.trusted) break walk;
      }
    }
    return client.key;
  }

  #identify(text: string): ResolvedPeer | null {
    const cached = this.#addresses.get(text);
    if (cached !== undefined) return cached;
    const addr = parseClientAddress(text);
    // Junk is not cached: it would only push real addresses out.
    if (addr === null) return null;
    const key = makeClientKey(addr, this.#prefix);
    const resolved: ResolvedPeer = Object.freeze({ key, trusted: this.#trustedProxies.has(key.addr) });
    this.#addresses.set(detachedString(text), resolved);
    return resolved;
  }

  #report(peerIp: string): void {
    const now = this.#clock.nowMs();
    const last = this.#reported.get(peerIp);
    if (last !== undefined && now - last < REPORT_INTERVAL_MS) return;
    this.#reported.set(peerIp, now);
    this.#onUntrustedForwardedFor?.(peerIp);
  }
}

/**
 * The host part of one X-Forwarded-For element: `[v6]` or `[v6]:port`,
 * `v4:port`, or a bare address. Null if brackets or port are malformed.
 * Splits only on syntax; the address itself is left to ipaddr.js.
 */
function stripPort(element: string): string | null {
  if (element.startsWith('[')) {
    const close = element.indexOf(']');
    if (close === -1) return null;
    const rest = element.slice(close + 1);
    if (rest !== '' && !isPortSuffix(rest)) return null;
    return element.slice(1, close);
  }
  const colon = element.indexOf(':');
  // Two or more colons: a bare IPv6 address (which cannot carry a port unbracketed).
  if (colon === -1 || element.indexOf(':', colon + 1) !== -1) return element;
  return isPortSuffix(element.slice(colon)) ? element.slice(0, colon) : null;
}

/** `:` followed by 1–5 digits. */
function isPortSuffix(text: string): boolean {
  return /^:[0-9]{1,5}$/.test(text);
}

function hasContent(forwardedFor: string | string[]): boolean {
  if (typeof forwardedFor === 'string') return forwardedFor.trim() !== '';
  return forwardedFor.some((line) => line.trim() !== '');
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive whole number (caches are always bounded), got ${String(value)}`);
  }
  return value;
}
