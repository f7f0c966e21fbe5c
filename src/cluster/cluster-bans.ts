import type { Clock, WallClock } from '../core/clock.js';
import type { Ban } from '../escalation/ban.js';
import { checkSavedBan, type SavedBan } from '../escalation/ban-state-entry.js';

/*
 * Bans as nodes exchange them: the state file's entry (wall-clock times, so
 * nodes with different monotonic clocks agree), checked as untrusted input on
 * the way in like an entry of the state file.
 */

/** A ban as other nodes read it. */
export function toSharedBan(ban: Ban, clock: Clock, wall: WallClock): SavedBan {
  const offset = wall.epochMs() - clock.nowMs();
  const { startedMs, expiresMs, ...rest } = ban;
  return { ...rest, startedAt: startedMs + offset, expiresAt: expiresMs + offset };
}

/** A ban another node shared, on this node's clock; null (with why) when it is not a valid or live ban. */
export function fromSharedBan(value: unknown, clock: Clock, wall: WallClock): { ban: Ban } | { why: string } {
  const nowEpochMs = wall.epochMs();
  const checked = checkSavedBan(value, nowEpochMs);
  if (!checked.ok) return { why: checked.why };
  if (checked.entry.expiresAt <= nowEpochMs) return { why: 'expired' };
  const offset = clock.nowMs() - nowEpochMs;
  const { startedAt, expiresAt, ...rest } = checked.entry;
  return { ban: { ...rest, startedMs: startedAt + offset, expiresMs: expiresAt + offset } };
}

/** A ban as the shared bans hash stores it (JSON text), on this node's clock; null when it is no valid or live ban. */
export function parseSharedBan(text: string, clock: Clock, wall: WallClock): Ban | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const shared = fromSharedBan(value, clock, wall);
  return 'ban' in shared ? shared.ban : null;
}
