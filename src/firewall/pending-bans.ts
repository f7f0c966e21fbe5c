/*
 * The queue behind `add`/`remove` of every kernel backend: each call is
 * validated at once (so a bad target throws at the caller, before anything
 * runs) and the last call for a target wins, so `commit` sends one operation
 * per target. Commands of one backend run one at a time, in call order.
 */
import type { KernelBan } from './ban-backend.js';
import { validateBan, type ValidBan } from './ban-validation.js';
import { parseTarget, type ParsedTarget } from '../escalation/ban-target.js';

/** One queued change: ban (or re-ban with a new timeout), or lift. */
export type PendingChange =
  | { readonly kind: 'add'; readonly ban: ValidBan }
  | { readonly kind: 'remove'; readonly target: string; readonly parsed: ParsedTarget };

/**
 * A queued lift as a ban of its target, validated again: renderers check
 * every element right where they write it. The timeout is a placeholder
 * (1 s) that no lift writes.
 */
export function validateLift(change: Extract<PendingChange, { kind: 'remove' }>): ValidBan {
  return validateBan({ target: change.target, family: change.parsed.family, scope: change.parsed.isPrefix ? 'prefix' : 'ip', timeoutSec: 1 });
}

/**
 * Changes queued since the last `take()`, at most `limit` distinct targets
 * (a caller that never commits gets an error, not an unbounded Map).
 */
export class PendingBans {
  #changes = new Map<string, PendingChange>();
  readonly #limit: number;

  /** @param limit Most distinct targets queued at once; backends pass 2 × maxBans (every ban replaced, every old one lifted). */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Validates and queues a ban. Throws a RangeError for an invalid ban or a full queue. */
  add(ban: KernelBan): void {
    const valid = validateBan(ban);
    this.#put(valid.target, { kind: 'add', ban: valid });
  }

  /** Validates and queues a lift. Throws a RangeError for an invalid target or a full queue. */
  remove(target: string): void {
    const parsed = parseTarget(target);
    this.#put(target, { kind: 'remove', target, parsed });
  }

  /** Number of targets queued. */
  get size(): number {
    return this.#changes.size;
  }

  /** Returns everything queued and empties the queue: calls made meanwhile go to the next batch. */
  take(): PendingChange[] {
    const changes = [...this.#changes.values()];
    this.#changes = new Map();
    return changes;
  }

  #put(target: string, change: PendingChange): void {
    if (!this.#changes.has(target) && this.#changes.size >= this.#limit) {
      throw new RangeError(`${this.#limit} ban changes are queued without a commit(); commit before queueing more`);
    }
    // Delete first so the Map's order is the order of the last calls.
    this.#changes.delete(target);
    this.#changes.set(target, change);
  }
}

/**
 * Runs async jobs one at a time in call order: two batches of one backend
 * never interleave, so a ban and its lift reach the kernel in the order they
 * were committed. A failed job does not stop the ones after it.
 */
export class CommandSequence {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(job: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(job, job);
    this.#tail = result.catch(() => {});
    return result;
  }
}
