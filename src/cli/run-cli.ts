import { PortcullisError } from '../core/errors.js';

const HELP = `Usage: portcullis <command> [options]

A reverse proxy that keeps floods off Apache.

Commands:
  serve [--config FILE]   run the proxy (default policy: config/portcullis.yaml)
  check FILE              validate a policy file; problems as FILE:LINE:COL: message
  status                  one screen on a running portcullis: rates, upstream,
                          top refused clients, bans, firewall
  bans list|add|remove    list, add or lift bans (adding and lifting need the token)
  explain IP              why a client is treated as it is: buckets, strikes, bans
  reload                  reload the policy of a running portcullis; problems as
                          FILE:LINE:COL: message
  replay LOGFILE...       try a policy on Apache access logs: who would have been
                          limited, blocked and banned, and when
  init --out DIR          read Apache's layout (apache2ctl -S) and certbot's
                          certificates; write a starter policy, the Apache
                          changes and the systemd unit into DIR, and print the
                          plan that applies them (nothing is run)
  help                    show this help

status, bans, explain and reload talk to the admin API of a running portcullis
(--admin URL, default: admin.listen of the policy; --json for scripts).
Run 'portcullis <command> --help' for a command's options.`;

/**
 * Runs the CLI with `argv` (without node and script); resolves to the exit
 * code. Each command's module is loaded when it runs: `replay` or `check`
 * need not load the proxy, undici and prom-client first.
 */
export async function runCli(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await (await import('./serve-command.js')).runServe(rest, process.stdout);
      case 'check':
        return await (await import('./check-command.js')).runCheck(rest, process.stdout, process.stderr);
      case 'status':
        return await (await import('./status-command.js')).runStatus(rest, process.stdout);
      case 'bans':
        return await (await import('./bans-command.js')).runBans(rest, process.stdout);
      case 'explain':
        return await (await import('./explain-command.js')).runExplain(rest, process.stdout);
      case 'reload':
        return await (await import('./reload-command.js')).runReload(rest, process.stdout, process.stderr);
      case 'replay':
        return await (await import('./replay-command.js')).runReplay(rest, process.stdout, process.stderr);
      case 'init':
        return await (await import('./init-command.js')).runInit(rest, process.stdout, process.stderr);
      case undefined:
      case 'help':
      case '-h':
      case '--help':
        process.stdout.write(`${HELP}\n`);
        return command === undefined ? 2 : 0;
      default:
        throw new PortcullisError('PC_ERR_USAGE', `unknown command "${command}"\n\n${HELP}`);
    }
  } catch (error) {
    if (error instanceof PortcullisError) {
      process.stderr.write(`portcullis: ${error.message} [${error.code}]\n`);
      return error.code === 'PC_ERR_USAGE' ? 2 : 1;
    }
    throw error;
  }
}
