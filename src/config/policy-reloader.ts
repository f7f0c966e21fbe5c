import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError, formatConfigProblem } from '../core/errors.js';
import { systemTimers, type TimerHandle, type Timers } from '../core/timers.js';
import { loadPolicyFile } from './policy-loader.js';
import type { PolicyConfig } from './schema.js';

/** The result of one reload: applied (with the keys that wait for a restart), or rejected with the problems. */
export type ReloadResult = { readonly ok: true; readonly restartNeeded: readonly string[] } | { readonly ok: false; readonly problems: readonly string[] };

export interface PolicyReloaderOptions {
  readonly file: string;
  readonly logger: Logger;
  /** Swaps the running policy; returns the restart-only keys the new one changed (they keep their running values). */
  apply(config: PolicyConfig): readonly string[];
  /** Told of each reload's result (metrics). */
  onResult(ok: boolean): void;
  /** Quiet time after the last change event before reloading: editors write a file in several steps. */
  readonly debounceMs?: number;
  /** @default systemTimers */
  readonly timers?: Timers;
}

/**
 * Reloads the policy file on request (SIGHUP, `POST /reload`) and when it
 * changes on disk. The new file is validated in full before anything is
 * swapped: an invalid file is logged with FILE:LINE:COL, counted, and the
 * running policy stays. Reloads never overlap; one asked for during another
 * runs after it, so the last write always wins.
 */
export class PolicyReloader {
  readonly #options: PolicyReloaderOptions;
  readonly #timers: Timers;
  #watcher: FSWatcher | null = null;
  #debounce: TimerHandle = null;
  /** The last reload queued: each new one runs after it. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: PolicyReloaderOptions) {
    this.#options = options;
    this.#timers = options.timers ?? systemTimers;
  }

  /**
   * Watches the file's directory, not the file: editors and config managers
   * replace the file by renaming a new one over it, which a watch on the old
   * inode would never see.
   */
  watch(): void {
    const { file } = this.#options;
    const name = basename(file);
    try {
      this.#watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
        if (changed === null || changed === name) this.#schedule();
      });
      this.#watcher.on('error', (error) => this.#options.logger.warn({ err: error, policy: file }, 'stopped watching the policy file; SIGHUP still reloads it'));
    } catch (error) {
      this.#options.logger.warn({ err: error, policy: file }, 'cannot watch the policy file for changes; reload it with SIGHUP or `portcullis reload`');
    }
  }

  /** Reloads now (after any reload in progress). */
  reload(trigger: string): Promise<ReloadResult> {
    const result = this.#queue.then(() => this.#reloadOnce(trigger));
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /** Stops watching. */
  close(): void {
    if (this.#debounce !== null) this.#timers.clearTimeout(this.#debounce);
    this.#watcher?.close();
    this.#watcher = null;
  }

  #schedule(): void {
    if (this.#debounce !== null) this.#timers.clearTimeout(this.#debounce);
    this.#debounce = this.#timers.setTimeout(() => {
      this.#debounce = null;
      void this.reload('file changed');
    }, this.#options.debounceMs ?? 300);
  }

  async #reloadOnce(trigger: string): Promise<ReloadResult> {
    const { file, logger } = this.#options;
    let config: PolicyConfig;
    try {
      config = await loadPolicyFile(file);
    } catch (error) {
      const problems = error instanceof ConfigError ? error.problems.map(formatConfigProblem) : [(error as Error).message];
      this.#options.onResult(false);
      logger.error({ policy: file, trigger, problems }, `policy reload rejected, the previous policy stays in force:\n${problems.join('\n')}`);
      return { ok: false, problems };
    }
    let restartNeeded: readonly string[];
    try {
      restartNeeded = this.#options.apply(config);
    } catch (error) {
      // A valid file that cannot be applied is a bug; the old policy is still whole (apply swaps last).
      this.#options.onResult(false);
      logger.error({ err: error, policy: file, trigger }, 'policy reload failed while applying it; the previous policy stays in force');
      return { ok: false, problems: [(error as Error).message] };
    }
    this.#options.onResult(true);
    logger.info({ policy: file, trigger, limits: config.limits.length, blocks: config.block.length }, 'policy reloaded');
    if (restartNeeded.length > 0) {
      logger.warn({ policy: file, keys: restartNeeded }, `policy reloaded, but ${restartNeeded.join(', ')} only change at restart: the running values stay until then`);
    }
    return { ok: true, restartNeeded };
  }
}
