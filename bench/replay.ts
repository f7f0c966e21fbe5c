/**
 * `portcullis replay` throughput on a generated combined log shaped like a
 * small WordPress server's day (bench/support/typical-access-log.ts), pinned
 * to one core, median of --rounds runs, against fail2ban-regex on the same
 * log with an xmlrpc POST filter (it only says which lines match, nothing
 * about bans). Prints a table and writes bench/results/replay.json.
 *
 *   npm run build && npx tsx bench/replay.ts [--lines 1000000] [--rounds 3]
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { environment, median, printTable, writeResult } from './support/bench-report.js';
import { hasTool, pinned } from './support/bench-tools.js';
import { writeTypicalAccessLog } from './support/typical-access-log.js';

const { values } = parseArgs({ options: { lines: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '3' } } });
const lines = Number(values.lines);
const rounds = Number(values.rounds);
if (!Number.isSafeInteger(lines) || lines < 1000) throw new RangeError(`--lines must be a whole number of at least 1000, got ${values.lines}`);
if (!Number.isSafeInteger(rounds) || rounds < 1) throw new RangeError(`--rounds must be a positive whole number, got ${values.rounds}`);

const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const dir = await mkdtemp(join(tmpdir(), 'portcullis-bench-replay-'));
try {
  const log = join(dir, 'access.log');
  console.log(`bench/replay: writing a ${lines.toLocaleString('en-US')}-line log to ${log} …`);
  const { bytes, floodLines } = await writeTypicalAccessLog(log, lines);

  /** Wall seconds of one pinned run, and what it printed. */
  const timed = (command: string, args: string[]): { seconds: number; stdout: string } => {
    const [cmd, argv] = pinned(1, command, args);
    const started = process.hrtime.bigint();
    const stdout = execFileSync(cmd, argv, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    return { seconds: Number(process.hrtime.bigint() - started) / 1e9, stdout };
  };

  const replaySeconds: number[] = [];
  let banned = 0;
  for (let round = 0; round < rounds; round++) {
    const run = timed(process.execPath, [CLI, 'replay', '--no-progress', '--json', log]);
    replaySeconds.push(run.seconds);
    banned = (JSON.parse(run.stdout) as { offenders: { bannedAtMs: number | null }[] }).offenders.filter((offender) => offender.bannedAtMs !== null).length;
  }

  let fail2ban: { seconds: number; matched: number } | null = null;
  if (hasTool('fail2ban-regex')) {
    // The filter of an http-post-dos jail for the seed story, on the log's own date format.
    const filter = join(dir, 'xmlrpc.conf');
    await writeFile(filter, '[Definition]\nfailregex = ^<HOST> -[^"]*"POST /xmlrpc\\.php\nignoreregex =\n');
    const run = timed('fail2ban-regex', ['--print-no-missed', log, filter]);
    fail2ban = { seconds: run.seconds, matched: Number(/Failregex: (\d+) total/.exec(run.stdout)?.[1] ?? Number.NaN) };
  } else {
    console.log('bench/replay: fail2ban-regex is not installed (sudo apt-get install fail2ban); its row is left out');
  }

  const replayMedian = median(replaySeconds);
  const rows = [
    ['portcullis replay (one core)', replayMedian.toFixed(2), Math.round(lines / replayMedian).toLocaleString('en-US'), `${banned} banned`],
    ...(fail2ban === null ? [] : [['fail2ban-regex (one core)', fail2ban.seconds.toFixed(2), Math.round(lines / fail2ban.seconds).toLocaleString('en-US'), `${fail2ban.matched} lines matched`]]),
  ];
  const env = environment();
  printTable(`replay of ${lines.toLocaleString('en-US')} lines (${(bytes / 1e6).toFixed(0)} MB, ${floodLines} flood lines), median of ${rounds}; ${env.cpu}, ${env.node}`, ['', 's', 'lines/s', 'found'], rows);
  if (fail2ban !== null) console.log(`ratio: portcullis replay reads ${(fail2ban.seconds / replayMedian).toFixed(1)}× as many lines per second as fail2ban-regex`);
  const file = await writeResult('replay', {
    lines,
    bytes,
    floodLines,
    rounds,
    replay: { seconds: replaySeconds, medianSeconds: replayMedian, linesPerSecond: lines / replayMedian, banned },
    fail2ban: fail2ban === null ? null : { ...fail2ban, linesPerSecond: lines / fail2ban.seconds },
  });
  console.log(`wrote ${file}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
