import { constants, createReadStream } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { PortcullisError } from '../core/errors.js';

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
 * proxy's request targets are. A trailing `\r` is dropped. A read error (a
 * truncated .gz, say) ends it with PC_ERR_REPLAY_INPUT naming the file, after
 * the lines read before it.
 */
export async function* logLineBatches(file: string, position: InputPosition): AsyncGenerator<string[]> {
  let readError: Error | null = null;
  const stream = openLog(file, position, (error) => (readError = error));
  let rest = '';
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const text = rest + chunk.toString('latin1');
    const lines = text.split('\n');
    rest = lines.pop() as string;
    yield text.includes('\r') ? lines.map(withoutCarriageReturn) : lines;
  }
  if (rest !== '') yield [withoutCarriageReturn(rest)];
  if (readError !== null) throw new PortcullisError('PC_ERR_REPLAY_INPUT', `cannot read log ${file}: ${(readError as Error).message} (a truncated .gz?)`, { cause: readError });
}

function withoutCarriageReturn(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
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
