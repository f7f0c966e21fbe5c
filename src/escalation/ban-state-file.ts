import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { PortcullisError } from '../core/errors.js';
import { checkSavedBan, checkSavedHistory, entryTarget, type SavedBan, type SavedHistory } from './ban-state-entry.js';

/**
 * The state file: active bans and ban history, with wall-clock times (epoch
 * ms) because it outlives the process whose monotonic clock measured them.
 * Written atomically (temp file, fsync, rename, fsync of the directory), so a
 * crash leaves either the old file or the new one, never half of one.
 *
 * Only the frame is checked here as a whole: a file whose frame is wrong is
 * not ours. The entries inside it are checked one by one (ban-state-entry.ts),
 * so one bad entry costs only itself.
 */
const stateFrame = z.strictObject({
  version: z.literal(1),
  savedAt: z.number(),
  bans: z.array(z.unknown()),
  history: z.array(z.unknown()),
});

/** What the file holds, as written. */
export interface BanState {
  readonly version: 1;
  readonly savedAt: number;
  readonly bans: readonly SavedBan[];
  readonly history: readonly SavedHistory[];
}

export type { SavedBan, SavedHistory };

/** An entry of the file that was not restored, and why. */
export interface SkippedEntry {
  readonly list: 'bans' | 'history';
  /** Position in its list, from 0. */
  readonly index: number;
  /** The entry's target when it has one that is text (cut to 64 characters), else null. */
  readonly target: string | null;
  readonly why: string;
}

/** What `load` read: the good entries, the skipped ones, and where a copy of the file was kept if any were skipped. */
export interface LoadedBanState {
  readonly state: BanState;
  readonly skipped: readonly SkippedEntry[];
  /** A copy of the file as it was, kept for a person when entries were skipped; null when none were (or the copy failed). */
  readonly keptAt: string | null;
}

/** File name inside `state_dir`. */
export const STATE_FILE_NAME = 'bans.json';

/** Reads and writes one state file. */
export class BanStateFile {
  constructor(readonly path: string) {}

  /** The file for `stateDir`. */
  static in(stateDir: string): BanStateFile {
    return new BanStateFile(join(stateDir, STATE_FILE_NAME));
  }

  /**
   * Reads the state; null when there is no file yet. A file that is truncated
   * or not ours is moved aside (`bans.json.corrupt-<time>`, kept for a person
   * to look at) and reported with PC_ERR_STATE_FILE: the caller logs it and
   * starts empty, rather than crash-looping on it. A file that is ours but
   * holds bad entries keeps its good ones: the bad ones are returned in
   * `skipped` and the file is copied to `bans.json.skipped-<time>`, since the
   * next save rewrites it without them. `nowEpochMs` names those copies.
   */
  async load(nowEpochMs: number): Promise<LoadedBanState | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new PortcullisError('PC_ERR_STATE_FILE', `cannot read ban state ${this.path}: ${(error as Error).message}`, { cause: error });
    }
    let problem: string;
    try {
      const parsed = stateFrame.safeParse(JSON.parse(text));
      if (parsed.success) return await this.#checkEntries(parsed.data, nowEpochMs);
      problem = parsed.error.issues[0]?.message ?? 'unexpected content';
    } catch (error) {
      problem = (error as Error).message;
    }
    const aside = `${this.path}.corrupt-${nowEpochMs}`;
    await rename(this.path, aside).catch(() => undefined);
    throw new PortcullisError('PC_ERR_STATE_FILE', `ban state ${this.path} is damaged (${problem}); moved it to ${aside} and starting without it`);
  }

  async #checkEntries(frame: z.infer<typeof stateFrame>, nowEpochMs: number): Promise<LoadedBanState> {
    const skipped: SkippedEntry[] = [];
    const bans = keepGood(frame.bans, 'bans', (value) => checkSavedBan(value, nowEpochMs), skipped);
    const history = keepGood(frame.history, 'history', checkSavedHistory, skipped);
    let keptAt: string | null = null;
    if (skipped.length > 0) {
      const copy = `${this.path}.skipped-${nowEpochMs}`;
      // Best effort: the copy is for a person; failing to make it must not stop the restore.
      keptAt = await copyFile(this.path, copy).then(
        () => copy,
        () => null,
      );
    }
    return { state: { version: 1, savedAt: frame.savedAt, bans, history }, skipped, keptAt };
  }

  /** Replaces the file with `state`, atomically and durably. */
  async save(state: BanState): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const temp = `${this.path}.${randomBytes(4).toString('hex')}.tmp`;
    const file = await open(temp, 'w', 0o600);
    try {
      await file.writeFile(JSON.stringify(state));
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, this.path);
    // The rename is only durable once the directory entry is on disk too.
    const directory = await open(dir, 'r');
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  }
}

/**
 * The entries of one list that pass `check`, each target once; the others go
 * to `skipped`. A second entry for the same target is skipped rather than
 * replacing the first: the file never holds one, so which of the two is right
 * cannot be known.
 */
function keepGood<T extends { readonly target: string }>(
  entries: readonly unknown[],
  list: SkippedEntry['list'],
  check: (value: unknown) => { ok: true; entry: T } | { ok: false; why: string },
  skipped: SkippedEntry[],
): T[] {
  const good: T[] = [];
  const firstIndex = new Map<string, number>();
  entries.forEach((value, index) => {
    const checked = check(value);
    if (!checked.ok) {
      skipped.push({ list, index, target: entryTarget(value), why: checked.why });
      return;
    }
    const earlier = firstIndex.get(checked.entry.target);
    if (earlier !== undefined) {
      skipped.push({ list, index, target: checked.entry.target, why: `same target as ${list}[${earlier}]` });
      return;
    }
    firstIndex.set(checked.entry.target, index);
    good.push(checked.entry);
  });
  return good;
}
