import { constants, createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { DEFAULT_POLICY_FILE, loadPolicyFile } from '../config/policy-loader.js';
import { parseDurationMs } from '../config/duration.js';
import { PortcullisError } from '../core/errors.js';
import { parseAccessLogLine } from '../replay/access-log-line.js';
import { renderReplayReport, type ReplayInput } from '../replay/replay-report.js';
import { ReplaySession } from '../replay/replay-session.js';
import { TimeOrderedFeed } from '../replay/time-ordered-feed.js';
import { parseCommandArgs } from './usage-error.js';

export const REPLAY_HELP = `Usage: portcullis replay [--config FILE] [--window 5s] [--json] LOGFILE...

Runs a policy over Apache access logs (combined, common or vhost_combined,
told apart line by line; .gz files and - for standard input too), through the
same engine the proxy uses, on the log's own timestamps: who would have been
limited, blocked and banned, and when; how much of the traffic would have
reached Apache; a timeline per minute; the top offenders. Lines come out of
order by up to the longest request (Apache logs a request when it ends,
stamped with when it began): they are put back in order within --window.
Malformed lines are counted and the first few shown, never fatal.

Options:
  -c, --config FILE   the policy to try (default: the embedded one)
  -w, --window TIME   how far out of order lines may be (default 5s)
      --json          the whole result as JSON, for scripts
  -h, --help          show this help`;

const MALFORMED_EXAMPLES = 5;

/** `portcullis replay`: returns the exit code. */
export async function runReplay(args: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values, positionals } = parseCommandArgs('replay', {
    args,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, window: { type: 'string', short: 'w', default: '5s' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    out.write(`${REPLAY_HELP}\n`);
    return 0;
  }
  if (positionals.length === 0) throw new PortcullisError('PC_ERR_USAGE', `replay needs at least one log file (or - for standard input)\nRun 'portcullis replay --help' for usage.`);
  const windowMs = parseDurationMs(values.window as string);
  if (windowMs === null || windowMs < 1000) throw new PortcullisError('PC_ERR_USAGE', `--window must be a duration of at least 1s like 5s, got "${values.window}"`);
  const config = await loadPolicyFile(values.config ?? DEFAULT_POLICY_FILE);
  const session = new ReplaySession(config);
  const feed = new TimeOrderedFeed(Math.ceil(windowMs / 1000));
  const input = { lines: 0, malformed: 0, malformedExamples: [] as string[], late: 0 };
  for (const file of positionals) {
    if (file !== '-') {
      await access(file, constants.R_OK).catch((error: Error) => {
        throw new PortcullisError('PC_ERR_REPLAY_INPUT', `cannot read log ${file}: ${error.message}`, { cause: error });
      });
    }
    let lineNumber = 0;
    let readError: Error | null = null;
    const stream = openLog(file, (error) => (readError = error));
    for await (const line of createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY })) {
      lineNumber++;
      if (line.trim() === '') continue;
      input.lines++;
      const request = parseAccessLogLine(line);
      if (request === null) {
        input.malformed++;
        if (input.malformedExamples.length < MALFORMED_EXAMPLES) input.malformedExamples.push(`${file}:${lineNumber}: ${line.slice(0, 200)}`);
        continue;
      }
      for (const due of feed.push(request)) session.decide(due);
    }
    if (readError !== null) throw new PortcullisError('PC_ERR_REPLAY_INPUT', `cannot read log ${file}: ${(readError as Error).message} (a truncated .gz?)`, { cause: readError });
  }
  for (const due of feed.drain()) session.decide(due);
  const result = session.result();
  const done: ReplayInput = { ...input, late: feed.late };
  out.write(values.json ? `${JSON.stringify({ input: done, ...result }, null, 2)}\n` : renderReplayReport(result, done));
  return 0;
}

/** A log file as a stream of text: `-` is standard input, `.gz` is gunzipped. A read error ends the stream and goes to `onError`. */
function openLog(file: string, onError: (error: Error) => void): Readable {
  const raw: Readable = file === '-' ? process.stdin : createReadStream(file);
  if (!file.endsWith('.gz')) {
    raw.on('error', (error) => {
      onError(error);
      raw.destroy();
    });
    return raw;
  }
  const gunzip = createGunzip();
  const fail = (error: Error) => {
    onError(error);
    gunzip.end();
  };
  raw.on('error', fail);
  gunzip.on('error', fail);
  return raw.pipe(gunzip);
}
