import { DEFAULT_POLICY_FILE, loadPolicyFile } from '../config/policy-loader.js';
import { parseDurationMs } from '../config/duration.js';
import { PortcullisError } from '../core/errors.js';
import { parseAccessLogLine, type LoggedRequest } from '../replay/access-log-line.js';
import { compileLogFormat, NAMED_LOG_FORMATS } from '../replay/log-format.js';
import { compareReplays } from '../replay/replay-comparison.js';
import { renderReplayReport, type ReplayInput } from '../replay/replay-report.js';
import { MAX_LOG_LINE_BYTES, type LogLine } from '../replay/log-line-splitter.js';
import { printableLogText } from '../replay/printable-log-text.js';
import { ReplaySession } from '../replay/replay-session.js';
import { TimeOrderedFeed } from '../replay/time-ordered-feed.js';
import { inputSize, inTimeOrder, logLineBatches, type InputPosition } from './replay-input.js';
import { ReplayProgress } from './replay-progress.js';
import { parseCommandArgs } from './usage-error.js';

export const REPLAY_HELP = `Usage: portcullis replay [--config FILE] [--against FILE] [--format FORMAT]
                         [--window 5s] [--json] LOGFILE...

Runs a policy over Apache access logs (.gz files and - for standard input
too), through the same engine the proxy uses, on the log's own timestamps:
who would have been limited, blocked and banned, and when; how much of the
traffic would have reached Apache; a timeline per minute; the top offenders;
and the collateral: clients refused but never banned whose requests look like
an ordinary visitor's (mostly GET or HEAD, mostly served 2xx/3xx, a browser's
User-Agent, spread over at least a minute at no more than one a second), the
false-positive suspects. With a host in the log (vhost_combined, %v or %V)
each request is decided by its site's rules. Lines come out of order by up to
the longest request (Apache logs a request when it ends, stamped with when it
began): they are put back in order within --window, and files are read
oldest first whatever order they are given in (access.log* lists the newest
first). Malformed lines (and lines over 1 MiB) are counted and the first
few shown, escaped; never fatal.

Options:
  -c, --config FILE    the policy to try (default: the embedded one)
      --against FILE   replay a second policy too and list the clients whose
                       outcome (banned, refused, untouched) differs
  -f, --format FORMAT  auto (default: combined, common and vhost_combined,
                       told apart line by line), one of those names, or an
                       Apache LogFormat string such as
                       '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"'
                       (%h %a %l %u %t %r %>s %s %b %B %O %I %D %T %p %v %V
                       and %{Header}i; %a wins over %h, %V over %v, and
                       %{X-Forwarded-For}i is believed from trusted proxies)
  -w, --window TIME    how far out of order lines may be (default 5s)
      --json           the whole result as JSON, for scripts
      --progress       a progress line on stderr (default: when stderr is a
                       terminal); --no-progress never
  -h, --help           show this help`;

const MALFORMED_EXAMPLES = 5;

/** `portcullis replay`: returns the exit code. */
export async function runReplay(args: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const { values, positionals } = parseCommandArgs('replay', {
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      against: { type: 'string' },
      format: { type: 'string', short: 'f', default: 'auto' },
      window: { type: 'string', short: 'w', default: '5s' },
      json: { type: 'boolean' },
      progress: { type: 'boolean' },
      'no-progress': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    out.write(`${REPLAY_HELP}\n`);
    return 0;
  }
  if (positionals.length === 0) throw new PortcullisError('PC_ERR_USAGE', `replay needs at least one log file (or - for standard input)\nRun 'portcullis replay --help' for usage.`);
  const windowMs = parseDurationMs(values.window as string);
  if (windowMs === null || windowMs < 1000) throw new PortcullisError('PC_ERR_USAGE', `--window must be a duration of at least 1s like 5s, got "${values.window}"`);
  const parse = lineReader(values.format as string);
  const config = await loadPolicyFile(values.config ?? DEFAULT_POLICY_FILE);
  const sessions = [new ReplaySession(config)];
  if (values.against !== undefined) sessions.push(new ReplaySession(await loadPolicyFile(values.against)));

  const totalBytes = await inputSize(positionals);
  const showProgress = values['no-progress'] !== true && (values.progress === true || (err as NodeJS.WriteStream).isTTY === true);
  const progress = showProgress ? new ReplayProgress(err, totalBytes) : null;
  const position: InputPosition = { bytesRead: 0 };
  const bytesRead = () => position.bytesRead;
  const feed = new TimeOrderedFeed(Math.ceil(windowMs / 1000));
  const input = { lines: 0, malformed: 0, malformedExamples: [] as string[], late: 0 };
  const [first, second] = sessions as [ReplaySession, ReplaySession | undefined];
  const due = second === undefined ? (request: LoggedRequest, atMs: number) => first.decide(request, atMs) : (request: LoggedRequest, atMs: number) => (first.decide(request, atMs), second.decide(request, atMs));
  const decide = (request: LoggedRequest) => feed.push(request, due);
  const ordered = await inTimeOrder(positionals, parse);
  if (ordered.reordered) err.write(`replay: reading the logs oldest first: ${ordered.files.join(' ')}\n`);
  for (const file of ordered.files) {
    let lineNumber = 0;
    for await (const batch of logLineBatches(file, position)) {
      for (const line of batch) {
        lineNumber++;
        progress?.line(bytesRead);
        if (typeof line === 'string' && line.trim() === '') continue;
        input.lines++;
        const request = typeof line === 'string' ? parse(line) : null;
        if (request === null) {
          input.malformed++;
          if (input.malformedExamples.length < MALFORMED_EXAMPLES) input.malformedExamples.push(`${file}:${lineNumber}: ${malformedExample(line)}`);
          continue;
        }
        decide(request);
      }
    }
  }
  feed.drain(due);
  progress?.finish();

  const [result, other] = sessions.map((session) => session.result()) as [ReturnType<ReplaySession['result']>, ReturnType<ReplaySession['result']> | undefined];
  const done: ReplayInput = { ...input, late: feed.late, format: values.format as string };
  const comparison = other === undefined ? undefined : { file: values.against as string, result: other, differences: compareReplays(result, other) };
  out.write(values.json ? `${JSON.stringify({ input: done, ...result, ...(comparison === undefined ? {} : { against: comparison }) }, null, 2)}\n` : renderReplayReport(result, done, comparison));
  return 0;
}

/** How a malformed line is shown: its start, escaped for a terminal. */
function malformedExample(line: LogLine): string {
  if (typeof line === 'string') return printableLogText(line.slice(0, 200));
  return `${printableLogText(line.start)}… (a line of ${line.bytes} bytes: longer than the ${MAX_LOG_LINE_BYTES / 1024 / 1024} MiB an access log line can be)`;
}

/** The line reader `--format` names. */
function lineReader(format: string): (line: string) => LoggedRequest | null {
  if (format === 'auto') return parseAccessLogLine;
  const named = NAMED_LOG_FORMATS[format as keyof typeof NAMED_LOG_FORMATS] as string | undefined;
  if (named === undefined && !format.includes('%')) {
    throw new PortcullisError('PC_ERR_USAGE', `--format must be auto, ${Object.keys(NAMED_LOG_FORMATS).join(', ')} or an Apache LogFormat string, got "${format}"`);
  }
  const compiled = compileLogFormat(named ?? format);
  return (line) => compiled.parse(line);
}
