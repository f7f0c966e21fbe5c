import type { RedisClient } from './redis-connection.js';

/** Fields one HSCAN page asks for: a page of bans comes back in about a millisecond. */
const SCAN_COUNT = 1_000;
/** Pages of the bans hash read at most (a hundred million bans). */
const MAX_SCAN_PAGES = 100_000;
/** Bans per HSET or HDEL: small commands, and no call spreading a million arguments. */
const WRITE_SLICE = 1_000;
/**
 * Deletes one entry of the bans hash if the ban it holds has ended by the
 * caller's wall clock (ARGV[2], epoch ms), in one step so a longer ban another
 * node writes meanwhile stays. Without it entries only left the hash at a
 * reconcile, which a cluster whose Redis never restarts may not see for
 * months: the hash grew by every ban ever made.
 */
const FORGET_SCRIPT = `
local text = redis.call('HGET', KEYS[1], ARGV[1])
if not text then return 0 end
local ok, ban = pcall(cjson.decode, text)
if ok and type(ban) == 'table' and type(ban.expiresAt) == 'number' and ban.expiresAt > tonumber(ARGV[2]) then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
`;

interface ForgetCommand {
  portcullisForgetBan(keyCount: 1, key: string, target: string, nowEpochMs: number): Promise<number>;
}

/**
 * The cluster's bans in Redis: one hash, a field per banned target, its ban
 * as JSON (see cluster-bans.ts). It may hold as many bans as
 * `escalation.max_bans` (a million by default), so it is read with HSCAN and
 * written in slices: every command stays small enough for `store.timeout`,
 * which one HGETALL of a hundred thousand bans is not.
 */
export class SharedBanHash {
  readonly #redis: RedisClient & ForgetCommand;
  readonly #key: string;

  constructor(redis: RedisClient, key: string) {
    redis.defineCommand('portcullisForgetBan', { lua: FORGET_SCRIPT });
    this.#redis = redis as RedisClient & ForgetCommand;
    this.#key = key;
  }

  /** Every entry, target to JSON text, a page of HSCAN at a time (a field seen twice by the scan is kept once). */
  async readAll(): Promise<Map<string, string>> {
    const stored = new Map<string, string>();
    let cursor = '0';
    // HSCAN ends by itself; the bound only guards against a server that never says so.
    for (let page = 0; page < MAX_SCAN_PAGES; page++) {
      const [next, fields] = await this.#redis.hscan(this.#key, cursor, 'COUNT', SCAN_COUNT);
      for (let i = 0; i + 1 < fields.length; i += 2) stored.set(fields[i] as string, fields[i + 1] as string);
      if (next === '0') return stored;
      cursor = next;
    }
    throw new Error(`the bans hash did not end after ${MAX_SCAN_PAGES} HSCAN pages`);
  }

  /** Writes `[target, text]` pairs, WRITE_SLICE per command. */
  async writeAll(entries: readonly (readonly [string, string])[]): Promise<void> {
    for (let i = 0; i < entries.length; i += WRITE_SLICE) await this.#redis.hset(this.#key, ...entries.slice(i, i + WRITE_SLICE).flat());
  }

  /** Deletes the targets' entries, WRITE_SLICE per command. */
  async deleteAll(targets: readonly string[]): Promise<void> {
    for (let i = 0; i < targets.length; i += WRITE_SLICE) await this.#redis.hdel(this.#key, ...targets.slice(i, i + WRITE_SLICE));
  }

  /** Writes one ban. */
  async write(target: string, text: string): Promise<void> {
    await this.#redis.hset(this.#key, target, text);
  }

  /** Deletes one ban (a lift). */
  async delete(target: string): Promise<void> {
    await this.#redis.hdel(this.#key, target);
  }

  /** Deletes one entry if its ban has ended by `nowEpochMs`: a longer one another node wrote meanwhile stays. */
  async forgetEnded(target: string, nowEpochMs: number): Promise<void> {
    await this.#redis.portcullisForgetBan(1, this.#key, target, nowEpochMs);
  }
}
