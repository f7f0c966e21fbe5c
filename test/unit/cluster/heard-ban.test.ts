import { describe, expect, it } from 'vitest';
import { heardBanToAdd } from '../../../src/cluster/heard-ban.js';
import type { Ban } from '../../../src/escalation/ban.js';

const ban = (fields: Partial<Ban> = {}): Ban => ({
  target: '198.51.100.7',
  scope: 'ip',
  family: 4,
  prefix: '198.51.100.0/24',
  source: 'strikes',
  reason: '30 strikes within 60s',
  startedMs: 0,
  expiresMs: 600_000,
  nth: 1,
  dryRun: false,
  ...fields,
});

describe('heardBanToAdd', () => {
  it('adds a ban this node does not hold, or holds shorter', () => {
    expect(heardBanToAdd(ban(), null, false)).toEqual(ban());
    expect(heardBanToAdd(ban({ nth: 2, expiresMs: 1_200_000 }), ban(), false)).toEqual(ban({ nth: 2, expiresMs: 1_200_000 }));
  });

  it('keeps this node ban when it lasts as long', () => {
    expect(heardBanToAdd(ban(), ban({ expiresMs: 600_000 }), false)).toBeNull();
    expect(heardBanToAdd(ban({ expiresMs: 500_000 }), ban(), false)).toBeNull();
  });

  it('takes a copy of its own ban made from the same strikes, up to 2 s later, as the same ban', () => {
    expect(heardBanToAdd(ban({ expiresMs: 602_000 }), ban(), false)).toBeNull();
    expect(heardBanToAdd(ban({ expiresMs: 602_001 }), ban(), false)).toEqual(ban({ expiresMs: 602_001 }));
    // A later ban in the series is a longer one, not the same.
    expect(heardBanToAdd(ban({ nth: 2, expiresMs: 601_000 }), ban(), false)).toEqual(ban({ nth: 2, expiresMs: 601_000 }));
  });

  it('lets an enforcing node ignore dry-run bans', () => {
    expect(heardBanToAdd(ban({ dryRun: true }), null, false)).toBeNull();
  });

  it('records an automatic ban in dry run without enforcing it, but enforces a manual one', () => {
    expect(heardBanToAdd(ban(), null, true)).toEqual(ban({ dryRun: true }));
    expect(heardBanToAdd(ban({ source: 'manual' }), null, true)).toEqual(ban({ source: 'manual' }));
    expect(heardBanToAdd(ban({ dryRun: true }), null, true)).toEqual(ban({ dryRun: true }));
  });
});
