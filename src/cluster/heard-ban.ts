import type { Ban } from '../escalation/ban.js';

/**
 * Two nodes that counted the same strikes (each hears the other's batch)
 * both ban, with the same number, ending this far apart at most: a strike
 * batch (100 ms), its delivery, and the conversion through each node's wall
 * clock. Within it the other's copy is this node's ban, not a longer one: a
 * judgement call, far below any ban length.
 */
const SAME_BAN_SLACK_MS = 2_000;

/**
 * The ban to add for `ban`, heard from another node, or null to keep what
 * this node holds (`mine`, its ban on the same target, if any). `dryRun` is
 * this node's `escalation.dry_run`.
 *
 * A dry-run ban comes from a node still in dry run (a rollout from dry run to
 * enforcing goes one node at a time). On a node that enforces, it would stand
 * in for this node's own decision: held, it stops this node's escalator from
 * banning the address (one ban at a time), and it would replace a ban this
 * node enforces with one that enforces nothing. The other way round, a node
 * in dry run records another node's automatic ban without enforcing it, as it
 * does its own; a manual ban is enforced even in dry run (an operator who
 * bans by hand means it).
 */
export function heardBanToAdd(ban: Ban, mine: Ban | null, dryRun: boolean): Ban | null {
  if (ban.dryRun && !dryRun) return null;
  const applied = dryRun && !ban.dryRun && ban.source !== 'manual' ? { ...ban, dryRun: true } : ban;
  if (mine !== null && (mine.expiresMs >= ban.expiresMs || isSameBan(mine, applied))) return null;
  return applied;
}

/** Whether `theirs` is the ban this node already holds as `mine`, made by another node from the same strikes (see SAME_BAN_SLACK_MS). */
function isSameBan(mine: Ban, theirs: Ban): boolean {
  return mine.nth === theirs.nth && mine.scope === theirs.scope && mine.dryRun === theirs.dryRun && theirs.expiresMs - mine.expiresMs <= SAME_BAN_SLACK_MS;
}
