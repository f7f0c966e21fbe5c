import type { BanJson } from '../admin/ban-json.js';
import { parseDurationMs } from '../config/duration.js';
import { PortcullisError } from '../core/errors.js';
import { ADMIN_OPTIONS, ADMIN_OPTIONS_HELP, AdminClient, expectOk, resolveAdminTarget } from './admin-client.js';
import { formatSeconds } from './human-duration.js';
import { printable, renderTable } from './text-table.js';
import { parseCommandArgs } from './usage-error.js';

export const BANS_HELP = `Usage: portcullis bans list [options]
       portcullis bans add IP|CIDR [--duration TIME] [--reason TEXT] [options]
       portcullis bans remove IP|CIDR [options]

Lists, adds and lifts bans on a running portcullis through its admin API. A
ban refuses every request from an address (192.0.2.7, 2001:db8::7) or a
network (192.0.2.0/24, 2001:db8::/48), in the kernel too when a firewall
backend is on. Adding and lifting need the admin token; listing does not.

  list     active bans as TARGET SCOPE SOURCE EXPIRES-IN REASON, soonest
           expiry first
  add      bans an address or network; a ban by hand counts in the target's
           history like any other, so its next ban is longer. Allowlisted
           addresses, trusted proxies and the upstream cannot be banned.
  remove   lifts the ban on exactly that target (a /24 ban by its CIDR)

Options:
  --duration TIME     (add) how long, 1s to 365d: 10m, 1h, 7d (default: what
                      the escalation policy would give the target's next ban)
  --reason TEXT       (add) why, shown in the list and logged (default:
                      "banned by hand via the admin API")
${ADMIN_OPTIONS_HELP}`;

const SUBCOMMANDS = ['list', 'add', 'remove'] as const;

/** `portcullis bans list|add|remove`: returns the exit code. */
export async function runBans(args: string[], out: NodeJS.WritableStream, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values, positionals } = parseCommandArgs('bans', {
    args,
    allowPositionals: true,
    options: { ...ADMIN_OPTIONS, duration: { type: 'string' }, reason: { type: 'string' } },
  });
  if (values.help) {
    out.write(`${BANS_HELP}\n`);
    return 0;
  }
  const [subcommand, ...targets] = positionals;
  if (!SUBCOMMANDS.includes(subcommand as (typeof SUBCOMMANDS)[number])) {
    throw usage(subcommand === undefined ? 'bans needs a subcommand: list, add or remove' : `unknown bans subcommand "${subcommand}": expected list, add or remove`);
  }
  if (subcommand === 'list') {
    if (targets.length > 0) throw usage(`bans list takes no arguments, got ${targets.join(' ')}`);
  } else if (targets.length !== 1) {
    throw usage(`bans ${subcommand} takes exactly one IP or CIDR, got ${targets.length}`);
  }
  if (subcommand !== 'add' && (values.duration !== undefined || values.reason !== undefined)) {
    throw usage(`--duration and --reason only apply to bans add`);
  }
  if (values.duration !== undefined && parseDurationMs(values.duration) === null) {
    throw usage(`--duration must be a duration like 10m, 1h or 7d (a unit is required), got ${JSON.stringify(values.duration)}`);
  }

  const admin = await resolveAdminTarget(values, subcommand !== 'list', env);
  const client = new AdminClient(admin);
  const banTarget = targets[0] as string;
  const answer =
    subcommand === 'list'
      ? await client.call('GET', '/bans')
      : subcommand === 'add'
        ? await client.call('POST', '/bans', { ip: banTarget, duration: values.duration, reason: values.reason })
        : // A CIDR's slash must not read as a path separator: DELETE /bans/192.0.2.0%2F24.
          await client.call('DELETE', `/bans/${encodeURIComponent(banTarget)}`);
  if (values.json) out.write(answer.text);
  expectOk(answer, admin);
  if (values.json) return 0;

  if (subcommand === 'list') out.write(`${renderBanList((answer.body as { bans: BanJson[] }).bans)}\n`);
  else if (subcommand === 'add') out.write(`${describeAdded((answer.body as { ban: BanJson }).ban)}\n`);
  else out.write(`${describeLifted((answer.body as { lifted: BanJson }).lifted)}\n`);
  return 0;
}

/** The ban list as a table, soonest expiry first; "no active bans" when empty. */
export function renderBanList(bans: readonly BanJson[]): string {
  if (bans.length === 0) return 'no active bans';
  const sorted = [...bans].sort((a, b) => a.remaining_seconds - b.remaining_seconds || a.target.localeCompare(b.target));
  const table = renderTable(['TARGET', 'SCOPE', 'SOURCE', { header: 'EXPIRES-IN', align: 'right' }, 'REASON'], sorted.map(banRow));
  return `${table}\n${bans.length} active ban${bans.length === 1 ? '' : 's'}`;
}

/** One ban as a table row: TARGET SCOPE SOURCE EXPIRES-IN REASON. */
export function banRow(ban: BanJson): string[] {
  // A dry-run ban is recorded but not enforced: say so where the eye reads why.
  return [ban.target, ban.scope, ban.source, formatSeconds(ban.remaining_seconds), ban.dry_run ? `(dry run, not enforced) ${ban.reason}` : ban.reason];
}

/** What `bans add` prints. */
export function describeAdded(ban: BanJson): string {
  return `banned ${ban.target} for ${formatSeconds(ban.remaining_seconds)} (its ban #${ban.nth}, until ${ban.expires_at}): ${printable(ban.reason)}`;
}

/** What `bans remove` prints. */
export function describeLifted(ban: BanJson): string {
  return `lifted the ban on ${ban.target} (${formatSeconds(ban.remaining_seconds)} were left)`;
}

function usage(message: string): PortcullisError {
  return new PortcullisError('PC_ERR_USAGE', `${message}\nRun 'portcullis bans --help' for usage.`);
}
