/*
 * A failed batch is split and retried, so one element the kernel refuses
 * cannot lose the others. `nft -f` aborts a whole transaction on one bad
 * element, `ipset restore` stops at the first failing line, and a backend's
 * own cap refuses a whole batch; in each case the other bans of the batch
 * are as good as they were.
 *
 * The batch is tried whole first (the normal case costs one command). A
 * failed part is split, lifts from bans first (a lift frees room in a full
 * set) and then in halves, down to single changes, which are refused. One
 * bad change among n costs about 2·log2(n) more commands; a budget of failed
 * commands bounds the worst case (every change bad, or a broken kernel).
 *
 * Parts may be applied again after a failure: every backend's apply must be
 * idempotent (nft transactions apply nothing on failure; `ipset restore
 * -exist` and the iptables backend, which reads what the kernel holds, are
 * idempotent).
 */
import { FirewallCommandError, type RefusedBanChange } from '../core/errors.js';
import type { PendingChange } from './pending-bans.js';

/**
 * Most failed commands one commit spends on splitting before the changes it
 * has not tried yet are refused untried. A judgement call: 64 finds about
 * four bad changes in a batch of 10,000, and bounds a commit against a
 * broken kernel to ~130 commands.
 */
export const MAX_FAILED_PARTS = 64;

/**
 * Applies `changes` with `apply`, splitting failed parts (see the header),
 * and resolves with the changes that were refused, in batch order (empty
 * when all were applied). Only a FirewallCommandError is split on; a command
 * that timed out is not split (it says nothing about the elements) and
 * refuses its whole part. Any other error rejects at once: it is a bug or an
 * unusable backend, not a bad element.
 */
export async function applyInParts(
  changes: readonly PendingChange[],
  apply: (part: readonly PendingChange[]) => Promise<void>,
  maxFailedParts: number = MAX_FAILED_PARTS,
): Promise<RefusedBanChange[]> {
  const refused: RefusedBanChange[] = [];
  const lifts = changes.filter((change) => change.kind === 'remove');
  const bans = changes.filter((change) => change.kind === 'add');
  // Depth first, first half on top: parts are tried, and refusals listed, in batch order.
  const stack: Array<readonly PendingChange[]> = [[...lifts, ...bans]];
  let failures = 0;
  let lastError: FirewallCommandError | null = null;
  while (stack.length > 0) {
    const part = stack.pop() as readonly PendingChange[];
    if (part.length === 0) continue;
    if (lastError !== null && failures >= maxFailedParts) {
      const untried = new FirewallCommandError(lastError.command, lastError.args, `not tried: ${failures} commands of this commit failed already (last: ${lastError.stderr.trim().split('\n')[0] ?? ''})`, { cause: lastError });
      for (const change of part) refused.push(refusal(change, untried));
      continue;
    }
    try {
      await apply(part);
    } catch (error) {
      if (!(error instanceof FirewallCommandError)) throw error;
      failures += 1;
      lastError = error;
      if (part.length === 1 || timedOut(error)) {
        for (const change of part) refused.push(refusal(change, error));
        continue;
      }
      const [first, second] = split(part);
      stack.push(second, first);
    }
  }
  return refused;
}

/** Lifts apart from bans when the part holds both, else two halves. */
function split(part: readonly PendingChange[]): [readonly PendingChange[], readonly PendingChange[]] {
  const firstBan = part.findIndex((change) => change.kind === 'add');
  const at = firstBan > 0 ? firstBan : Math.ceil(part.length / 2);
  return [part.slice(0, at), part.slice(at)];
}

function timedOut(error: FirewallCommandError): boolean {
  // runCommand kills a stuck child with SIGKILL; execFile then reports killed: true.
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    if ((cause as { killed?: unknown }).killed === true) return true;
  }
  return false;
}

function refusal(change: PendingChange, error: FirewallCommandError): RefusedBanChange {
  return change.kind === 'add' ? { target: change.ban.target, kind: 'add', error } : { target: change.target, kind: 'remove', error };
}
