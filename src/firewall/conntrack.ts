/*
 * Flushing connection-tracking entries of a banned source, shared by the
 * kernel backends. Their rules drop every packet in the raw table, before
 * conntrack, so established flows stop without this; it frees the entries
 * early and stops flows that other rules would accept as ESTABLISHED.
 */
import ipaddr from 'ipaddr.js';
import type { KernelBan } from './ban-backend.js';
import { validateBan } from './ban-validation.js';
import { BackendUnavailableError, FirewallCommandError } from '../core/errors.js';
import type { CommandRunner } from './command-runner.js';

/**
 * Deletes the conntrack entries whose source is the ban's address or lies in
 * its prefix (`conntrack -D -s NET --mask-src MASK`). Resolves without doing
 * anything when the conntrack tool is not installed (remembered in `state`, so
 * it is looked for once). Exit status 1 with "0 flow entries have been
 * deleted" means there was nothing to delete, not a failure.
 */
export async function forgetConnections(runner: CommandRunner, ban: KernelBan, state: { conntrackMissing: boolean }): Promise<void> {
  if (state.conntrackMissing) return;
  // The timeout plays no part here (and may have run out by the time this runs): only the target is checked.
  const valid = validateBan({ target: ban.target, family: ban.family, scope: ban.scope, timeoutSec: 1 });
  const args = ['-D', '-f', valid.family === 4 ? 'ipv4' : 'ipv6', '-s', valid.address];
  if (valid.scope === 'prefix') {
    const mask = valid.family === 4
      ? ipaddr.IPv4.subnetMaskFromPrefixLength(valid.prefixLength).toString()
      : ipaddr.IPv6.subnetMaskFromPrefixLength(valid.prefixLength).toRFC5952String();
    args.push('--mask-src', mask);
  }
  try {
    await runner.run('conntrack', args);
  } catch (error) {
    if (error instanceof BackendUnavailableError) {
      state.conntrackMissing = true;
      return;
    }
    if (error instanceof FirewallCommandError && /\b0 flow entries have been deleted/.test(error.stderr)) return;
    throw error;
  }
}
