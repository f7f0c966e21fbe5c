import net from 'node:net';
import { parseHostAuthority } from '../config/host-authority.js';
import { parseClientAddress } from '../identity/client-key.js';

/** Whether a request's `Host` names this admin API, and if not, why (for the operator). */
export type HostVerdict = { readonly ok: true } | { readonly ok: false; readonly why: string };

/** Longest part of a refused Host quoted back: it is the client's text. */
const MAX_QUOTED = 100;

/**
 * The admin API's defence against DNS rebinding. A web page on this machine
 * (or on one that can reach admin.listen) can point a name it controls at
 * 127.0.0.1 and read the answers as same-origin; the one thing it cannot
 * choose is the Host header, which names the page's own host. So the API
 * answers only a Host that names it:
 *
 * - `localhost`;
 * - its listen address, and the address the request came in on (for a
 *   0.0.0.0 or :: listener, that is the interface the client reached);
 * - an `admin.allowed_hosts` entry (`web1` for a remote Prometheus);
 *
 * each with no port, or the port the request came in on; an entry written
 * with a port (`web1:19181`, behind a port forward) matches only that port.
 * Names compare case-insensitively, addresses by value (`[2001:DB8:0::1]` is
 * `[2001:db8::1]`). A missing Host (HTTP/1.0), several Host headers, or a
 * Host that is not a plain name or address is refused: fail closed. The
 * wildcard addresses are nobody's name: browsers send `http://0.0.0.0:PORT`
 * to this machine, so accepting `Host: 0.0.0.0` would let any page in.
 */
export class AdminHostCheck {
  /** Hosts that match with no port or the local port. */
  readonly #names = new Set<string>(['localhost']);
  /** `host|port` of entries written with a port, which match only that port. */
  readonly #withPort = new Set<string>();

  /** `listenHost` as in admin.listen (brackets removed); `allowedHosts` as in admin.allowed_hosts, already validated by the schema. */
  constructor(listenHost: string, allowedHosts: readonly string[]) {
    const listen = net.isIP(listenHost) === 0 ? parseHostAuthority(listenHost) : { host: parseClientAddress(listenHost)?.toString() ?? listenHost, port: null };
    if (listen !== null && !isWildcard(listen.host)) this.#names.add(listen.host);
    for (const entry of allowedHosts) {
      const parsed = parseHostAuthority(entry);
      // The schema refuses entries that do not parse; skipping here keeps a hand-built list from matching anything by accident.
      if (parsed === null) continue;
      if (parsed.port === null) this.#names.add(parsed.host);
      else this.#withPort.add(`${parsed.host}|${parsed.port}`);
    }
  }

  /**
   * Checks the Host header values of one request (`req.headersDistinct.host`)
   * against the names above, `localAddress` and `localPort` being the
   * connection's own end (`req.socket.localAddress`, `.localPort`).
   */
  check(hostValues: readonly string[] | undefined, localAddress: string | undefined, localPort: number | undefined): HostVerdict {
    if (hostValues === undefined || hostValues.length === 0) {
      return refuse(`the request has no Host header (HTTP/1.0 without Host); send "Host: 127.0.0.1:${localPort ?? 'PORT'}", or a name listed in admin.allowed_hosts`);
    }
    if (hostValues.length > 1) return refuse(`the request has ${hostValues.length} Host headers; send one, naming this host (see admin.allowed_hosts)`);
    const value = hostValues[0] as string;
    const parsed = parseHostAuthority(value);
    if (parsed === null) {
      return refuse(`Host ${quote(value)} is not a host name or address with an optional port; send one like 127.0.0.1:${localPort ?? 'PORT'}, or a name listed in admin.allowed_hosts`);
    }
    const { host, port } = parsed;
    if (port !== null && this.#withPort.has(`${host}|${port}`)) return { ok: true };
    const local = localAddress === undefined ? null : (parseClientAddress(localAddress)?.toString() ?? null);
    const ownName = this.#names.has(host) || (host === local && !isWildcard(host));
    if (ownName && (port === null || port === localPort)) return { ok: true };
    const spelt = host.includes(':') ? `[${host}]` : host;
    const suggestion = port === null || port === localPort ? `"${spelt}"` : `"${spelt}:${port}"`;
    return refuse(
      `Host ${quote(value)} does not name this admin API (its own address, localhost or an admin.allowed_hosts entry, on port ${localPort ?? 'of admin.listen'}); ` +
        `it is refused because a web page could be reaching the API through DNS rebinding. If this is how you reach it (a remote Prometheus, say), add ${suggestion} to admin.allowed_hosts and restart`,
    );
  }
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

function refuse(why: string): HostVerdict {
  return { ok: false, why };
}

function quote(value: string): string {
  return JSON.stringify(value.length > MAX_QUOTED ? `${value.slice(0, MAX_QUOTED)}…` : value);
}
