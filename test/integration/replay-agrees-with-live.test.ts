import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApache, type ApacheHandle } from '../support/apache.js';
import { runCli } from '../support/cli.js';
import { clientAgent, request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

interface ReplayJson {
  input: { lines: number; malformed: number };
  offenders: { target: string; refused: number; bannedAtMs: number | null }[];
}

interface BanJson {
  target: string;
  started_at: string;
}

/**
 * Every client in the flooding /24 (127.97.1.0/24) floods; the others are
 * alone in theirs. Ten strikes ban; two banned addresses of one /24 ban it.
 */
const FLOODER = '127.97.1.1';
const XMLRPC = '127.97.1.2';
const VISITOR = '127.97.2.1';
const HASTY = '127.97.3.1';

function policy(logPath: string): string {
  return [
    `access_log: "${logPath}"`,
    'access_log_refused: true',
    'block:\n  - path: /xmlrpc.php',
    'limits:\n  - { name: pages, methods: ["*"], per_ip: { rate: 2/s, burst: 5 } }',
    'escalation: { strikes: 10, window: 60s, ban: 2m, tarpit: 0s, prefix_after: 2 }',
  ].join('\n');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits (at most a second) until the wall clock is in the first 50 ms of a second, so a short burst falls in one logged second. */
async function startOfSecond(): Promise<void> {
  for (let i = 0; i < 250 && Date.now() % 1000 >= 50; i++) await sleep(5);
}

/** Sends `count` requests one after another on one client's keep-alive connection; 0 for one whose connection a ban cut. */
async function burst(baseUrl: string, agent: http.Agent, count: number, method: string, path: string): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) {
    statuses.push(await request(baseUrl, { method, path, agent }).then((response) => response.status, () => 0));
  }
  return statuses;
}

/**
 * Issue 13: a request sequence sent through a running portcullis in front of
 * a real Apache, with refused requests logged (`access_log_refused`), then
 * `portcullis replay` of portcullis's own access log under the same policy
 * file: the same clients are banned, in the same logged second.
 *
 * The log has one-second resolution and replay spreads the requests of a
 * second evenly across it, where live they came within a few milliseconds;
 * so a bucket may refill a token or two more in replay than it did live. The
 * sequence is built so that no ban depends on that: each flood exceeds its
 * allowance by far more than the strikes a ban needs (30 requests against a
 * burst of 5 and 10 strikes), starts at the top of a second and lasts well
 * under one, and the clients that must not be banned stay far from it (5
 * strikes at most against 10; a visitor at exactly the refill rate).
 */
describe('replay and the live proxy agree', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy | undefined;
  let dir: string;
  let logPath: string;

  beforeAll(async () => {
    apache = await startApache();
    dir = await mkdtemp(join(tmpdir(), 'portcullis-agree-'));
    logPath = join(dir, 'access.log');
    proxy = await startTestProxy(apache.url, policy(logPath));
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function replay(log: string, policyFile: string): Promise<ReplayJson> {
    const result = await runCli(['replay', '--json', '--config', policyFile, log], { timeoutMs: 30_000 });
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as ReplayJson;
  }

  it('bans the same clients, each in the same logged second, when portcullis\'s own log is replayed', async () => {
    const live = proxy as TestProxy;
    const agents = new Map([FLOODER, XMLRPC, VISITOR, HASTY].map((ip) => [ip, clientAgent(ip)]));
    const agentOf = (ip: string) => agents.get(ip) as http.Agent;
    const send = (ip: string, count: number, method: string, path: string) => burst(live.url, agentOf(ip), count, method, path);
    try {
      // The visitor: one page every 500 ms for 4 s, the limit's refill rate, alongside the floods.
      const visitor = (async () => {
        const statuses: number[] = [];
        for (let i = 0; i < 8; i++) {
          statuses.push(...(await send(VISITOR, 1, 'GET', '/index.html')));
          await sleep(500);
        }
        return statuses;
      })();
      await startOfSecond();
      const flooder = await send(FLOODER, 30, 'GET', '/index.html');
      await startOfSecond();
      const xmlrpc = await send(XMLRPC, 30, 'POST', '/xmlrpc.php');
      await startOfSecond();
      // Ten at once: five get through, five are limited; five strikes are half a ban.
      const hasty = await send(HASTY, 10, 'GET', '/index.html');
      const visits = await visitor;

      // Live: what the clients saw, and the bans the proxy holds.
      expect(flooder.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
      expect(flooder.slice(5).every((status) => status === 429 || status === 403 || status === 0)).toBe(true);
      expect(xmlrpc.every((status) => status === 403 || status === 0)).toBe(true);
      expect(hasty.filter((status) => status === 429).length).toBeGreaterThan(0);
      expect(visits).toEqual(Array.from({ length: 8 }, () => 200));
      const bans = ((await (await fetch(`${live.adminUrl}/bans`)).json()) as { bans: BanJson[] }).bans;
      const liveBans = new Map(bans.map((ban) => [ban.target, Date.parse(ban.started_at)]));
      expect([...liveBans.keys()].sort()).toEqual(['127.97.1.0/24', FLOODER, XMLRPC]);

      // Closing the proxy flushes its log; the policy file goes with its work dir, so keep a copy.
      const policyFile = join(dir, 'policy.yaml');
      await copyFile(live.policyFile, policyFile);
      await live.close();
      proxy = undefined;

      const replayed = await replay(logPath, policyFile);
      expect(replayed.input.malformed).toBe(0);
      // Every request the proxy answered is in the log: 30 + 30 + 10 + 8, less any a ban cut before it was read.
      expect(replayed.input.lines).toBeGreaterThan(70);
      const offenders = new Map(replayed.offenders.map((offender) => [offender.target, offender]));
      const replayBans = new Map(replayed.offenders.filter((offender) => offender.bannedAtMs !== null).map((offender) => [offender.target, offender.bannedAtMs as number]));
      expect([...replayBans.keys()].sort()).toEqual([...liveBans.keys()].sort());
      for (const [target, liveMs] of liveBans) {
        const replayMs = replayBans.get(target) as number;
        expect(Math.floor(replayMs / 1000), `${target}: banned at ${new Date(liveMs).toISOString()} live, ${new Date(replayMs).toISOString()} in replay`).toBe(Math.floor(liveMs / 1000));
      }
      // Refused but never banned in both; the visitor never refused in either.
      expect(offenders.get(HASTY)).toMatchObject({ bannedAtMs: null });
      expect(offenders.get(HASTY)?.refused).toBeGreaterThan(0);
      expect(offenders.has(VISITOR)).toBe(false);

      // The same log without the refused lines (what access_log writes without the option) bans nobody:
      // the floods' refusals are what the bans are made of.
      const text = await readFile(logPath, 'utf8');
      const forwardedOnly = join(dir, 'forwarded-only.log');
      await writeFile(forwardedOnly, text.split('\n').filter((line) => !/ "portcullis:[^"]*"$/.test(line)).join('\n'));
      expect((await replay(forwardedOnly, policyFile)).offenders.filter((offender) => offender.bannedAtMs !== null)).toEqual([]);
    } finally {
      for (const agent of agents.values()) agent.destroy();
    }
  }, 60_000);
});
