/** Bans for tests: every field a sensible default, so a test names only what it is about. */
import type { Ban } from '../../src/escalation/ban.js';

/** An active first ban of `target` (scope and family read from it), from 0 for ten minutes, unless `extra` says otherwise. */
export function makeBan(target: string, extra: Partial<Ban> = {}): Ban {
  return {
    target,
    scope: target.includes('/') ? 'prefix' : 'ip',
    family: target.includes(':') ? 6 : 4,
    prefix: null,
    source: 'strikes',
    reason: 'test',
    startedMs: 0,
    expiresMs: 600_000,
    nth: 1,
    dryRun: false,
    ...extra,
  };
}
