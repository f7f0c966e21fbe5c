/** A pino logger for tests whose lines are kept, parsed, so tests assert on what an operator would read. */
import { Writable } from 'node:stream';
import { pino, type Level, type Logger } from 'pino';

/** One parsed log line. */
export type LogEntry = Record<string, unknown>;

/** A logger at `level` (info by default) that hands every line it writes, parsed, to `onEntry`. */
export function capturingLogger(onEntry: (entry: LogEntry) => void, level: Level = 'info'): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') onEntry(JSON.parse(line) as LogEntry);
      callback();
    },
  });
  return pino({ level }, sink);
}
