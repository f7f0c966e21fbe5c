import { DEFAULT_POLICY_FILE, loadPolicyFile } from '../config/policy-loader.js';
import { createLogger } from '../core/logger.js';
import { startPortcullis } from '../app/start-portcullis.js';
import { parseCommandArgs } from './usage-error.js';

export const SERVE_HELP = `Usage: portcullis serve [--config FILE]

Starts the proxy. Without --config it runs on the embedded default policy
(config/portcullis.yaml: listen 0.0.0.0:8000, upstream http://127.0.0.1:8080).
SIGTERM or SIGINT stop it gracefully: in-flight requests get up to 10 s.
SIGHUP, 'portcullis reload' or saving the policy file reload the policy: it is
validated first, and an invalid file is logged and ignored (the running policy
stays). Bucket levels of unchanged rules and requests in flight are kept.
SIGHUP also reopens the access log (after logrotate moved it).

Options:
  -c, --config FILE   policy file to run (validated strictly; see 'portcullis check')
  -h, --help          show this help

Environment:
  PORTCULLIS_LOG_LEVEL   trace, debug, info (default), warn, error`;

/** `portcullis serve`: runs until a termination signal; returns the exit code. */
export async function runServe(args: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values } = parseCommandArgs('serve', {
    args,
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    out.write(`${SERVE_HELP}\n`);
    return 0;
  }
  const file = values.config ?? DEFAULT_POLICY_FILE;
  const logger = createLogger();
  const config = await loadPolicyFile(file);
  logger.info({ policy: file }, 'policy loaded');
  const running = await startPortcullis(config, { logger, policyFile: file, watchPolicy: true });
  const onHangup = () => {
    // logrotate sends SIGHUP after moving the access log away: reopen it, and reload the policy.
    void running.reopenAccessLog();
    void running.reload('SIGHUP');
  };
  process.on('SIGHUP', onHangup);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      process.off('SIGHUP', onHangup);
      logger.info({ signal }, 'stopping: finishing in-flight requests');
      running.close(10_000).then(
        () => {
          logger.info('stopped');
          resolve(0);
        },
        (error: unknown) => {
          logger.error({ err: error }, 'error while stopping');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
