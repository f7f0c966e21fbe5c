import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import type { Ban } from '../../../src/escalation/ban.js';
import { BanLedger } from '../../../src/escalation/ban-ledger.js';
import { BanPersistence, type WallClock } from '../../../src/escalation/ban-persistence.js';
import { BanStateFile } from '../../../src/escalation/ban-state-file.js';

const PREFIX = { ipv4: 24, ipv6: 64 };

/** A wall clock that moves with a ManualClock, from a chosen epoch. */
function wallFor(clock: ManualClock, epochAtZero: number): WallClock {
  return { epochMs: () => epochAtZero + clock.nowMs() };
}

function ban(target: string, startedMs: number, expiresMs: number, extra: Partial<Ban> = {}): Ban {
  return { target, scope: 'ip', family: 4, prefix: '198.51.100.0/24', source: 'strikes', reason: 'test', startedMs, expiresMs, nth: 1, dryRun: false, ...extra };
}

describe('BanPersistence', () => {
  let dir: string;
  let logs: Record<string, unknown>[];
  const logger = () =>
    pino(
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
          callback();
        },
      }),
    );

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
