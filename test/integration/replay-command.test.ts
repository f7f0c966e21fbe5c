import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATTACK_START_MS, combinedLine, seedAttackLog } from '../support/access-log-fixture.js';
import { runCli } from '../support/cli.js';

interface ReplayJson {
  input: { lines: number; malformed: number; malformedExamples: string[] };
  bySite: Record<string, number>;
  decisions: Record<string, number>;
  reachedApache: { requests: number; peakPerSecond: number };
  offenders: { target: string; refused: number; bannedAtMs: number | null; banMs: number | null; firstRule: string; firstSite: string | null }[];
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

  it('skips a line longer than any access log line without holding it, and shows malformed lines with their control bytes escaped', async () => {
    const file = join(dir, 'hostile.log');
    const line = (i: number) => combinedLine({ ip: '198.51.100.7', epochMs: ATTACK_START_MS + i * 1000, target: `/p${i}` });
    // 64 MiB without a newline: a binary file, or a log whose newlines were lost.
    const overlong = 'a'.repeat(64 * 1024 * 1024);
    await writeFile(file, `${line(0)}\n${overlong}\n${line(1)}\n\x1b[2J\x07 not a log line \xff\n${line(2)}\n`, 'latin1');
    // A heap too small to hold the line even once: the line must not be held.
    const run = await runCli(['replay', '--json', file], { env: { ...(process.env as Record<string, string>), NODE_OPTIONS: '--max-old-space-size=48' } });
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as ReplayJson;
    expect(result.decisions.allow).toBe(3);
    expect(result.input.malformed).toBe(2);
    expect(result.input.malformedExamples[0]).toBe(`${file}:2: ${'a'.repeat(200)}… (a line of 67108864 bytes: longer than the 1 MiB an access log line can be)`);
    expect(result.input.malformedExamples[1]).toBe(`${file}:4: \\x1b[2J\\x07 not a log line \\xff`);
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

  it('decides a vhost_combined log per site: xmlrpc blocked and banned on one site, limited on the Jetpack one', async () => {
    const policy = join(dir, 'sites.yaml');
    await writeFile(
      policy,
      `escalation: { strikes: 6, window: 60s, ban: 10m }\nblock:\n  - name: xmlrpc\n    path: /xmlrpc.php\nsites:\n  - name: jetpack\n    hosts: [jetpack.test]\n    limits:\n      - name: xmlrpc\n        methods: [POST]\n        paths: [/xmlrpc.php]\n        per_ip: { rate: 6/min, burst: 3 }\n  - name: blog\n    hosts: [blog.test]\n`,
    );
    const lines: string[] = [];
    for (let second = 0; second < 30; second++) {
      const epochMs = ATTACK_START_MS + second * 1000;
      if (second % 5 === 0) lines.push(combinedLine({ ip: '192.0.2.20', epochMs, method: 'POST', target: '/xmlrpc.php', vhost: 'jetpack.test', agent: 'Jetpack by WordPress.com' }));
      lines.push(combinedLine({ ip: '2001:db8::66', epochMs, method: 'POST', target: '/xmlrpc.php', vhost: 'blog.test', agent: 'curl/8.0' }));
    }
    const log = join(dir, 'vhosts.log');
    await writeFile(log, `${lines.join('\n')}\n`);
    const result = await replay('--config', policy, log);
    expect(result.bySite).toEqual({ jetpack: 6, blog: 30 });
    const byTarget = new Map(result.offenders.map((offender) => [offender.target, offender]));
    // The sixth refusal within 60 s bans: the blog flooder's sixth line is the second of second 5.
    expect(byTarget.get('2001:db8::66')).toMatchObject({ firstRule: 'xmlrpc', firstSite: 'blog', bannedAtMs: ATTACK_START_MS + 5_500 });
    expect(byTarget.get('192.0.2.20')).toMatchObject({ refused: 1, firstRule: 'xmlrpc', firstSite: 'jetpack', bannedAtMs: null });
    // Jetpack every 5 s against a burst of 3 and one every 10 s: the sixth (at 25 s) is the only one limited.
    expect(result.decisions).toMatchObject({ allow: 5, limit: 1, block: 6, ban: 24 });
    expect(result.reachedApache.requests).toBe(5);
  });

  it('puts out-of-order lines back in order: the same bans as the log in order', async () => {
    const ordered = seedAttackLog();
    // Apache logs a request when it ends: move every 7th line up to 3 s later in the file.
    const shuffled = [...ordered];
    for (let i = shuffled.length - 1; i >= 0; i -= 7) {
      const [line] = shuffled.splice(i, 1) as [string];
      shuffled.splice(Math.min(shuffled.length, i + 600), 0, line);
    }
    const log = join(dir, 'shuffled.log');
    await writeFile(log, `${shuffled.join('\n')}\n`);
    const bans = (result: ReplayJson) => result.offenders.filter((offender) => offender.bannedAtMs !== null).map((offender) => [offender.target, offender.bannedAtMs]).sort();
    expect(bans(await replay(log))).toEqual(bans(await replay(attackLog)));
  });

  it('reads a custom LogFormat: %a over %h, and X-Forwarded-For from a trusted proxy only', async () => {
    const policy = join(dir, 'cdn.yaml');
    await writeFile(policy, 'clients: { trusted_proxies: [10.0.0.0/8] }\nblock:\n  - path: /xmlrpc.php\n');
    const lines = Array.from({ length: 20 }, (_, i) => `10.1.1.1 [24/Nov/2026:10:00:${String(i).padStart(2, '0')} +0000] "POST /xmlrpc.php HTTP/1.1" 403 "203.0.113.50, 10.1.1.1"`);
    const log = join(dir, 'cdn.log');
    await writeFile(log, `${lines.join('\n')}\n`);
    const result = await replay('--config', policy, '--format', '%h %t "%r" %>s "%{X-Forwarded-For}i"', log);
    expect(result.input.malformed).toBe(0);
    expect(result.offenders.map((offender) => offender.target)).toContain('203.0.113.50');
    expect(result.offenders.map((offender) => offender.target)).not.toContain('10.1.1.1');
    const bad = await runCli(['replay', '--format', '%h "%r"', log]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('needs %t');
  });

  it('lists visitors a too strict policy refuses as collateral, and --against shows who fares otherwise', async () => {
    const strict = join(dir, 'strict.yaml');
    await writeFile(strict, 'limits:\n  - name: pages\n    methods: [GET]\n    per_ip: { rate: 1/min, burst: 5 }\nescalation: { strikes: 1000, window: 60s, ban: 10m }\n');
    // One visitor's User-Agent carries a terminal escape (sets the window title): the report must not pass it on.
    const agent = (n: number) => (n === 5 ? 'Mozilla/5.0 (\x1b]0;pwned\x07) Firefox' : undefined);
    const day = Array.from({ length: 600 }, (_, i) => combinedLine({ ip: `198.51.100.${(i % 5) + 1}`, epochMs: ATTACK_START_MS + i * 1000, target: `/post/${i}`, agent: agent((i % 5) + 1) }));
    const log = join(dir, 'day.log');
    await writeFile(log, `${day.join('\n')}\n`);
    const json = (await replay('--config', strict, '--against', 'config/portcullis.yaml', log)) as ReplayJson & {
      collateral: { client: string; rule: string }[];
      against: { differences: { target: string; policy: { kind: string }; against: { kind: string } }[] };
    };
    expect(json.collateral.map((suspect) => suspect.client).sort()).toEqual(['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4', '198.51.100.5']);
    expect(json.collateral[0]?.rule).toBe('pages');
    expect(json.against.differences).toHaveLength(5);
    expect(json.against.differences[0]).toMatchObject({ policy: { kind: 'refused' }, against: { kind: 'untouched' } });
    const text = await runCli(['replay', '--config', strict, '--against', 'config/portcullis.yaml', '--progress', log]);
    expect(text.stdout).toMatch(/collateral: 5 clients that look like ordinary visitors/);
    expect(text.stdout).toMatch(/^198\.51\.100\.\d +120 +\d+ +2026-11-24 10:\d\d:\d\d +pages/m);
    expect(text.stdout).toMatch(/5 clients with another outcome:\n.*\n +198\.51\.100\.\d +refused \d+× +untouched/);
    expect(text.stdout).toMatch(/^198\.51\.100\.5 .* Mozilla\/5\.0 \(\\x1b\]0;pwned\\x07\) Firefox$/m);
    expect(text.stdout).not.toContain('\x1b');
  });

  it('draws a progress line on stderr with lines per second and the time left', async () => {
    const big = join(dir, 'big.log');
    const lines = Array.from({ length: 60_000 }, (_, i) => combinedLine({ ip: `198.51.100.${(i % 200) + 1}`, epochMs: ATTACK_START_MS + Math.floor(i / 20) * 1000, target: `/p/${i}` }));
    await writeFile(big, `${lines.join('\n')}\n`);
    const result = await runCli(['replay', '--progress', big], { timeoutMs: 60_000 });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/replay: \[[#.]{30}\] \d+ %, [\d,]+ lines, [\d,]+ lines\/s, \d+ s left/);
    expect((await runCli(['replay', '--no-progress', big], { timeoutMs: 60_000 })).stderr).toBe('');
  });

  it('reads rotated logs oldest first, whatever order the shell gives them in (access.log access.log.1 …)', async () => {
    const lines = seedAttackLog();
    const older = join(dir, 'rotated-access.log.1');
    const newer = join(dir, 'rotated-access.log');
    // The attack's first 8 seconds in the rotated file, the rest in the current one.
    const cut = lines.findIndex((line) => line.includes('10:00:08'));
    await writeFile(older, `${lines.slice(0, cut).join('\n')}\n`);
    await writeFile(newer, `${lines.slice(cut).join('\n')}\n`);
    const bans = (result: ReplayJson) => result.offenders.filter((offender) => offender.bannedAtMs !== null).map((offender) => [offender.target, offender.bannedAtMs]).sort();
    const given = await runCli(['replay', '--json', newer, older]);
    expect(given.code, given.stderr).toBe(0);
    expect(given.stderr).toContain(`reading the logs oldest first: ${older} ${newer}`);
    const asGiven = JSON.parse(given.stdout) as ReplayJson & { input: { late: number } };
    expect(asGiven.input.late).toBe(0);
    expect(bans(asGiven)).toEqual(bans(await replay(attackLog)));
  });
});
