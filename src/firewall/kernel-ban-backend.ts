/*
 * What the kernel backends (nftables, ipset, iptables) share, so each of
 * them keeps only its commands and their syntax: options checked once, a
 * queue behind add/remove (pending-bans.ts), one command sequence so two
 * batches never interleave, a failed batch split and retried
 * (batch-splitting.ts), connection flushing (conntrack.ts), and the
 * validation of a replaceAll before anything runs.
 *
 * A backend implements four steps, each run inside the sequence:
 * setUp (init), applyPart (a part of a commit), planReplaceAll (what
 * replaceAll will do, checked before it is queued) and readTargets (list).
 */
import type { BanBackend, BanBackendOptions, KernelBan } from './ban-backend.js';
import { applyInParts } from './batch-splitting.js';
import { validateBackendOptions, validateBan, type ValidBackendOptions, type ValidBan } from './ban-validation.js';
import { CommandRunner } from './command-runner.js';
import { ConntrackFlusher } from './conntrack.js';
import { CommandSequence, PendingBans, type PendingChange } from './pending-bans.js';
import { FirewallBatchError } from '../core/errors.js';

/** The base of every backend that writes bans into the kernel; see the header. */
export abstract class KernelBanBackend implements BanBackend {
  abstract readonly name: string;
  protected readonly options: ValidBackendOptions;
  protected readonly runner: CommandRunner;
  readonly #pending: PendingBans;
  readonly #sequence = new CommandSequence();
  readonly #conntrack: ConntrackFlusher;

  /** Throws a RangeError for invalid options (ports 1–65535, maxBans ≥ 1). */
  constructor(options: BanBackendOptions, runner: CommandRunner = new CommandRunner()) {
    this.options = validateBackendOptions(options);
    this.runner = runner;
    // Room for every ban replaced and every old one lifted in one batch.
    this.#pending = new PendingBans(2 * this.options.maxBans);
    this.#conntrack = new ConntrackFlusher(runner);
  }

  /** Runs the backend's setUp in the sequence (see BanBackend.init). */
  init(): Promise<void> {
    return this.#sequence.run(() => this.setUp());
  }

  /** Validates and queues a ban; throws a RangeError for an invalid one. */
  add(ban: KernelBan): void {
    this.#pending.add(ban);
  }

  /** Validates and queues a lift; throws a RangeError for an invalid target. */
  remove(target: string): void {
    this.#pending.remove(target);
  }

  /**
   * Applies the queue with applyPart, splitting a failed batch and retrying
   * its parts (batch-splitting.ts): the changes the kernel accepts are
   * applied, and the commit rejects with a FirewallBatchError naming the
   * refused ones. Resolves at once when nothing is queued.
   */
  commit(): Promise<void> {
    const changes = this.#pending.take();
    if (changes.length === 0) return Promise.resolve();
    return this.#sequence.run(async () => {
      await this.beforeCommit();
      const refused = await applyInParts(changes, (part) => this.applyPart(part));
      if (refused.length > 0) throw new FirewallBatchError(refused, changes.length);
    });
  }

  /** Checks the bans with planReplaceAll (rejecting before anything runs), then runs the plan in the sequence. */
  replaceAll(bans: readonly KernelBan[]): Promise<void> {
    let plan: () => Promise<void>;
    try {
      plan = this.planReplaceAll(bans);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#sequence.run(plan);
  }

  /** Runs readTargets in the sequence. */
  list(): Promise<string[]> {
    return this.#sequence.run(() => this.readTargets());
  }

  /** Hands the sources to this backend's conntrack flusher (see BanBackend.forgetConnections). */
  forgetConnections(bans: readonly KernelBan[]): Promise<void> {
    return this.#conntrack.forget(bans);
  }

  /** Creates the backend's tables, sets and chains if missing; idempotent. */
  protected abstract setUp(): Promise<void>;

  /** Runs in the sequence before a commit's first part; nothing by default. */
  protected async beforeCommit(): Promise<void> {}

  /**
   * Applies one part of a commit. Must be idempotent: after a failure a part
   * is split and its halves applied again. A FirewallCommandError makes the
   * part split; any other error rejects the commit.
   */
  protected abstract applyPart(part: readonly PendingChange[]): Promise<void>;

  /**
   * Validates and renders what replaceAll writes, throwing a RangeError (or
   * FirewallCommandError) before anything runs, and returns the job that
   * writes it.
   */
  protected abstract planReplaceAll(bans: readonly KernelBan[]): () => Promise<void>;

  /** Targets the kernel holds now among what this backend owns. */
  protected abstract readTargets(): Promise<string[]>;
}

/**
 * Validates every ban and keeps one per target, the one with the longest
 * timeout (the kernel holds one element per target; the longer timeout errs
 * on the side of the ban), in the order each target first appears. Throws a
 * RangeError for an invalid ban.
 */
export function longestBans(bans: readonly KernelBan[]): ValidBan[] {
  const byTarget = new Map<string, ValidBan>();
  for (const ban of bans) {
    const valid = validateBan(ban);
    const previous = byTarget.get(valid.target);
    if (previous === undefined || previous.timeoutSec < valid.timeoutSec) byTarget.set(valid.target, valid);
  }
  return [...byTarget.values()];
}
