import ipaddr from 'ipaddr.js';
import type { IpAddress } from '../identity/client-key.js';
import { parseCidr } from '../identity/cidr-set.js';

/**
 * Addresses portcullis must never ban: allowlisted clients, trusted proxies
 * and the upstream itself. A ban on a trusted proxy would cut off every client
 * behind it; a ban on the upstream would cut portcullis off from Apache.
 */
export class NeverBanList {
  readonly #networks: { addr: IpAddress; bits: number }[];

  /** `entries`: CIDRs or addresses, as in the policy. */
  constructor(entries: Iterable<string>) {
    this.#networks = [...entries].map((entry) => parseCidr(entry));
  }

  /** Whether banning `addr` is forbidden. */
  protects(addr: IpAddress): boolean {
    return this.#networks.some((net) => net.addr.kind() === addr.kind() && addr.match(net.addr, net.bits));
  }

  /** Whether a ban on the network `cidr` would cover a protected address (then it must not be banned whole). */
  overlaps(cidr: string): boolean {
    const [network, bits] = ipaddr.parseCIDR(cidr);
    return this.#networks.some((net) => {
      if (net.addr.kind() !== network.kind()) return false;
      // Two networks overlap when the shorter prefix contains the other's network address.
      return net.bits <= bits ? network.match(net.addr, net.bits) : net.addr.match(network, bits);
    });
  }
}
