import type { Logger } from 'pino';
import type { Clock, WallClock } from '../core/clock.js';
import type { Ban } from './ban.js';
import type { BanLedger } from './ban-ledger.js';
import type { BanState, BanStateFile, LoadedBanState, SkippedEntry } from './ban-state-file.js';

/**
 * Skipped entries logged one line each; the rest are only counted in the
 * summary. A file of a million bad entries must not become a million log lines.
 */
const MAX_SKIPPED_LINES = 20;

/**
 * Keeps the state file in step with the ledger: every change schedules a
 * write, and writes coalesce (one in flight, at most one more queued), so a
 * ban is on disk within one write's time however many arrive at once.
 */
export class BanPersistence {
  readonly #file: BanStateFile;
  readonly #ledger: BanLedger;
  readonly #clock: Clock;
  readonly #wall: WallClock;
  readonly #logger: Logger;
  #writing: Promise<void> | null = null;
  #dirty = false;
  #unsubscribe: (() => void) | null = null;

  constructor(file: BanStateFile, ledger: BanLedger, clock: Clock, wall: WallClock, logger: Logger) {
    this.#file = file;
    this.#ledger = ledger;
    this.#clock = clock;
    this.#wall = wall;
    this.#logger = logger;
  }

  /**
   * Loads the file into the ledger, dropping expired bans (their history is
   * kept), and starts following the ledger. Returns how many bans were restored.
   * A damaged file is logged (it has been moved aside) and the ledger starts empty.
   * A bad entry (see checkSavedBan) is skipped and logged with its list, index,
   * target and why (PC_ERR_STATE_ENTRY); every good entry is still restored.
   */
  async restore(): Promise<number> {
    let loaded: LoadedBanState | null = null;
    try {
      loaded = await this.#file.load(this.#wall.epochMs());
    } catch (error) {
      this.#logger.error({ err: error, code: (error as { code?: string }).code }, (error as Error).message);
    }
    let restored = 0;
    if (loaded !== null) {
      const { state } = loaded;
      let full = 0;
      const toMono = this.#toMonotonic();
      for (const entry of state.history) this.#ledger.restoreHistory(entry.target, { bans: entry.bans, lastEndMs: toMono(entry.lastEndAt) });
      const nowMs = this.#clock.nowMs();
      for (const saved of state.bans) {
        const ban: Ban = { ...saved, startedMs: toMono(saved.startedAt), expiresMs: toMono(saved.expiresAt) };
        if (ban.expiresMs <= nowMs) continue;
        // Restoring is not a new ban: its history entry came with the file.
        if (this.#ledger.add(ban)) restored++;
        else full++;
      }
      this.#report(loaded, restored, full);
    }
    this.#unsubscribe = this.#ledger.onChange((change) => {
      if (change.kind !== 'full') void this.schedule();
    });
    // Write once now: an unwritable state_dir is reported at start, not at the first ban.
    await this.schedule();
    return restored;
  }

  /** Logs what a restore left out: each skipped entry (up to MAX_SKIPPED_LINES), then one summary. */
  #report(loaded: LoadedBanState, restored: number, full: number): void {
    const { skipped, keptAt } = loaded;
    const path = this.#file.path;
    for (const entry of skipped.slice(0, MAX_SKIPPED_LINES)) this.#logSkipped(entry, path);
    if (skipped.length > 0) {
      const more = skipped.length > MAX_SKIPPED_LINES ? ` (the first ${MAX_SKIPPED_LINES} are logged above)` : '';
      const kept = keptAt === null ? 'could not keep a copy of the file' : `the file as it was is kept at ${keptAt}`;
      this.#logger.warn(
        { code: 'PC_ERR_STATE_ENTRY', path, skipped: skipped.length, restored, keptAt },
        `skipped ${skipped.length} bad entries of ${path}${more} and restored the rest; ${kept}`,
      );
    }
    if (full > 0) {
      this.#logger.error({ path, notRestored: full, restored }, `${full} bans of ${path} were not restored: escalation.max_bans bans were already active; raise it`);
    }
  }

  #logSkipped(entry: SkippedEntry, path: string): void {
    const which = `${entry.list}[${entry.index}]${entry.target === null ? '' : ` (target ${JSON.stringify(entry.target)})`}`;
    this.#logger.warn({ code: 'PC_ERR_STATE_ENTRY', path, list: entry.list, index: entry.index, target: entry.target, why: entry.why }, `skipped ${which} of ${path}: ${entry.why}`);
  }

  /** Asks for a write; resolves once the ledger as of now is on disk. */
  schedule(): Promise<void> {
    this.#dirty = true;
    if (this.#writing === null) this.#writing = this.#drain();
    return this.#writing;
  }

  /** Stops following the ledger and waits for the last write. */
  async close(): Promise<void> {
    this.#unsubscribe?.();
    await this.schedule();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#dirty) {
        this.#dirty = false;
        try {
          await this.#file.save(this.#snapshot());
        } catch (error) {
          // Never a crash: bans stay enforced; they would only not survive a restart.
          this.#logger.error({ err: error, path: this.#file.path }, 'cannot write the ban state file: bans will not survive a restart until this is fixed');
        }
      }
    } finally {
      this.#writing = null;
    }
  }

  #snapshot(): BanState {
    const toEpoch = this.#toEpoch();
    return {
      version: 1,
      savedAt: this.#wall.epochMs(),
      bans: this.#ledger.active().map(({ startedMs, expiresMs, ...rest }) => ({ ...rest, startedAt: toEpoch(startedMs), expiresAt: toEpoch(expiresMs) })),
      history: this.#ledger.histories().map(([target, history]) => ({ target, bans: history.bans, lastEndAt: toEpoch(history.lastEndMs) })),
    };
  }

  #toEpoch(): (monoMs: number) => number {
    const offset = this.#wall.epochMs() - this.#clock.nowMs();
    return (monoMs) => Math.round(monoMs + offset);
  }

  #toMonotonic(): (epochMs: number) => number {
    const offset = this.#clock.nowMs() - this.#wall.epochMs();
    return (epochMs) => epochMs + offset;
  }
}
