import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from 'pino';
import type { TimerHandle, Timers } from '../core/timers.js';

/** Directories to watch, each with the file names in it that matter (`null`: any name, for a directory whose entries come and go). */
export type WatchedDirectories = ReadonlyMap<string, ReadonlySet<string> | null>;

export interface DirectoryWatcherOptions {
  readonly logger: Logger;
  readonly timers: Timers;
  /** Quiet time after the last event before `onChange`: certbot swaps four symlinks one after the other. */
  readonly debounceMs: number;
  readonly onChange: () => void;
}

/**
 * Watches directories rather than files: certbot renews by pointing the
 * symlinks of live/NAME/ at new files in archive/NAME/, and editors replace a
 * file by renaming a new one over it; a watch on the old file would see
 * neither. Events are debounced into one `onChange`.
 */
export class DirectoryWatcher {
  readonly #options: DirectoryWatcherOptions;
  readonly #watchers = new Map<string, { readonly watcher: FSWatcher; names: ReadonlySet<string> | null }>();
  #debounce: TimerHandle = null;
  #closed = false;

  constructor(options: DirectoryWatcherOptions) {
    this.#options = options;
  }

  /** Watches exactly `directories` from now on: new ones are added, ones no longer listed are let go. A directory that cannot be watched is logged and retried at the next call. */
  update(directories: WatchedDirectories): void {
    if (this.#closed) return;
    for (const [dir, entry] of this.#watchers) {
      if (!directories.has(dir)) {
        entry.watcher.close();
        this.#watchers.delete(dir);
      }
    }
    for (const [dir, names] of directories) {
      const existing = this.#watchers.get(dir);
      if (existing !== undefined) {
        existing.names = names;
        continue;
      }
      try {
        const watcher = watch(dir, { persistent: false }, (_event, changed) => {
          const current = this.#watchers.get(dir)?.names;
          if (current === null || changed === null || current?.has(changed)) this.#schedule();
        });
        watcher.on('error', (error) => {
          // A watched directory that is removed (certbot delete) ends its watch; the reload that follows drops or re-adds it.
          this.#options.logger.warn({ err: error, dir }, 'stopped watching a certificate directory; SIGHUP and `portcullis reload` still reload certificates');
          watcher.close();
          if (this.#watchers.get(dir)?.watcher === watcher) this.#watchers.delete(dir);
          this.#schedule();
        });
        this.#watchers.set(dir, { watcher, names });
      } catch (error) {
        this.#options.logger.warn({ err: error, dir }, 'cannot watch a certificate directory for renewals; reload with SIGHUP or `portcullis reload` after renewing (certbot --deploy-hook)');
      }
    }
  }

  /** Directories watched now. */
  get watched(): string[] {
    return [...this.#watchers.keys()];
  }

  /** Stops every watch and any pending `onChange`. */
  close(): void {
    this.#closed = true;
    if (this.#debounce !== null) this.#options.timers.clearTimeout(this.#debounce);
    this.#debounce = null;
    for (const { watcher } of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
  }

  #schedule(): void {
    if (this.#closed) return;
    if (this.#debounce !== null) this.#options.timers.clearTimeout(this.#debounce);
    this.#debounce = this.#options.timers.setTimeout(() => {
      this.#debounce = null;
      this.#options.onChange();
    }, this.#options.debounceMs);
  }
}
