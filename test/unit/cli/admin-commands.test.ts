import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { BanJson } from '../../../src/admin/ban-json.js';
import type { ExplainReport } from '../../../src/admin/explain-report.js';
import type { StatusReport } from '../../../src/admin/status-report.js';
import { renderBanList, runBans } from '../../../src/cli/bans-command.js';
import { renderExplanation, runExplain } from '../../../src/cli/explain-command.js';
import { runReload } from '../../../src/cli/reload-command.js';
import { describeFirewall, renderStatus, runStatus } from '../../../src/cli/status-command.js';
import { PortcullisError } from '../../../src/core/errors.js';

const NOW = Date.parse('2025-01-01T12:00:00Z');

/** A stream that remembers what was written. */
function sink(): PassThrough & { text(): string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return Object.assign(stream, { text: () => text });
}

/** The usage error `run` rejects with (argument checks come before any call to the API). */
async function usageError(run: Promise<number>): Promise<string> {
  const error = await run.then(
    () => null,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(PortcullisError);
  expect((error as PortcullisError).code).toBe('PC_ERR_USAGE');
  return (error as PortcullisError).message;
}

function ban(fields: Partial<BanJson>): BanJson {
  return {
    target: '192.0.2.7',
    scope: 'ip',
    source: 'strikes',
    reason: '30 strikes in 60s (last: rule write)',
    nth: 1,
    dry_run: false,
    started_at: '2025-01-01T11:50:00.000Z',
    expires_at: '2025-01-01T12:00:00.000Z',
    remaining_seconds: 552,
    ...fields,
  };
}

describe('argument handling', () => {
  // Nothing listens on port 9; a check that wrongly reached the network would fail differently.
  const admin = ['--admin', 'http://127.0.0.1:9'];

  it('bans needs list, add or remove, with the right number of targets', async () => {
    expect(await usageError(runBans([...admin], sink(), {}))).toContain('bans needs a subcommand: list, add or remove');
    expect(await usageError(runBans(['ban', ...admin], sink(), {}))).toContain('unknown bans subcommand "ban"');
    expect(await usageError(runBans(['list', '192.0.2.7', ...admin], sink(), {}))).toContain('bans list takes no arguments');
    expect(await usageError(runBans(['add', ...admin], sink(), {}))).toContain('bans add takes exactly one IP or CIDR, got 0');
    expect(await usageError(runBans(['remove', '192.0.2.7', '192.0.2.8', ...admin], sink(), {}))).toContain('got 2');
    expect(await usageError(runBans(['remove', '192.0.2.7', '--reason', 'x', ...admin], sink(), {}))).toContain('only apply to bans add');
  });

  it('checks --duration has a unit before asking the API', async () => {
    const message = await usageError(runBans(['add', '192.0.2.7', '--duration', '3600', ...admin], sink(), {}));
    expect(message).toContain('--duration must be a duration like 10m, 1h or 7d (a unit is required), got "3600"');
    expect(message).toContain("Run 'portcullis bans --help' for usage.");
  });

  it('refuses unknown options and bad --admin URLs on every command', async () => {
    expect(await usageError(runStatus(['--verbose'], sink(), {}))).toContain("Unknown option '--verbose'");
    expect(await usageError(runStatus(['--admin', 'ftp://x'], sink(), {}))).toContain('http:// or https://');
    expect(await usageError(runExplain([...admin], sink(), {}))).toContain('explain takes exactly one IP address, got 0');
    expect(await usageError(runExplain(['192.0.2.7', '192.0.2.8', ...admin], sink(), {}))).toContain('got 2');
    expect(await usageError(runReload(['now', ...admin], sink(), sink(), {}))).toContain("Run 'portcullis reload --help'");
    expect(await usageError(runStatus(['--admin'], sink(), {}))).toContain("'--admin <value>' argument missing");
  });

  it('prints help for -h and --help without calling anything', async () => {
    for (const [run, first] of [
      [(out: PassThrough) => runBans(['-h'], out, {}), 'Usage: portcullis bans list'],
      [(out: PassThrough) => runStatus(['--help'], out, {}), 'Usage: portcullis status'],
      [(out: PassThrough) => runExplain(['--help'], out, {}), 'Usage: portcullis explain IP'],
      [(out: PassThrough) => runReload(['--help'], out, sink(), {}), 'Usage: portcullis reload'],
    ] as const) {
      const out = sink();
      expect(await run(out)).toBe(0);
      expect(out.text().startsWith(first)).toBe(true);
      expect(out.text()).toContain('--token-file FILE');
    }
  });
});

describe('renderBanList', () => {
  it('says so when there are no bans', () => {
    expect(renderBanList([])).toBe('no active bans');
  });

  it('lists the soonest expiry first, marking dry-run bans', () => {
    const text = renderBanList([
      ban({ target: '198.51.100.0/24', scope: 'prefix', source: 'prefix', reason: '2 bans in 198.51.100.0/24', remaining_seconds: 259_200 }),
      ban({}),
      ban({ target: '2001:db8::7', source: 'manual', reason: 'seen in the log', remaining_seconds: 7_200, dry_run: true }),
    ]);
    expect(text.split('\n')).toEqual([
      'TARGET           SCOPE   SOURCE   EXPIRES-IN  REASON',
      '192.0.2.7        ip      strikes      9m 12s  30 strikes in 60s (last: rule write)',
      '2001:db8::7      ip      manual           2h  (dry run, not enforced) seen in the log',
      '198.51.100.0/24  prefix  prefix           3d  2 bans in 198.51.100.0/24',
      '3 active bans',
    ]);
  });
});

const STATUS: StatusReport = {
  uptime_seconds: 7_384,
  policy: { file: '/etc/portcullis/policy.yaml', loaded_at: '2025-01-01T11:55:00.000Z', last_reload_ok: true },
  rates: { window_seconds: 10, per_second: { allowed: 41.3, limited: 2.5, blocked: 0.1, banned: 0, rejected: 0, queue_full: 0, queued_timeout: 0 } },
  upstream: { in_flight: 3, max: 32, queued: 0, queue_max: 512 },
  tracked_clients: { ip: 120, prefix: 45, concurrency: 3 },
  top_refused_addresses: [
    { key: '192.0.2.7', refused: 130, lastRule: 'write' },
    { key: '192.0.2.8', refused: 4, lastRule: '/xmlrpc.php' },
  ],
  top_refused_prefixes: Array.from({ length: 7 }, (_, i) => ({ key: `198.51.${100 + i}.0/24`, refused: 70 - i, lastRule: 'read' })),
  bans: {
    active: 1,
    by_scope: { ip: 1, prefix: 0 },
    dry_run: 0,
    firewall: { configured: 'nftables', active: 'nftables', ok: true, problem: null },
    latest: [ban({})],
  },
};

describe('renderStatus', () => {
  it('fits the report on one screen: facts, rates, top offenders, latest bans', () => {
    expect(renderStatus(STATUS, 'http://127.0.0.1:9181', NOW).split('\n')).toEqual([
      'portcullis       http://127.0.0.1:9181, up 2h 3m',
      'policy           /etc/portcullis/policy.yaml, loaded 2025-01-01T11:55:00.000Z (5m ago)',
      'last reload      ok',
      'upstream         3/32 in flight, 0/512 queued',
      'tracked clients  ip 120, prefix 45, concurrency 3',
      'bans             1 active (ip 1, prefix 0)',
      'firewall         nftables, ok',
      '',
      'requests per second, last 10 s',
      'ALLOWED  LIMITED  BLOCKED  BANNED  REJECTED  QUEUE_FULL  QUEUED_TIMEOUT',
      '   41.3      2.5      0.1       0         0           0               0',
      '',
      'top refused addresses, recent window',
      'ADDRESS    REFUSED  LAST RULE',
      '192.0.2.7      130  write',
      '192.0.2.8        4  /xmlrpc.php',
      '',
      'top refused prefixes, recent window',
      'PREFIX           REFUSED  LAST RULE',
      '198.51.100.0/24       70  read',
      '198.51.101.0/24       69  read',
      '198.51.102.0/24       68  read',
      '198.51.103.0/24       67  read',
      '198.51.104.0/24       66  read',
      '... 2 more (--json lists them)',
      '',
      'latest bans',
      'TARGET     SCOPE  SOURCE   EXPIRES-IN  REASON',
      '192.0.2.7  ip     strikes      9m 12s  30 strikes in 60s (last: rule write)',
    ]);
  });

  it('shows empty lists as (none) and a failed reload loudly', () => {
    const quiet: StatusReport = {
      ...STATUS,
      policy: { ...STATUS.policy, last_reload_ok: false },
      top_refused_addresses: [],
      top_refused_prefixes: [],
      bans: { ...STATUS.bans, active: 0, by_scope: { ip: 0, prefix: 0 }, dry_run: 2, latest: [] },
    };
    const text = renderStatus(quiet, 'http://127.0.0.1:9181', NOW);
    expect(text).toMatch(/^last reload\s+FAILED: the previous policy is in force/m);
    expect(text).toMatch(/^bans\s+0 active \(ip 0, prefix 0\), 2 dry run \(not enforced\)$/m);
    expect(text).toContain('top refused addresses, recent window\n  (none)\n');
    expect(text.endsWith('latest bans\n  (none)')).toBe(true);
  });
});

describe('describeFirewall', () => {
  it('says which backend is in use, and why not the configured one', () => {
    expect(describeFirewall({ configured: 'none', active: 'none', ok: true, problem: null })).toBe('none, ok');
    expect(describeFirewall({ configured: 'nftables', active: 'none', ok: false, problem: 'nft: not found' })).toBe(
      'none in use (nftables configured), FAILING: nft: not found; bans are still enforced by the proxy',
    );
  });
});

const EXPLAIN: ExplainReport = {
  client: { ip: '192.0.2.7', prefix: '192.0.2.0/24' },
  allowlisted: false,
  never_banned: false,
  buckets: [
    { rule: 'read', scope: 'ip', key: '192.0.2.7', rate: '20/s', burst: 100, tokens: 12.37, cost: 1, tracked: true, shadow: false },
    { rule: 'login', scope: 'ip', key: '192.0.2.7', rate: '5/min', burst: 5, tokens: 5, cost: 1, tracked: false, shadow: true },
    { rule: 'read', scope: 'prefix', key: '192.0.2.0/24', rate: '100/s', burst: 500, tokens: 480, cost: 1, tracked: true, shadow: false },
  ],
  strikes: { count: 3.5, threshold: 30, window_seconds: 60 },
  active_bans: [],
  history: [
    { target: '192.0.2.7', past_bans: 2, last_ban_ended_at: '2025-01-01T09:00:00.000Z', next_ban: { nth: 3, duration_seconds: 14_400 } },
    { target: '192.0.2.0/24', past_bans: 0, last_ban_ended_at: null, next_ban: { nth: 1, duration_seconds: 3_600 } },
  ],
};

describe('renderExplanation', () => {
  it('shows flags, the bucket table (shadow marked, untracked full), strikes, bans and the next bans', () => {
    expect(renderExplanation(EXPLAIN, NOW).split('\n')).toEqual([
      'client        192.0.2.7 (prefix 192.0.2.0/24)',
      'allowlisted   no',
      'never banned  no',
      'strikes       3.5 of 30 in 1m earn a ban',
      '',
      'buckets',
      'RULE            SCOPE   KEY           RATE   BURST  TOKENS',
      'read            ip      192.0.2.7     20/s     100   12.37',
      'login (shadow)  ip      192.0.2.7     5/min      5    full',
      'read            prefix  192.0.2.0/24  100/s    500     480',
      '',
      'active bans',
      '  (none)',
      '',
      'ban history',
      'TARGET        PAST BANS  LAST BAN END  NEXT BAN',
      '192.0.2.7             2  3h ago        #3, 4h',
      '192.0.2.0/24          0  -             #1, 1h',
    ]);
  });

  it('says when escalation is off and shows the bans covering the client', () => {
    const text = renderExplanation({ ...EXPLAIN, allowlisted: true, never_banned: true, strikes: null, history: [], active_bans: [ban({ source: 'manual', reason: 'by hand' })] }, NOW);
    expect(text).toMatch(/^allowlisted\s+yes \(never limited; blocks still apply\)$/m);
    expect(text).toMatch(/^strikes\s+escalation is off$/m);
    expect(text).toMatch(/^192\.0\.2\.7\s+ip\s+manual\s+9m 12s\s+by hand$/m);
    expect(text.endsWith('ban history\n  (escalation is off)')).toBe(true);
  });
});
