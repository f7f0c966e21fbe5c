import { systemWallClock } from '../core/clock.js';
import type { ExplainReport } from '../admin/explain-report.js';
import { PortcullisError } from '../core/errors.js';
import { ADMIN_OPTIONS, ADMIN_OPTIONS_HELP, AdminClient, expectOk, resolveAdminTarget } from './admin-client.js';
import { banRow } from './bans-command.js';
import { formatRelative, formatSeconds } from './human-duration.js';
import { renderFacts, renderTable } from './text-table.js';
import { parseCommandArgs } from './usage-error.js';

export const EXPLAIN_HELP = `Usage: portcullis explain IP [options]

Shows why a client of a running portcullis is treated as it is, without
touching its state: its address and prefix; whether it is allowlisted (never
limited) or never banned (allowlisted, a trusted proxy or the upstream); the
level of each of its buckets; its strikes against the ban threshold; the bans
covering it; and, from its ban history, what the next ban of the address and
of its prefix would be. Reads only: no token needed.

Buckets: TOKENS is what is left now (a request needs its rule's cost); "full"
means the key is not tracked yet; a rule marked (shadow) only counts what it
would refuse.

Options:
${ADMIN_OPTIONS_HELP}`;

/** `portcullis explain IP`: returns the exit code. */
export async function runExplain(args: string[], out: NodeJS.WritableStream, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values, positionals } = parseCommandArgs('explain', { args, allowPositionals: true, options: ADMIN_OPTIONS });
  if (values.help) {
    out.write(`${EXPLAIN_HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new PortcullisError('PC_ERR_USAGE', `explain takes exactly one IP address, got ${positionals.length}\nRun 'portcullis explain --help' for usage.`);
  }
  const admin = await resolveAdminTarget(values, false, env);
  const answer = await new AdminClient(admin).call('GET', `/explain/${encodeURIComponent(positionals[0] as string)}`);
  if (values.json) out.write(answer.text);
  expectOk(answer, admin);
  if (!values.json) out.write(`${renderExplanation(answer.body as ExplainReport, systemWallClock.epochMs())}\n`);
  return 0;
}

/** The explain report as text, seen at `epochNowMs` (for "ended 2h ago"). */
export function renderExplanation(report: ExplainReport, epochNowMs: number): string {
  const yesNo = (flag: boolean) => (flag ? 'yes' : 'no');
  const { strikes } = report;
  const facts = renderFacts([
    ['client', `${report.client.ip} (prefix ${report.client.prefix})`],
    ['allowlisted', `${yesNo(report.allowlisted)}${report.allowlisted ? ' (never limited; blocks still apply)' : ''}`],
    ['never banned', yesNo(report.never_banned)],
    ['strikes', strikes === null ? 'escalation is off' : `${strikes.count} of ${strikes.threshold} in ${formatSeconds(strikes.window_seconds)} earn a ban`],
  ]);

  const buckets =
    report.buckets.length === 0
      ? '  (no limit rule applies)'
      : renderTable(
          ['RULE', 'SCOPE', 'KEY', 'RATE', { header: 'BURST', align: 'right' }, { header: 'TOKENS', align: 'right' }],
          report.buckets.map((bucket) => [
            // A site's own rule is `site/rule`; a global rule's bucket is shared by every site.
            `${bucket.site === undefined ? '' : `${bucket.site}/`}${bucket.rule}${bucket.shadow ? ' (shadow)' : ''}`,
            bucket.scope,
            bucket.key,
            bucket.rate,
            String(bucket.burst),
            bucket.tracked ? String(bucket.tokens) : 'full',
          ]),
        );
  const activeBans =
    report.active_bans.length === 0 ? '  (none)' : renderTable(['TARGET', 'SCOPE', 'SOURCE', { header: 'EXPIRES-IN', align: 'right' }, 'REASON'], report.active_bans.map(banRow));
  const history =
    report.history.length === 0
      ? '  (escalation is off)'
      : renderTable(
          ['TARGET', { header: 'PAST BANS', align: 'right' }, 'LAST BAN END', 'NEXT BAN'],
          report.history.map((record) => [
            record.target,
            String(record.past_bans),
            formatRelative(record.last_ban_ended_at, epochNowMs),
            `#${record.next_ban.nth}, ${formatSeconds(record.next_ban.duration_seconds)}`,
          ]),
        );
  return [facts, '', 'buckets', buckets, '', 'active bans', activeBans, '', 'ban history', history].join('\n');
}
