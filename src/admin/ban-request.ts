import { parseDurationMs } from '../config/duration.js';
import { AdminRequestError } from '../core/errors.js';
import { MIN_PREFIX_LENGTH } from '../escalation/ban-target.js';
import { parseCidr } from '../identity/cidr-set.js';

/** Longest manual ban: a year. Longer is a typo more often than a wish (and kernel timeouts cap out anyway). */
export const MAX_MANUAL_BAN_MS = 365 * 86_400_000;
const MAX_REASON_LENGTH = 200;

/** A validated `POST /bans` body. */
export interface BanRequest {
  /** Canonical address or network (`192.0.2.7`, `192.0.2.0/24`). */
  readonly target: string;
  readonly scope: 'ip' | 'prefix';
  readonly family: 4 | 6;
  /** Null: the length the escalation policy would give this target's next ban. */
  readonly durationMs: number | null;
  readonly reason: string;
}

/** Validates a ban target written by a person (`192.0.2.7`, `2001:db8::/48`) into canonical form. */
export function parseBanTarget(text: unknown): Pick<BanRequest, 'target' | 'scope' | 'family'> {
  if (typeof text !== 'string' || text === '') throw new AdminRequestError(400, '"ip" must be an IP address or CIDR, e.g. "192.0.2.7" or "192.0.2.0/24"');
  let cidr;
  try {
    cidr = parseCidr(text);
  } catch (error) {
    throw new AdminRequestError(400, (error as Error).message);
  }
  const family = cidr.addr.kind() === 'ipv4' ? 4 : 6;
  const single = family === 4 ? 32 : 128;
  if (cidr.bits < MIN_PREFIX_LENGTH[family]) {
    throw new AdminRequestError(400, `"${text}" is wider than /${MIN_PREFIX_LENGTH[family]}: a ban that wide would lock out much of the Internet`);
  }
  return cidr.bits === single
    ? { target: cidr.addr.toString(), scope: 'ip', family }
    : { target: `${cidr.addr.toString()}/${cidr.bits}`, scope: 'prefix', family };
}

/** Validates a `POST /bans` body: `{"ip": "...", "duration": "1h", "reason": "..."}`; throws AdminRequestError (400). */
export function parseBanRequest(body: unknown): BanRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new AdminRequestError(400, 'the body must be a JSON object like {"ip": "192.0.2.7", "duration": "1h", "reason": "..."}');
  }
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((key) => !['ip', 'duration', 'reason'].includes(key));
  if (unknown.length > 0) throw new AdminRequestError(400, `unknown field(s) ${unknown.map((key) => `"${key}"`).join(', ')}: expected ip, duration, reason`);
  const target = parseBanTarget(fields.ip);

  let durationMs: number | null = null;
  if (fields.duration !== undefined) {
    const parsed = typeof fields.duration === 'string' ? parseDurationMs(fields.duration) : null;
    if (parsed === null || parsed < 1_000 || parsed > MAX_MANUAL_BAN_MS) {
      throw new AdminRequestError(400, `"duration" must be a duration from 1s to 365d like "10m", "1h" or "7d", got ${JSON.stringify(fields.duration)}`);
    }
    durationMs = parsed;
  }
  if (fields.reason !== undefined && (typeof fields.reason !== 'string' || fields.reason.length > MAX_REASON_LENGTH)) {
    throw new AdminRequestError(400, `"reason" must be text of at most ${MAX_REASON_LENGTH} characters`);
  }
  return { ...target, durationMs, reason: (fields.reason as string | undefined) ?? 'banned by hand via the admin API' };
}
