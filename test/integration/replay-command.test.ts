import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATTACK_START_MS, combinedLine, seedAttackLog } from '../support/access-log-fixture.js';
import { runCli } from '../support/cli.js';

interface ReplayJson {
  input: { lines: number; malformed: number; malformedExamples: string[] };
  decisions: Record<string, number>;
  reachedApache: { requests: number; peakPerSecond: number };
  offenders: { target: string; refused: number; bannedAtMs: number | null; banMs: number | null; firstRule: string }[];
}

/**
 * `portcullis replay` as a user runs it, on a generated log of the seed attack,
 * under the shipped policy: exact ban times, on the log's own clock.
 */
describe('portcullis replay', () => {
  let dir: string;
  let attackLog: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portcullis-replay-'));
    attackLog = join(dir, 'access.log');
    await writeFile(attackLog, `${seedAttackLog().join('\n')}\n`);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function replay(...args: string[]): Promise<ReplayJson> {
    const result = await runCli(['replay', '--json', ...args]);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as ReplayJson;
  }

  it('bans both flooders and their /24 at the sixth blocked request, and lets no neighbour and every visitor through', async () => {
    const result = await replay(attackLog);
    const byTarget = new Map(result.offenders.map((offender) => [offender.target, offender]));
    // 220 lines in the first second (200 flood, interleaved, then 20 visitors), spread 1000/220 ms apart:
    // .10's 6th request is line 10 (+45 ms), .11's is line 11 (+50 ms), which makes two bans in the /24.
    expect(byTarget.get('203.0.113.10')).toMatchObject({ bannedAtMs: ATTACK_START_MS + 45, banMs: 600_000, firstRule: '/xmlrpc.php' });
    expect(byTarget.get('203.0.113.11')).toMatchObject({ bannedAtMs: ATTACK_START_MS + 50, banMs: 600_000 });
    expect(byTarget.get('203.0.113.0/24')).toMatchObject({ bannedAtMs: ATTACK_START_MS + 50, banMs: 600_000 });
    for (const neighbour of ['203.0.113.12', '203.0.113.13']) expect(byTarget.get(neighbour)).toMatchObject({ refused: 400, firstRule: 'ban' });
    expect([...byTarget.keys()].some((target) => target.startsWith('198.51.100.'))).toBe(false);
    // Only the visitors' 400 requests reach Apache: 20 a second at the busiest.
    expect(result.reachedApache).toEqual({ requests: 400, peakPerSecond: 20 });
    expect(result.decisions).toMatchObject({ allow: 400, block: 12 });
  });

  it('bans nobody on a quiet day, reads .gz, and reports malformed lines without failing', async () => {
    const quiet = Array.from({ length: 600 }, (_, i) => combinedLine({ ip: `198.51.100.${(i % 50) + 1}`, epochMs: ATTACK_START_MS + i * 1000, target: `/post/${i}` }));
    const gz = join(dir, 'quiet.log.gz');
    await writeFile(gz, gzipSync(`${quiet.join('\n')}\nnot a log line\n`));
    const result = await replay(gz);
    expect(result.offenders).toEqual([]);
    expect(result.decisions.allow).toBe(600);
    expect(result.input.malformed).toBe(1);
    expect(result.input.malformedExamples[0]).toBe(`${gz}:601: not a log line`);
  });

  it('prints a report a person can read, and says what is wrong with its input', async () => {
    const text = await runCli(['replay', attackLog]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('reached Apache: 400 of');
    expect(text.stdout).toMatch(/^203\.0\.113\.0\/24 .* 2026-11-24 10:00:00 .*10m/m);
    const missing = await runCli(['replay', join(dir, 'nope.log')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('[PC_ERR_REPLAY_INPUT]');
    expect((await runCli(['replay'])).code).toBe(2);
  });
});
