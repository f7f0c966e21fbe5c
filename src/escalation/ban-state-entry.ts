import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { parseTarget } from './ban-target.js';
import { MAX_TIMEOUT_SEC } from './max-ban-timeout.js';

/*
 * One entry of the state file, checked on its own. The file outlives the
 * process that wrote it (older versions, a hand edit, a disk error inside one
 * entry), so every entry is read as untrusted input: a bad one is skipped and
 * reported, and never stops the others from being restored. Restoring it
 * anyway would crash the ledger (a prefix ban it cannot parse) or lose every
 * kernel ban of the batch (a target or timeout the backend refuses).
 */

const savedBanShape = z.strictObject({
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

const savedHistoryShape = z.strictObject({ target: z.string(), bans: z.int().min(1), lastEndAt: z.number() });

/** A ban as the state file keeps it: wall-clock times (epoch ms) instead of monotonic ones. */
export type SavedBan = z.infer<typeof savedBanShape>;

/** What the state file keeps of one target's past bans. */
export type SavedHistory = z.infer<typeof savedHistoryShape>;

/** An entry read from the file: the entry, or why it cannot be used. */
export type EntryCheck<T> = { readonly ok: true; readonly entry: T } | { readonly ok: false; readonly why: string };

/**
 * Longest time left a restored ban may have: a kernel timeout holds no more
 * (MAX_TIMEOUT_SEC, ~68 years), and a backend refuses the whole restore batch
 * for one element past it.
 */
const MAX_REMAINING_MS = MAX_TIMEOUT_SEC * 1000;

/** Longest text of a reason kept in a log line: an entry may hold anything. */
const MAX_WHY_LENGTH = 300;

/**
 * Checks one ban entry: every field present with its type, no unknown field,
 * a canonical target (as the ledger and the firewall write it) of the stated
 * family and scope, an address ban's prefix holding its address, an expiry
 * after its start, and no more time left at `nowEpochMs` than a kernel
 * timeout holds. An expired ban is not bad (it is only over): the caller drops it.
 */
export function checkSavedBan(value: unknown, nowEpochMs: number): EntryCheck<SavedBan> {
  const shape = savedBanShape.safeParse(value, { reportInput: true });
  if (!shape.success) return refuse(describeIssues(shape.error));
  const ban = shape.data;
  const target = checkTarget(ban.target);
  if (typeof target === 'string') return refuse(target);
  if (target.family !== ban.family) return refuse(`target ${ban.target} is IPv${target.family}, but the entry says family ${ban.family}`);
  if (target.isPrefix !== (ban.scope === 'prefix')) {
    return refuse(ban.scope === 'ip' ? `target ${ban.target} is a network, but the entry has scope 'ip'` : `target ${ban.target} is one address, but the entry has scope 'prefix'`);
  }
  if (ban.prefix !== null) {
    if (ban.scope === 'prefix') return refuse(`a prefix ban has no prefix of its own, got prefix ${JSON.stringify(ban.prefix)}`);
    const prefix = checkTarget(ban.prefix);
    if (typeof prefix === 'string') return refuse(`prefix: ${prefix}`);
    if (!prefix.isPrefix || prefix.family !== ban.family || !ipaddr.parse(ban.target).match(ipaddr.parseCIDR(ban.prefix))) {
      return refuse(`prefix ${ban.prefix} does not contain the address ${ban.target}`);
    }
  }
  if (ban.expiresAt < ban.startedAt) return refuse(`it expires (${ban.expiresAt}) before it starts (${ban.startedAt})`);
  if (ban.expiresAt - nowEpochMs > MAX_REMAINING_MS) {
    return refuse(`it has ${Math.round((ban.expiresAt - nowEpochMs) / 1000)} s left, longer than any kernel timeout (${MAX_TIMEOUT_SEC} s)`);
  }
  return { ok: true, entry: ban };
}

/** Checks one history entry: its fields, and a canonical address or network as target. */
export function checkSavedHistory(value: unknown): EntryCheck<SavedHistory> {
  const shape = savedHistoryShape.safeParse(value, { reportInput: true });
  if (!shape.success) return refuse(describeIssues(shape.error));
  const target = checkTarget(shape.data.target);
  return typeof target === 'string' ? refuse(target) : { ok: true, entry: shape.data };
}

/** The `target` of an entry for a log line, whatever the entry is: null when it has none that is text. */
export function entryTarget(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return null;
  const target = (value as Record<string, unknown>).target;
  return typeof target === 'string' ? target.slice(0, 64) : null;
}

function checkTarget(text: string): ReturnType<typeof parseTarget> | string {
  try {
    return parseTarget(text);
  } catch (error) {
    return (error as Error).message;
  }
}

function refuse(why: string): { ok: false; why: string } {
  return { ok: false, why: why.length > MAX_WHY_LENGTH ? `${why.slice(0, MAX_WHY_LENGTH)}…` : why };
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const field = issue.path.join('.');
      if (issue.code === 'invalid_type' && issue.input === undefined && field !== '') return `"${field}" is missing`;
      if (issue.code === 'unrecognized_keys') return `unknown field(s) ${issue.keys.map((key) => `"${key}"`).join(', ')}`;
      const got = issue.input === undefined || field === '' ? '' : `, got ${JSON.stringify(issue.input)}`;
      return `${field === '' ? 'the entry' : `"${field}"`}: ${issue.message}${got}`;
    })
    .join('; ');
}
