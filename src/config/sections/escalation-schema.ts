import { z } from 'zod';
import { describe, durationMs, expected, httpStatus, port, positiveInt } from './schema-values.js';

/* `escalation`: strikes, bans and the firewall backend that enforces them. */

/** Firewall backends; see src/firewall/. */
export const BAN_BACKENDS = ['nftables', 'ipset', 'iptables', 'none'] as const;

/** `escalation`: strikes that earn bans, ban lengths, and the backend that enforces them. */
export const escalation = z
  .strictObject({
    /** Off: refusals never lead to bans. */
    enabled: z.boolean({ error: (issue) => expected('true or false', issue.input) }).default(true),
    /** Refused requests (strikes) within `window` that earn a ban. A person who reads a 429 slows down; thirty in a minute is a program. */
    strikes: positiveInt().default(30),
    /** The sliding window strikes are counted in. */
    window: durationMs('60s').default(60_000),
    /** First ban of an address. */
    ban: durationMs('10m').default(600_000),
    /** Each further ban within `forget_after` lasts `factor` times the previous one. */
    factor: z
      .number({ error: (issue) => expected('a number ≥ 1', issue.input) })
      .min(1, { error: (issue) => `must be a number ≥ 1 (1 keeps every ban the same length), got ${describe(issue.input)}` })
      .default(2),
    /** Longest ban, however often an address comes back. */
    max_ban: durationMs('7d').default(604_800_000),
    /** A ban this long after the previous one ended starts again at `ban`. */
    forget_after: durationMs('30d').default(2_592_000_000),
    /** Banned addresses of one prefix at the same time that get the whole prefix banned; 0 never bans prefixes. */
    prefix_after: z
      .int({ error: (issue) => expected('a whole number ≥ 0', issue.input) })
      .min(0, { error: (issue) => `must be a whole number ≥ 0, got ${describe(issue.input)}` })
      .default(2),
    /** Where bans are enforced besides the proxy itself. */
    backend: z.enum(BAN_BACKENDS, { error: (issue) => `must be one of ${BAN_BACKENDS.join(', ')}, got ${describe(issue.input)}` }).default('none'),
    /** TCP ports the kernel drops banned sources on: portcullis's own listening port(s). */
    ports: z.array(port).min(1, { error: 'must list at least one port' }).default([80, 443]),
    /** Log and count the bans that would be made, enforce none. */
    dry_run: z.boolean({ error: (issue) => expected('true or false', issue.input) }).default(false),
    /** Status the proxy answers banned clients with (those it still sees, e.g. behind a CDN). */
    status: httpStatus.default(403),
    /** How long the proxy holds a banned client's request before answering it; 0s answers at once. */
    tarpit: durationMs('5s', 'none')
      .refine((ms) => ms <= 300_000, { error: 'must be at most 5m: a longer hold ties up sockets and slows a flooder no further' })
      .default(5_000),
    /** Connections held by the tarpit at once; past it, banned clients are answered at once. */
    tarpit_max: positiveInt().default(1_000),
    /** Most bans active at once (kernel set size); beyond it a ban is an error, logged and counted. ~300 bytes each. */
    max_bans: positiveInt().default(1_000_000),
    /** Addresses and prefixes whose ban history is remembered for growing ban times. ~150 bytes each. */
    max_history: positiveInt().default(1_000_000),
  })
  .superRefine((value, ctx) => {
    if (value.max_ban < value.ban) ctx.addIssue({ code: 'custom', message: 'must not be shorter than escalation.ban', path: ['max_ban'] });
  });
