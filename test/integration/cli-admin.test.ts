import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli as runCliWith } from '../support/cli.js';
import { clientAgent, request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

/** Runs the CLI with only the environment given (no inherited PORTCULLIS_ADMIN_TOKEN). */
const runCli = (args: string[], env: Record<string, string> = {}) => runCliWith(args, { env });
const TOKEN = 'cli-test-admin-token-0123456789abcdef';

const POLICY = `
limits:
  - name: read
    methods: [GET]
    per_ip: { rate: 1/min, burst: 3 }
    per_prefix: { rate: 1/min, burst: 50 }
# tarpit 0s: these tests check that a ban is answered, not how slowly.
escalation: { strikes: 100, window: 60s, ban: 10m, tarpit: 0s }
`;

/** The table row (a line of stdout) whose first cell is `first`. */
function row(text: string, first: string): string | undefined {
  return text.split('\n').find((line) => line.startsWith(`${first} `));
}

describe('portcullis status, bans, explain and reload against a running portcullis', () => {
  let upstream: http.Server;
  let proxy: TestProxy;
  let dir: string;
  let tokenFile: string;
  let admin: string[];
  let withToken: string[];

  beforeAll(async () => {
    upstream = http.createServer((_req, res) => res.end('hello\n'));
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    proxy = await startTestProxy(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, POLICY, { adminToken: TOKEN });
    dir = await mkdtemp(join(tmpdir(), 'portcullis-cli-admin-'));
    tokenFile = join(dir, 'token');
    await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    admin = ['--admin', proxy.adminUrl];
    withToken = [...admin, '--token-file', tokenFile];
  });

  afterAll(async () => {
    await proxy?.close();
    await new Promise((resolve) => upstream?.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('bans add, list (table and --json), the proxy refuses the address, bans remove lifts it', async () => {
    const client = { path: '/', localAddress: '127.0.7.7' };
    expect((await request(proxy.url, client)).status).toBe(200);

    const added = await runCli(['bans', 'add', '127.0.7.7', '--duration', '1h', '--reason', 'seen in the log', ...withToken]);
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/^banned 127\.0\.7\.7 for (1h|59m 5\ds) \(its ban #1, until .*\): seen in the log\n$/);
    expect((await request(proxy.url, client)).status).toBe(403);

    const listed = await runCli(['bans', 'list', ...admin]);
    expect(listed.code).toBe(0);
    const lines = listed.stdout.split('\n');
    expect(lines[0]).toMatch(/^TARGET\s+SCOPE\s+SOURCE\s+EXPIRES-IN\s+REASON$/);
    expect(row(listed.stdout, '127.0.7.7')).toMatch(/^127\.0\.7\.7\s+ip\s+manual\s+(1h|59m 5\ds)\s+seen in the log$/);
    // Columns line up: the header's SOURCE starts where the row's source does.
    expect(lines[0]?.indexOf('SOURCE')).toBe(row(listed.stdout, '127.0.7.7')?.indexOf('manual'));

    const json = await runCli(['bans', 'list', '--json', ...admin]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ bans: [{ target: '127.0.7.7', scope: 'ip', source: 'manual', reason: 'seen in the log' }] });

    const removed = await runCli(['bans', 'remove', '127.0.7.7', ...withToken]);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toMatch(/^lifted the ban on 127\.0\.7\.7 /);
    expect((await request(proxy.url, client)).status).toBe(200);
    expect((await runCli(['bans', 'list', ...admin])).stdout).toBe('no active bans\n');
  });

  it('bans and lifts a network by CIDR (the slash percent-encoded in DELETE), taking the token from the environment', async () => {
    const env = { PORTCULLIS_ADMIN_TOKEN: TOKEN };
    const added = await runCli(['bans', 'add', '127.0.8.0/24', '--duration', '10m', ...admin], env);
    expect(added.code).toBe(0);
    expect((await request(proxy.url, { path: '/', localAddress: '127.0.8.9' })).status).toBe(403);
    expect(row((await runCli(['bans', 'list', ...admin])).stdout, '127.0.8.0/24')).toMatch(/^127\.0\.8\.0\/24\s+prefix\s+manual\s+(10m|9m 5\ds)\s+banned by hand/);
    const removed = await runCli(['bans', 'remove', '127.0.8.0/24', ...admin], env);
    expect(removed.code).toBe(0);
    expect((await request(proxy.url, { path: '/', localAddress: '127.0.8.9' })).status).toBe(200);
  });

  it('without a token, or with a wrong one, prints the API message and exits 1; nothing is banned', async () => {
    const none = await runCli(['bans', 'add', '127.0.7.8', ...admin]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('this call needs "Authorization: Bearer <token>"');
    expect(none.stderr).toContain('the CLI sent no token: pass --token-file FILE');
    expect(none.stderr).toContain('(HTTP 401) [PC_ERR_ADMIN_REQUEST]');

    const wrongFile = join(dir, 'wrong-token');
    await writeFile(wrongFile, 'not-the-right-token-at-all\n');
    const wrong = await runCli(['bans', 'remove', '127.0.7.8', ...admin, '--token-file', wrongFile]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`the bearer token is wrong; the token came from --token-file ${wrongFile}`);

    const refused = await runCli(['bans', 'add', '10.0.0.0/4', ...withToken]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/host bits.*\(HTTP 400\) \[PC_ERR_ADMIN_REQUEST\]/);
    expect((await runCli(['bans', 'list', ...admin])).stdout).toBe('no active bans\n');
  });

  it('finds the admin API and the token file through --config', async () => {
    const policy = join(dir, 'policy.yaml');
    const port = new URL(proxy.adminUrl).port;
    // An invalid rule elsewhere in the file does not stop the CLI from finding the admin API.
    await writeFile(policy, `admin:\n  listen: "0.0.0.0:${port}"\n  token_file: "${tokenFile}"\nlimits: 5\n`);
    const added = await runCli(['bans', 'add', '127.0.7.9', '--config', policy]);
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    const removed = await runCli(['bans', 'remove', '127.0.7.9', '-c', policy]);
    expect(removed.code).toBe(0);
  });

  it('explain shows the bucket levels a client moved, untracked buckets as full, and its next ban', async () => {
    const agent = clientAgent('127.0.6.5');
    for (let i = 0; i < 2; i++) expect((await request(proxy.url, { path: '/', agent })).status).toBe(200);
    agent.destroy();

    const explained = await runCli(['explain', '127.0.6.5', ...admin]);
    expect(explained.stderr).toBe('');
    expect(explained.code).toBe(0);
    const out = explained.stdout;
    expect(out).toMatch(/^client\s+127\.0\.6\.5 \(prefix 127\.0\.6\.0\/24\)$/m);
    expect(out).toMatch(/^allowlisted\s+no$/m);
    expect(out).toMatch(/^RULE\s+SCOPE\s+KEY\s+RATE\s+BURST\s+TOKENS$/m);
    // Two of three tokens taken; the bucket refills at 1/min, so a little more than 1 is left.
    expect(out).toMatch(/^read\s+ip\s+127\.0\.6\.5\s+1\/min\s+3\s+1(\.\d+)?$/m);
    expect(out).toMatch(/^read\s+prefix\s+127\.0\.6\.0\/24\s+1\/min\s+50\s+48(\.\d+)?$/m);
    expect(out).toMatch(/^strikes\s+0 of 100 in 1m earn a ban$/m);
    expect(out).toMatch(/^127\.0\.6\.5\s+0\s+-\s+#1, 10m$/m);

    const stranger = await runCli(['explain', '127.0.9.9', ...admin]);
    expect(stranger.stdout).toMatch(/^read\s+ip\s+127\.0\.9\.9\s+1\/min\s+3\s+full$/m);

    const json = await runCli(['explain', '127.0.6.5', '--json', ...admin]);
    const report = JSON.parse(json.stdout);
    expect(report.client).toEqual({ ip: '127.0.6.5', prefix: '127.0.6.0/24' });

    const bad = await runCli(['explain', 'banana', ...admin]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('"banana" is not an IP address');
  });

  it('status prints rates by decision and the top refused address and prefix after refused traffic', async () => {
    const agent = clientAgent('127.0.5.5');
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await request(proxy.url, { path: '/', agent })).status);
    agent.destroy();
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    // Rates count complete seconds only: wait (bounded) until the refusals' second has closed.
    const deadline = Date.now() + 5_000;
    for (;;) {
      const report = JSON.parse((await request(proxy.adminUrl, { path: '/status' })).body);
      if (report.rates.per_second.limited > 0) break;
      if (Date.now() > deadline) throw new Error('the limited rate never showed in /status');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const status = await runCli(['status', ...admin]);
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    const out = status.stdout;
    expect(out).toMatch(new RegExp(`^portcullis\\s+${proxy.adminUrl}, up \\d+`, 'm'));
    expect(out).toContain(`policy           ${proxy.policyFile}, loaded `);
    expect(out).toMatch(/^last reload\s+ok$/m);
    expect(out).toMatch(/^upstream\s+0\/32 in flight, 0\/\d+ queued$/m);
    expect(out).toMatch(/^ALLOWED\s+LIMITED\s+BLOCKED\s+BANNED/m);
    const rates = out.split('\n')[out.split('\n').findIndex((line) => line.startsWith('ALLOWED')) + 1] ?? '';
    expect(Number(rates.trim().split(/\s+/)[1])).toBeGreaterThan(0);
    expect(out).toMatch(/^127\.0\.5\.5\s+2\s+read$/m);
    expect(out).toMatch(/^127\.0\.5\.0\/24\s+2\s+read$/m);
    expect(out).toMatch(/^bans\s+0 active \(ip 0, prefix 0\)$/m);
    expect(out).toMatch(/^firewall\s+none, ok$/m);

    const json = await runCli(['status', '--json', ...admin]);
    expect(JSON.parse(json.stdout)).toMatchObject({ top_refused_addresses: expect.arrayContaining([{ key: '127.0.5.5', refused: 2, lastRule: 'read' }]) });
  });

  it('reload: "policy reloaded", or the problems as FILE:LINE:COL and exit 1 with the old policy in force', async () => {
    const ok = await runCli(['reload', ...withToken]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe('policy reloaded\n');

    await proxy.writePolicy(`${POLICY}concurrency:\n  upstream_max: 40\n`);
    const restart = await runCli(['reload', ...withToken]);
    expect(restart.stderr).toBe('');
    expect(restart.code).toBe(0);
    expect(restart.stdout).toBe('policy reloaded\nrestart needed for: concurrency.upstream_max (the running values stay until then)\n');

    await proxy.writePolicy(`${POLICY}concurrency:\n  upstream_mx: 10\n`);
    const broken = await runCli(['reload', ...withToken]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(new RegExp(`^${proxy.policyFile}:\\d+:\\d+: concurrency.upstream_mx: unknown key "upstream_mx"; did you mean "upstream_max"\\?$`, 'm'));
    expect(broken.stderr).toContain('policy not reloaded: 1 problem; the previous policy stays in force');

    const json = await runCli(['reload', '--json', ...withToken]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout).error.problems).toHaveLength(1);

    const noToken = await runCli(['reload', ...admin]);
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toContain('[PC_ERR_ADMIN_REQUEST]');
    await proxy.writePolicy(POLICY);
  });

  it('an unreachable admin API, or a URL that is not the admin API, is PC_ERR_ADMIN_UNREACHABLE with exit 1', async () => {
    // A port that was free a moment ago: nothing listens there.
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));

    const unreachable = await runCli(['status', '--admin', `http://127.0.0.1:${port}`]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain(`cannot reach the admin API at http://127.0.0.1:${port} (connect ECONNREFUSED`);
    expect(unreachable.stderr).toContain('is portcullis running');
    expect(unreachable.stderr).toMatch(/\[PC_ERR_ADMIN_UNREACHABLE\]\n$/);

    const proxyPort = await runCli(['bans', 'list', '--admin', proxy.url]);
    expect(proxyPort.code).toBe(1);
    expect(proxyPort.stderr).toContain("not the admin API's JSON");
    expect(proxyPort.stderr).toContain('[PC_ERR_ADMIN_UNREACHABLE]');
  });

  it('sends a CIDR percent-encoded in the path and the token as a bearer header', async () => {
    const seen: { method?: string; url?: string; authorization?: string }[] = [];
    const fake = http.createServer((req, res) => {
      seen.push({ method: req.method, url: req.url, authorization: req.headers.authorization });
      const lifted = { target: '192.0.2.0/24', scope: 'prefix', source: 'manual', reason: 'x', nth: 1, dry_run: false, started_at: '', expires_at: '', remaining_seconds: 60 };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ lifted }));
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    try {
      const result = await runCli(['bans', 'remove', '192.0.2.0/24', '--admin', `http://127.0.0.1:${(fake.address() as AddressInfo).port}/`, '--token-file', tokenFile]);
      expect(result.stdout).toBe('lifted the ban on 192.0.2.0/24 (1m were left)\n');
      expect(seen).toEqual([{ method: 'DELETE', url: '/bans/192.0.2.0%2F24', authorization: `Bearer ${TOKEN}` }]);
    } finally {
      await new Promise((resolve) => fake.close(resolve));
    }
  });

  it('usage errors exit 2 and every command has --help', async () => {
    for (const args of [['bans'], ['bans', 'frob'], ['bans', 'add'], ['bans', 'list', '--reason', 'x'], ['explain'], ['status', '--bogus'], ['status', '--admin', 'ftp://x']]) {
      const result = await runCli(args);
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.stderr).toContain('[PC_ERR_USAGE]');
    }
    for (const command of ['status', 'bans', 'explain', 'reload']) {
      const result = await runCli([command, '--help']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`^Usage: portcullis ${command}`));
      expect(result.stdout).toContain('--admin URL');
    }
    const help = await runCli(['help']);
    for (const command of ['serve', 'check', 'status', 'bans', 'explain', 'reload', 'help']) expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
  });
});
