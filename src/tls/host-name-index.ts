/**
 * Which certificate serves which host name, by the rules browsers apply
 * (RFC 6125 §6.4): names compare case-insensitively, and a wildcard stands for
 * exactly one whole left-most label, so `*.example.org` covers
 * `www.example.org` but neither `example.org` nor `a.b.example.org`.
 * Pure: no I/O, so the rules are tested on their own.
 */

/**
 * The form names are compared in: lower case, without the one trailing dot a
 * fully qualified name may carry (SNI never sends it, RFC 6066 §3, but a
 * client that does still means the same host).
 */
export function normaliseHostName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/**
 * Whether `pattern` (a name from a certificate, `*.` wildcard allowed) is one
 * this index can serve. A wildcard must be the whole left-most label and have
 * at least two labels under it: `*.org` would cover a whole top-level domain,
 * and CAs may not issue it, so it is refused rather than trusted. Partial
 * wildcards (`w*.example.org`), which RFC 6125 lets clients refuse, are refused.
 */
export function isServableHostName(pattern: string): boolean {
  const labels = normaliseHostName(pattern).split('.');
  if (labels.some((label) => !/^[a-z0-9_*](?:[a-z0-9_*-]{0,61}[a-z0-9_*])?$/.test(label))) return false;
  const [first, ...rest] = labels;
  if (rest.some((label) => label.includes('*'))) return false;
  if (first?.includes('*')) return first === '*' && rest.length >= 2;
  return true;
}

/**
 * Host names to values, looked up by an SNI server name: the exact name
 * first, then the wildcard of its parent domain. Where two values claim the
 * same name, the first added keeps it (the order of the policy).
 */
export class HostNameIndex<T> {
  readonly #exact = new Map<string, T>();
  /** Keyed by the domain under the wildcard: `*.example.org` is at `example.org`. */
  readonly #wildcard = new Map<string, T>();

  /** Adds `value` under each servable name in `names`; returns the names refused as unservable. */
  add(names: readonly string[], value: T): string[] {
    const refused: string[] = [];
    for (const name of names) {
      if (!isServableHostName(name)) {
        refused.push(name);
        continue;
      }
      const normal = normaliseHostName(name);
      const [map, key] = normal.startsWith('*.') ? [this.#wildcard, normal.slice(2)] : [this.#exact, normal];
      if (!map.has(key)) map.set(key, value);
    }
    return refused;
  }

  /** The value serving `serverName`, or undefined when none covers it. */
  lookup(serverName: string): T | undefined {
    const host = normaliseHostName(serverName);
    const exact = this.#exact.get(host);
    if (exact !== undefined) return exact;
    const dot = host.indexOf('.');
    return dot > 0 ? this.#wildcard.get(host.slice(dot + 1)) : undefined;
  }
}
