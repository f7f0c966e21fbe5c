/*
 * The raw-table commands both xtables backends use: the iptables backend
 * keeps its ban rules behind the PORTCULLIS chain, the ipset backend its
 * set matches, and both reach the chain by the same PREROUTING jump. Here
 * are the chain's name, the tools of each family, reading the raw table
 * (`ip(6)tables-save -t raw`), applying lines in one transaction
 * (`ip(6)tables-restore --noflush`) and the port lists of a multiport match.
 * What a backend writes into the chain is its own.
 */
import { validatePort } from './ban-validation.js';
import type { CommandRunner } from './command-runner.js';

/** Our chain in the raw table, jumped to from PREROUTING (xtables chain names hold at most 28 characters). */
export const IPTABLES_CHAIN = 'PORTCULLIS';

/** The commands of each family. */
export const IPTABLES_TOOLS = {
  4: { save: 'iptables-save', restore: 'iptables-restore' },
  6: { save: 'ip6tables-save', restore: 'ip6tables-restore' },
} as const;

/** xt_multiport takes at most 15 ports per rule. */
const MULTIPORT_MAX = 15;

/** Saving and restoring many rules is slow with iptables-nft (tens of thousands of rules take seconds). */
const RESTORE_TIMEOUT_MS = 60_000;

/** What every `ip(6)tables-save -t raw` shows, whichever backend reads it. */
export interface RawChains {
  /** Every chain declared in the raw table. */
  readonly chains: ReadonlySet<string>;
  /** Whether PREROUTING jumps to PORTCULLIS. */
  readonly hasJump: boolean;
}

/** Prints the raw table of one family with `ip(6)tables-save -t raw`; `maxOutputBytes` bounds what is read. */
export async function saveRaw(runner: CommandRunner, family: 4 | 6, maxOutputBytes: number): Promise<string> {
  const { stdout } = await runner.run(IPTABLES_TOOLS[family].save, ['-t', 'raw'], { maxOutputBytes, timeoutMs: RESTORE_TIMEOUT_MS });
  return stdout;
}

/** Parses the chains and the PREROUTING jump out of `iptables-save -t raw` output. */
export function parseRawChains(saved: string): RawChains {
  const chains = new Set<string>();
  let hasJump = false;
  for (const line of saved.split('\n')) {
    if (line.startsWith(':')) chains.add(line.slice(1).split(' ')[0] ?? '');
    else if (line === `-A PREROUTING -j ${IPTABLES_CHAIN}`) hasJump = true;
  }
  return { chains, hasJump };
}

/**
 * The lines that refill PORTCULLIS: `-p tcp -m multiport --dports PORTS`
 * followed by each of `matches` (`-j PORTCULLIS-ADDR`, `-m set --match-set
 * portcullis4 src -j DROP`) for each group of ports, and the PREROUTING jump
 * when `hasJump` is false.
 */
export function renderPortcullisChain(ports: readonly number[], matches: readonly string[], hasJump: boolean): string[] {
  // Declaring an existing chain in `iptables-restore --noflush` flushes it: PORTCULLIS is refilled.
  const lines = [`:${IPTABLES_CHAIN} - [0:0]`];
  for (const group of multiportGroups(ports)) {
    for (const match of matches) lines.push(`-A ${IPTABLES_CHAIN} -p tcp -m multiport --dports ${group} ${match}`);
  }
  // First in PREROUTING, so no earlier rule accepts a banned source.
  if (!hasJump) lines.push(`-I PREROUTING 1 -j ${IPTABLES_CHAIN}`);
  return lines;
}

/** Applies `lines` to the raw table of one family in one `ip(6)tables-restore --noflush` transaction. */
export async function restoreRaw(runner: CommandRunner, family: 4 | 6, lines: readonly string[]): Promise<void> {
  await runner.run(IPTABLES_TOOLS[family].restore, ['--noflush'], { input: renderRawRestore(lines), timeoutMs: RESTORE_TIMEOUT_MS });
}

/** The restore input for the raw table. Lines are ours (validated targets, fixed chain names); a line break inside one would be a bug, so it throws. */
export function renderRawRestore(lines: readonly string[]): string {
  for (const line of lines) {
    if (/[\r\n]/.test(line)) throw new RangeError(`restore line contains a line break: ${JSON.stringify(line)}`);
  }
  return ['*raw', ...lines, 'COMMIT', ''].join('\n');
}

/** Ports as `--dports` lists of at most 15 (xt_multiport's limit), e.g. `['80,443']`. */
export function multiportGroups(ports: readonly number[]): string[] {
  const groups: string[] = [];
  for (let start = 0; start < ports.length; start += MULTIPORT_MAX) {
    const group = ports.slice(start, start + MULTIPORT_MAX);
    for (const port of group) validatePort(port);
    groups.push(group.join(','));
  }
  return groups;
}
