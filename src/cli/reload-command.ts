import { ADMIN_OPTIONS, ADMIN_OPTIONS_HELP, AdminClient, expectOk, resolveAdminTarget } from './admin-client.js';
import { printable } from './text-table.js';
import { parseCommandArgs } from './usage-error.js';

export const RELOAD_HELP = `Usage: portcullis reload [options]

Asks a running portcullis to reload its policy file, like SIGHUP does, and
says how it went. The file is validated first: when it is invalid, each
problem is printed as FILE:LINE:COL: message, the previous policy stays in
force, and the exit code is 1. Bucket levels of unchanged rules and requests
in flight are kept. Keys that only change at restart (listen, admin.listen,
...) are named: their running values stay until then. Needs the admin token.

Options:
${ADMIN_OPTIONS_HELP}`;

/** The API's answer to POST /reload. */
interface ReloadAnswer {
  readonly reloaded?: boolean;
  readonly restart_needed_for?: readonly string[];
  readonly error?: { readonly problems?: readonly string[] };
}

/** `portcullis reload`: returns the exit code. */
export async function runReload(args: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseCommandArgs('reload', { args, options: ADMIN_OPTIONS });
  if (values.help) {
    out.write(`${RELOAD_HELP}\n`);
    return 0;
  }
  const admin = await resolveAdminTarget(values, true, env);
  const answer = await new AdminClient(admin).call('POST', '/reload');
  const body = answer.body as ReloadAnswer;
  if (values.json) out.write(answer.text);
  const problems = body.error?.problems;
  if (answer.status === 422 && Array.isArray(problems)) {
    // The same form as 'portcullis check': editors jump to FILE:LINE:COL.
    if (!values.json) {
      for (const problem of problems) err.write(`${printable(String(problem))}\n`);
      err.write(`policy not reloaded: ${problems.length} problem${problems.length === 1 ? '' : 's'}; the previous policy stays in force\n`);
    }
    return 1;
  }
  expectOk(answer, admin);
  if (values.json) return 0;
  out.write('policy reloaded\n');
  const restartNeeded = body.restart_needed_for ?? [];
  if (restartNeeded.length > 0) out.write(`restart needed for: ${restartNeeded.join(', ')} (the running values stay until then)\n`);
  return 0;
}
