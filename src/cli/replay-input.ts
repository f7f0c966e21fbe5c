import { constants, createReadStream } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { PortcullisError } from '../core/errors.js';
import { LogLineSplitter, type LogLine } from '../replay/log-line-splitter.js';

/** Where reading the inputs has got, for the progress line. */
export interface InputPosition {
  /** Bytes read so far from the files (compressed bytes of a .gz). */
  bytesRead: number;
}

/** The inputs' total size on disk, or null when one is standard input. Throws PC_ERR_REPLAY_INPUT for a file that cannot be read. */
export async function inputSize(files: readonly string[]): Promise<number | null> {
  let total: number | null = 0;
  for (const file of files) {
    if (file === '-') {
      total = null;
      continue;
    }
    await access(file, constants.R_OK).catch((error: Error) => {
      throw new PortcullisError('PC_ERR_REPLAY_INPUT', `cannot read log ${file}: ${error.message}`, { cause: error });
    });
    const size = (await stat(file)).size;
    if (total !== null) total += size;
  }
  return total;
}

/**
 * The lines of one log in batches (one per chunk read, so the per-line work
 * stays synchronous): `-` is standard input, `.gz` is gunzipped. Bytes are
 * read one character per byte (latin1), as Apache writes them and as the
 * proxy's request targets are. A trailing `\r` is dropped; a line past
 * MAX_LOG_LINE_BYTES comes as an OverlongLine, never held whole. A read
 * error (a truncated .gz, say) ends it with PC_ERR_REPLAY_INPUT naming the
 * file, after the lines read before it.
 */
export async function* logLineBatches(file: string, position: InputPosition): AsyncGenerator<LogLine[]> {
  let readError: Error | null = null;
  const stream = openLog(file, position, (error) => (readError = error));
  const splitter = new LogLineSplitter();
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const lines = splitter.push(chunk.toString('latin1'));
    if (lines.length > 0) yield lines;
  }
  const last = splitter.end();
  if (last.length > 0) yield last;
  if (readError !== null) throw new PortcullisError('PC_ERR_REPLAY_INPUT', `cannot read log ${file}: ${(readError as Error).message} (a truncated .gz?)`, { cause: readError });
}

function openLog(file: string, position: InputPosition, onError: (error: Error) => void): Readable {
  const raw: Readable = file === '-' ? process.stdin : createReadStream(file, { highWaterMark: 1 << 20 });
  raw.on('data', (chunk: Buffer) => (position.bytesRead += chunk.length));
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

/** Lines read from the start of a file, at most, looking for its first time. */
const FIRST_TIME_LINES = 1_000;

/**
 * The files in time order, by the first line of each that `parse` reads
 * (shell globs give `access.log access.log.1 access.log.2.gz`, newest
 * first, and replaying them so would decide every older line late). Standard
 * input cannot be read twice: with `-` among them the order stays as given.
 */
export async function inTimeOrder(files: readonly string[], parse: (line: string) => { readonly epochMs: number } | null): Promise<{ files: string[]; reordered: boolean }> {
  if (files.length < 2 || files.includes('-')) return { files: [...files], reordered: false };
  const starts = new Map<string, number>();
  for (const file of files) {
    let first = Number.POSITIVE_INFINITY;
    let read = 0;
    const lines = logLineBatches(file, { bytesRead: 0 });
    try {
      scan: for await (const batch of lines) {
        for (const line of batch) {
          const request = typeof line === 'string' ? parse(line) : null;
          if (request !== null) {
            first = request.epochMs;
            break scan;
          }
          if (++read >= FIRST_TIME_LINES) break scan;
        }
      }
    } finally {
      await lines.return(undefined);
    }
    starts.set(file, first);
  }
  const ordered = [...files].sort((a, b) => (starts.get(a) as number) - (starts.get(b) as number));
  return { files: ordered, reordered: ordered.some((file, index) => file !== files[index]) };
}
