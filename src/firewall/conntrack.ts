/*
 * Flushing connection-tracking entries of banned sources, shared by the
 * kernel backends. Their rules drop every packet in the raw table, before
 * conntrack, so established flows stop without this; it frees the entries
 * early and stops flows that other rules would accept as ESTABLISHED.
 *
 * A flood earns hundreds of bans a second. One `conntrack` process per ban,
 * all at once, would fork that many processes; instead the sources are
 * queued and handed to `conntrack -R FILE` (conntrack-tools ≥ 1.4.6 reads
 * one command per line from a file) in batches, with at most a few processes
 * at a time. An older conntrack without `-R` gets one `conntrack -D` per source,
 * still within the same bound.
 */
import ipaddr from 'ipaddr.js';
import type { KernelBan } from './ban-backend.js';
import { validateBan } from './ban-validation.js';
import { BackendUnavailableError, FirewallCommandError } from '../core/errors.js';
import type { CommandRunner } from './command-runner.js';

/** Limits of a ConntrackFlusher. */
export interface ConntrackFlusherOptions {
  /** Most sources handed to one conntrack process. @default 256 */
  readonly batchSize?: number;
  /** Most conntrack processes running at once. @default 2 */
  readonly concurrency?: number;
  /**
   * Most sources waiting for a process; beyond it a flush is refused (the
   * ban itself is in force: the kernel drops the packets before conntrack).
   * @default 65_536
   */
  readonly maxQueued?: number;
}

/** @default 256 sources per process: one `conntrack -R -` of 256 lines takes a few milliseconds. */
export const CONNTRACK_BATCH_SIZE = 256;
/** @default 2 processes: the flush is housekeeping, it must not compete with the proxy for the CPU. */
export const CONNTRACK_CONCURRENCY = 2;
/** @default 65,536 queued sources: well above a flood's bans per second times a command's duration. */
export const CONNTRACK_MAX_QUEUED = 65_536;

interface QueuedFlush {
  readonly target: string;
  /** The `conntrack -D` arguments for this source. */
  readonly args: readonly string[];
  readonly settle: Array<(error: unknown) => void>;
}

/**
 * Flushes the conntrack entries of banned sources in batches, with bounded
 * concurrency, for one backend. Sources asked for while they wait are
 * flushed once.
 */
export class ConntrackFlusher {
  readonly #runner: CommandRunner;
  readonly #batchSize: number;
  readonly #concurrency: number;
  readonly #maxQueued: number;
  /** Waiting sources by target, in arrival order. */
  #queue = new Map<string, QueuedFlush>();
  #running = 0;
  /** Set once conntrack is found missing: then nothing is run again. */
  #missing = false;
  /** Set once conntrack refuses `-R`: then one process per source. */
  #noLoadFile = false;

  constructor(runner: CommandRunner, options: ConntrackFlusherOptions = {}) {
    this.#runner = runner;
    this.#batchSize = positive(options.batchSize ?? CONNTRACK_BATCH_SIZE, 'batchSize');
    this.#concurrency = positive(options.concurrency ?? CONNTRACK_CONCURRENCY, 'concurrency');
    this.#maxQueued = positive(options.maxQueued ?? CONNTRACK_MAX_QUEUED, 'maxQueued');
  }

  /**
   * Deletes the conntrack entries whose source is each ban's address or lies
   * in its prefix. Resolves once all of them were flushed, and without doing
   * anything when the conntrack tool is not installed (looked for once).
   * Rejects with the first FirewallCommandError of a batch holding one of
   * them, and with a RangeError for an invalid target (before anything
   * runs). A source with no entries is not a failure.
   */
  forget(bans: readonly KernelBan[]): Promise<void> {
    if (this.#missing || bans.length === 0) return Promise.resolve();
    let flushes: Array<{ target: string; args: string[] }>;
    try {
      flushes = bans.map((ban) => ({ target: ban.target, args: deleteArgs(ban) }));
    } catch (error) {
      return Promise.reject(error);
    }
    const waits: Array<Promise<void>> = [];
    for (const { target, args } of flushes) {
      let queued = this.#queue.get(target);
      if (queued === undefined) {
        if (this.#queue.size >= this.#maxQueued) {
          waits.push(Promise.reject(new FirewallCommandError('conntrack', ['-R'], `${this.#maxQueued} conntrack flushes are queued already; ${target} is not flushed (its ban is in force)`)));
          continue;
        }
        queued = { target, args, settle: [] };
        this.#queue.set(target, queued);
      }
      const entry = queued;
      waits.push(new Promise<void>((resolve, reject) => entry.settle.push((error) => (error === null ? resolve() : reject(error)))));
    }
    this.#pump();
    return Promise.all(waits).then(() => {});
  }

  #pump(): void {
    while (this.#running < this.#concurrency && this.#queue.size > 0) {
      const batch: QueuedFlush[] = [];
      for (const [target, queued] of this.#queue) {
        if (batch.length >= this.#batchSize) break;
        batch.push(queued);
        this.#queue.delete(target);
      }
      this.#running += 1;
      void this.#run(batch).then((error) => {
        this.#running -= 1;
        for (const queued of batch) for (const settle of queued.settle) settle(error);
        this.#pump();
      });
    }
  }

  /** Runs one batch; resolves with null or the error its sources get. */
  async #run(batch: readonly QueuedFlush[]): Promise<unknown> {
    try {
      if (!this.#noLoadFile) {
        try {
          const input = batch.map((queued) => `${queued.args.join(' ')}\n`).join('');
          await this.#runner.runWithInputFile('conntrack', (path) => ['-R', path], input);
          return null;
        } catch (error) {
          if (!(error instanceof FirewallCommandError) || !/invalid option|unrecognized option|unknown option/i.test(error.stderr)) throw error;
          this.#noLoadFile = true;
        }
      }
      for (const queued of batch) await this.#deleteOne(queued.args);
      return null;
    } catch (error) {
      if (error instanceof BackendUnavailableError) {
        this.#missing = true;
        for (const [, queued] of this.#queue) for (const settle of queued.settle) settle(null);
        this.#queue = new Map();
        return null;
      }
      return error;
    }
  }

  async #deleteOne(args: readonly string[]): Promise<void> {
    try {
      await this.#runner.run('conntrack', args);
    } catch (error) {
      // conntrack -D exits 1 when nothing matched: not a failure.
      if (error instanceof FirewallCommandError && /\b0 flow entries have been deleted/.test(error.stderr)) return;
      throw error;
    }
  }
}

/**
 * The `conntrack -D` arguments deleting the entries whose source is the
 * ban's address or lies in its prefix (`-D -f ipv4 -s NET --mask-src MASK`).
 * The timeout plays no part here (and may have run out by now): only the
 * target is checked. Throws a RangeError for an invalid target.
 */
export function deleteArgs(ban: KernelBan): string[] {
  const valid = validateBan({ target: ban.target, family: ban.family, scope: ban.scope, timeoutSec: 1 });
  const args = ['-D', '-f', valid.family === 4 ? 'ipv4' : 'ipv6', '-s', valid.address];
  if (valid.scope === 'prefix') {
    const mask = valid.family === 4
      ? ipaddr.IPv4.subnetMaskFromPrefixLength(valid.prefixLength).toString()
      : ipaddr.IPv6.subnetMaskFromPrefixLength(valid.prefixLength).toRFC5952String();
    args.push('--mask-src', mask);
  }
  return args;
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive whole number, got ${value}`);
  return value;
}
