import { systemWallClock } from '../core/clock.js';
import type { StatusReport } from '../admin/status-report.js';
import { ADMIN_OPTIONS, ADMIN_OPTIONS_HELP, AdminClient, expectOk, resolveAdminTarget } from './admin-client.js';
import { banRow } from './bans-command.js';
import { formatRelative, formatSeconds } from './human-duration.js';
import { renderFacts, renderTable } from './text-table.js';
import { parseCommandArgs } from './usage-error.js';

export const STATUS_HELP = `Usage: portcullis status [options]

Shows a running portcullis on one screen: uptime; the policy file, when it was
loaded and whether the last reload worked; requests per second by decision
over the last 10 s; upstream slots and queue in use; clients tracked; the
addresses and prefixes refused most lately; active bans by scope, the firewall
backend's state and the latest bans. Reads only: no token needed.

Options:
${ADMIN_OPTIONS_HELP}`;

/** Rows shown in each list: five keep the whole report on one screen; --json has the API's ten. */
const ROWS_SHOWN = 5;

/** `portcullis status`: returns the exit code. */
export async function runStatus(args: string[], out: NodeJS.WritableStream, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseCommandArgs('status', { args, options: ADMIN_OPTIONS });
  if (values.help) {
    out.write(`${STATUS_HELP}\n`);
    return 0;
  }
  const admin = await resolveAdminTarget(values, false, env);
  const answer = await new AdminClient(admin).call('GET', '/status');
  if (values.json) out.write(answer.text);
  expectOk(answer, admin);
  if (!values.json) out.write(`${renderStatus(answer.body as StatusReport, admin.baseUrl, systemWallClock.epochMs())}\n`);
  return 0;
}

/** The status report as text, seen at `epochNowMs` (for "loaded 5m ago"). */
export function renderStatus(report: StatusReport, baseUrl: string, epochNowMs: number): string {
  const { policy, upstream, bans } = report;
  const tracked = Object.entries(report.tracked_clients)
    .map(([scope, count]) => `${scope} ${count}`)
    .join(', ');
  const facts = renderFacts([
    ['portcullis', `${baseUrl}, up ${formatSeconds(report.uptime_seconds)}`],
    ['policy', `${policy.file}, loaded ${policy.loaded_at} (${formatRelative(policy.loaded_at, epochNowMs)})`],
    ['last reload', policy.last_reload_ok ? 'ok' : "FAILED: the previous policy is in force; see the log or run 'portcullis reload'"],
    ['upstream', `${upstream.in_flight}/${upstream.max} in flight, ${upstream.queued}/${upstream.queue_max} queued`],
    ['tracked clients', tracked === '' ? 'none' : tracked],
    ['bans', `${bans.active} active (ip ${bans.by_scope.ip}, prefix ${bans.by_scope.prefix})${bans.dry_run > 0 ? `, ${bans.dry_run} dry run (not enforced)` : ''}`],
    ['firewall', describeFirewall(bans.firewall)],
  ]);

  const outcomes = Object.entries(report.rates.per_second);
  const rates = renderTable(
    outcomes.map(([outcome]) => ({ header: outcome.toUpperCase(), align: 'right' as const })),
    [outcomes.map(([, rate]) => formatRate(rate))],
  );
  const offenders = (rows: StatusReport['top_refused_addresses'], keyHeader: string) =>
    list(rows, (shown) => renderTable([keyHeader, { header: 'REFUSED', align: 'right' }, 'LAST RULE'], shown.map((row) => [row.key, String(row.refused), row.lastRule])));
  const latest = list(bans.latest, (shown) => renderTable(['TARGET', 'SCOPE', 'SOURCE', { header: 'EXPIRES-IN', align: 'right' }, 'REASON'], shown.map(banRow)));

  const bySite = Object.entries(report.rates_by_site ?? {});
  const siteRates =
    bySite.length === 0
      ? []
      : [
          '',
          `requests per second by site, last ${report.rates.window_seconds} s`,
          renderTable(['SITE', ...outcomes.map(([outcome]) => ({ header: outcome.toUpperCase(), align: 'right' as const }))], bySite.map(([site, perSecond]) => [site, ...outcomes.map(([outcome]) => formatRate(perSecond[outcome as keyof typeof perSecond] ?? 0))])),
        ];
  return [
    facts,
    '',
    `requests per second, last ${report.rates.window_seconds} s`,
    rates,
    ...siteRates,
    '',
    'top refused addresses, recent window',
    offenders(report.top_refused_addresses, 'ADDRESS'),
    '',
    'top refused prefixes, recent window',
    offenders(report.top_refused_prefixes, 'PREFIX'),
    '',
    'latest bans',
    latest,
  ].join('\n');
}

/** `nftables, ok`, or which backend is in use instead and why. */
export function describeFirewall(firewall: StatusReport['bans']['firewall']): string {
  const inUse = firewall.active === firewall.configured ? firewall.active : `${firewall.active} in use (${firewall.configured} configured)`;
  return firewall.ok ? `${inUse}, ok` : `${inUse}, FAILING: ${firewall.problem ?? 'unknown problem'}; bans are still enforced by the proxy`;
}

/** Rates with one decimal, `0` rather than `0.0` so the few non-zero ones stand out. */
function formatRate(perSecond: number): string {
  return perSecond === 0 ? '0' : perSecond.toFixed(1);
}

/** A table of the first ROWS_SHOWN rows, `(none)` when empty, and how many more there are. */
function list<T>(rows: readonly T[], table: (shown: readonly T[]) => string): string {
  if (rows.length === 0) return '  (none)';
  const shown = rows.slice(0, ROWS_SHOWN);
  return rows.length > shown.length ? `${table(shown)}\n... ${rows.length - shown.length} more (--json lists them)` : table(shown);
}
