import type { BanBackend, BanBackendOptions } from './ban-backend.js';
import { CommandRunner } from './command-runner.js';
import { IpsetBackend } from './ipset-backend.js';
import { IptablesBackend } from './iptables-backend.js';
import { NftablesBackend } from './nftables-backend.js';
import { NoneBackend } from './none-backend.js';

/** The backends `escalation.backend` may name. */
export type BanBackendName = 'nftables' | 'ipset' | 'iptables' | 'none';

/**
 * Builds the backend the policy names. Nothing runs until `init()`.
 * `runner` defaults to one running commands in portcullis's own network
 * namespace; tests pass one bound to a namespace they created.
 * Throws a RangeError for invalid options or an unknown name.
 */
export function createBanBackend(name: BanBackendName, options: BanBackendOptions, runner: CommandRunner = new CommandRunner()): BanBackend {
  switch (name) {
    case 'nftables':
      return new NftablesBackend(options, runner);
    case 'ipset':
      return new IpsetBackend(options, runner);
    case 'iptables':
      return new IptablesBackend(options, runner);
    case 'none':
      return new NoneBackend();
    default:
      throw new RangeError(`unknown firewall backend ${JSON.stringify(name as unknown)}: expected nftables, ipset, iptables or none`);
  }
}
