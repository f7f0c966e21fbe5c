import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { PortcullisError } from '../core/errors.js';

/**
 * The state file: active bans and ban history, with wall-clock times (epoch
 * ms) because it outlives the process whose monotonic clock measured them.
 * Written atomically (temp file, fsync, rename, fsync of the directory), so a
 * crash leaves either the old file or the new one, never half of one.
 */
const bannedTarget = z.strictObject({
  target: z.string(),
  scope: z.enum(['ip', 'prefix']),
  family: z.union([z.literal(4), z.literal(6)]),
  prefix: z.string().nullable(),
  source: z.enum(['strikes', 'prefix', 'manual']),
  reason: z.string(),
  startedAt: z.number(),
  expiresAt: z.number(),
  nth: z.int().min(1),
  dryRun: z.boolean(),
});

const stateSchema = z.strictObject({
  version: z.literal(1),
  savedAt: z.number(),
  bans: z.array(bannedTarget),
  history: z.array(z.strictObject({ target: z.string(), bans: z.int().min(1), lastEndAt: z.number() })),
});

export type BanState = z.infer<typeof stateSchema>;
export type SavedBan = BanState['bans'][number];

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
   * starts empty, rather than crash-looping on it.
   */
  async load(): Promise<BanState | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new PortcullisError('PC_ERR_STATE_FILE', `cannot read ban state ${this.path}: ${(error as Error).message}`, { cause: error });
    }
    let problem: string;
    try {
      const parsed = stateSchema.safeParse(JSON.parse(text));
      if (parsed.success) return parsed.data;
      problem = parsed.error.issues[0]?.message ?? 'unexpected content';
    } catch (error) {
      problem = (error as Error).message;
    }
    const aside = `${this.path}.corrupt-${Date.now()}`;
    await rename(this.path, aside).catch(() => undefined);
    throw new PortcullisError('PC_ERR_STATE_FILE', `ban state ${this.path} is damaged (${problem}); moved it to ${aside} and starting without it`);
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
