import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import type { Ban } from '../../../src/escalation/ban.js';
import { BanLedger } from '../../../src/escalation/ban-ledger.js';
import type { WallClock } from '../../../src/core/clock.js';
import { BanPersistence } from '../../../src/escalation/ban-persistence.js';
import { BanStateFile } from '../../../src/escalation/ban-state-file.js';
import { capturingLogger } from '../../support/captured-log.js';
import { makeBan } from '../../support/ban-fixture.js';

const PREFIX = { ipv4: 24, ipv6: 64 };

/** A wall clock that moves with a ManualClock, from a chosen epoch. */
function wallFor(clock: ManualClock, epochAtZero: number): WallClock {
  return { epochMs: () => epochAtZero + clock.nowMs() };
}

function ban(target: string, startedMs: number, expiresMs: number, extra: Partial<Ban> = {}): Ban {
  return makeBan(target, { scope: 'ip', family: 4, prefix: '198.51.100.0/24', startedMs, expiresMs, ...extra });
}

describe('BanPersistence', () => {
  let dir: string;
  let logs: Record<string, unknown>[];
  const logger = () => capturingLogger((entry) => logs.push(entry));

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portcullis-state-'));
    logs = [];
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('survives a restart: active bans and history come back with their remaining time, expired bans do not', async () => {
    const file = BanStateFile.in(dir);
    // First run: monotonic clock at 5 s, wall clock at some epoch.
    const first = new ManualClock(5_000);
    const ledger = new BanLedger({ maxBans: 100, maxHistory: 100, prefix: PREFIX });
    const persistence = new BanPersistence(file, ledger, first, wallFor(first, 1_700_000_000_000), logger());
    expect(await persistence.restore()).toBe(0);
    ledger.add(ban('198.51.100.1', 5_000, 65_000, { nth: 3 }));
    ledger.add(ban('198.51.100.2', 5_000, 6_000));
    await persistence.close();

    // Second run starts 10 s of wall time later, with a fresh monotonic clock near 0.
    const second = new ManualClock(100);
    const restoredLedger = new BanLedger({ maxBans: 100, maxHistory: 100, prefix: PREFIX });
    const restarted = new BanPersistence(file, restoredLedger, second, wallFor(second, 1_700_000_000_000 + 15_000 - 100), logger());
    expect(await restarted.restore()).toBe(1);
    const [restored] = restoredLedger.active();
    expect(restored).toMatchObject({ target: '198.51.100.1', nth: 3 });
    // 60 s ban, 10 s of it spent while portcullis was down: 50 s left.
    expect(restored!.expiresMs - second.nowMs()).toBe(50_000);
    expect(restoredLedger.historyOf('198.51.100.2')).toMatchObject({ bans: 1 });
    await restarted.close();
  });

  it('writes atomically, leaving no temporary file, and coalesces bursts', async () => {
    const clock = new ManualClock();
    const ledger = new BanLedger({ maxBans: 1000, maxHistory: 1000, prefix: PREFIX });
    const persistence = new BanPersistence(BanStateFile.in(dir), ledger, clock, wallFor(clock, 0), logger());
    await persistence.restore();
    for (let i = 0; i < 200; i++) ledger.add(ban(`198.51.100.${i}`, 0, 1_000_000));
    await persistence.schedule();
    expect(await readdir(dir)).toEqual(['bans.json']);
    const saved = JSON.parse(await readFile(join(dir, 'bans.json'), 'utf8')) as { bans: unknown[] };
    expect(saved.bans).toHaveLength(200);
  });

  it.each([
    ['truncated', '{"version":1,"savedAt":1,"bans":[{"tar'],
    ['not ours', '{"hello":"world"}'],
    ['empty', ''],
  ])('moves a %s file aside, says so, and starts empty', async (_kind, content) => {
    await writeFile(join(dir, 'bans.json'), content);
    const clock = new ManualClock();
    const ledger = new BanLedger({ maxBans: 10, maxHistory: 10, prefix: PREFIX });
    const persistence = new BanPersistence(BanStateFile.in(dir), ledger, clock, wallFor(clock, 0), logger());
    expect(await persistence.restore()).toBe(0);
    expect(logs.some((line) => line['code'] === 'PC_ERR_STATE_FILE' && String(line['msg']).includes('moved it to'))).toBe(true);
    expect((await readdir(dir)).some((name) => name.startsWith('bans.json.corrupt-'))).toBe(true);
    // A fresh, valid file replaces it, and later saves work.
    ledger.add(ban('198.51.100.1', 0, 1000));
    await persistence.close();
    const saved = JSON.parse(await readFile(join(dir, 'bans.json'), 'utf8')) as { bans: { target: string }[] };
    expect(saved.bans.map((entry) => entry.target)).toEqual(['198.51.100.1']);
  });

  describe('a file that is ours with some bad entries', () => {
    // Wall clock 1_700_000_000_000 at monotonic 0: epoch times in the file are around it.
    const EPOCH = 1_700_000_000_000;
    const good = { target: '198.51.100.1', scope: 'ip', family: 4, prefix: '198.51.100.0/24', source: 'strikes', reason: 'test', startedAt: EPOCH - 1_000, expiresAt: EPOCH + 60_000, nth: 1, dryRun: false };
    const goodHistory = { target: '198.51.100.1', bans: 1, lastEndAt: EPOCH + 60_000 };

    async function restoreFrom(bans: unknown[], history: unknown[] = [goodHistory]) {
      await writeFile(join(dir, 'bans.json'), JSON.stringify({ version: 1, savedAt: EPOCH - 500, bans, history }));
      const clock = new ManualClock();
      const ledger = new BanLedger({ maxBans: 10, maxHistory: 10, prefix: PREFIX });
      const persistence = new BanPersistence(BanStateFile.in(dir), ledger, clock, wallFor(clock, EPOCH), logger());
      const restored = await persistence.restore();
      await persistence.close();
      return { restored, ledger };
    }

    const skippedLines = () => logs.filter((line) => line['code'] === 'PC_ERR_STATE_ENTRY' && line['index'] !== undefined);

    it.each([
      ['a target that is no address', { target: 'not-an-ip/24', scope: 'prefix', prefix: null }, 'not a canonical IP address'],
      ['a prefix length out of range', { target: '198.51.0.0/33', scope: 'prefix', prefix: null }, 'prefix length'],
      ['a prefix too wide to ban', { target: '10.0.0.0/4', scope: 'prefix', prefix: null }, 'prefix length'],
      ['host bits set in a prefix', { target: '198.51.100.7/24', scope: 'prefix', prefix: null }, 'host bits'],
      ['a target of the other family', { target: '2001:db8::7', family: 4, prefix: null }, 'family'],
      ['a /24 stored with scope ip', { target: '203.0.113.0/24', scope: 'ip', prefix: null }, "scope 'ip'"],
      ['an address stored with scope prefix', { target: '203.0.113.9', scope: 'prefix', prefix: null }, "scope 'prefix'"],
      ['a prefix that does not hold the address', { target: '203.0.113.9', prefix: '198.51.100.0/24' }, 'does not contain'],
      ['expiry before start', { target: '203.0.113.9', prefix: null, startedAt: EPOCH + 10_000, expiresAt: EPOCH + 5_000 }, 'before it starts'],
      ['a remaining time no kernel timeout can hold', { target: '203.0.113.9', prefix: null, expiresAt: EPOCH + 2 ** 31 * 1000 }, 'longer than'],
      ['a negative nth', { target: '203.0.113.9', prefix: null, nth: -2 }, 'nth'],
      ['an unknown source', { target: '203.0.113.9', prefix: null, source: 'rumour' }, 'source'],
      ['a missing field', { target: '203.0.113.9', prefix: null, expiresAt: undefined }, '"expiresAt" is missing'],
      ['a field that is not ours', { target: '203.0.113.9', prefix: null, colour: 'red' }, 'colour'],
      ['a target that is not text', { target: 42, prefix: null }, 'target'],
      ['a duplicate of an earlier entry', { target: '198.51.100.1' }, 'same target as bans[0]'],
    ])('skips %s, keeps the good ban, and says which entry and why', async (_kind, changes, why) => {
      const bad = JSON.parse(JSON.stringify({ ...good, ...changes })) as Record<string, unknown>;
      const { restored, ledger } = await restoreFrom([good, bad]);
      expect(restored).toBe(1);
      expect(ledger.active().map((entry) => entry.target)).toEqual(['198.51.100.1']);
      expect(ledger.historyOf('198.51.100.1')).toMatchObject({ bans: 1 });
      const lines = skippedLines();
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ list: 'bans', index: 1, target: typeof bad['target'] === 'string' ? bad['target'] : null });
      expect(String(lines[0]!['msg'])).toContain('bans[1]');
      expect(String(lines[0]!['why'])).toContain(why);
      // The file is not moved aside (it is ours), but a copy with the skipped entry is kept for a person.
      const names = await readdir(dir);
      expect(names.some((name) => name.startsWith('bans.json.corrupt-'))).toBe(false);
      const copy = names.find((name) => name.startsWith('bans.json.skipped-'));
      expect(copy).toBeDefined();
      expect(JSON.parse(await readFile(join(dir, copy!), 'utf8'))).toMatchObject({ bans: [good, bad] });
    });

    it.each([
      ['not an object', 'nonsense'],
      ['null', null],
      ['an array', [1, 2]],
    ])('skips a ban entry that is %s', async (_kind, bad) => {
      const { restored } = await restoreFrom([bad, good]);
      expect(restored).toBe(1);
      expect(skippedLines()[0]).toMatchObject({ list: 'bans', index: 0 });
    });

    it.each([
      ['a bad target', { target: 'not-an-ip/24' }, 'not a canonical IP address'],
      ['zero bans', { bans: 0 }, 'bans'],
      ['a missing lastEndAt', { lastEndAt: undefined }, '"lastEndAt" is missing'],
      ['a duplicate', { target: '198.51.100.1' }, 'same target as history[0]'],
    ])('skips a history entry with %s and keeps the rest', async (_kind, changes, why) => {
      const bad = JSON.parse(JSON.stringify({ ...goodHistory, target: '203.0.113.0/24', ...changes })) as Record<string, unknown>;
      const { restored, ledger } = await restoreFrom([good], [goodHistory, bad]);
      expect(restored).toBe(1);
      expect(ledger.historyOf('198.51.100.1')).toMatchObject({ bans: 1 });
      const lines = skippedLines();
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ list: 'history', index: 1, target: bad['target'] });
      expect(String(lines[0]!['why'])).toContain(why);
    });

    it('drops an expired ban quietly: it was good, it is only over', async () => {
      const { restored, ledger } = await restoreFrom([good, { ...good, target: '198.51.100.2', expiresAt: EPOCH - 1 }]);
      expect(restored).toBe(1);
      expect(ledger.active()).toHaveLength(1);
      expect(skippedLines()).toHaveLength(0);
      expect((await readdir(dir)).some((name) => name.includes('skipped'))).toBe(false);
    });

    it('logs a bounded number of lines however many entries are bad, then one summary', async () => {
      const bad = Array.from({ length: 500 }, (_, i) => ({ ...good, target: `not-an-ip-${i}` }));
      const { restored } = await restoreFrom([...bad, good]);
      expect(restored).toBe(1);
      expect(skippedLines().length).toBeLessThanOrEqual(20);
      const summary = logs.find((line) => line['code'] === 'PC_ERR_STATE_ENTRY' && line['skipped'] === 500);
      expect(summary).toBeDefined();
      expect(summary!['restored']).toBe(1);
    });
  });

  it('logs, never throws, when the state directory cannot be written', async () => {
    await writeFile(join(dir, 'not-a-dir'), 'x');
    const clock = new ManualClock();
    const ledger = new BanLedger({ maxBans: 10, maxHistory: 10, prefix: PREFIX });
    const persistence = new BanPersistence(BanStateFile.in(join(dir, 'not-a-dir')), ledger, clock, wallFor(clock, 0), logger());
    await persistence.restore();
    ledger.add(ban('198.51.100.1', 0, 1000));
    await persistence.close();
    expect(logs.some((line) => String(line['msg']).includes('bans will not survive a restart'))).toBe(true);
  });
});
