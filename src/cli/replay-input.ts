import { constants, createReadStream } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
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
 * The lines of one log, with their numbers: `-` is standard input, `.gz` is
 * gunzipped. A read error (a truncated .gz, say) ends it with
 * PC_ERR_REPLAY_INPUT naming the file, after the lines read before it.
 */
export async function* logLines(file: string, position: InputPosition): AsyncGenerator<{ line: string; lineNumber: number }> {
  let readError: Error | null = null;
  const stream = openLog(file, position, (error) => (readError = error));
  let lineNumber = 0;
  for await (const line of createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY })) {
    lineNumber++;
    yield { line, lineNumber };
  }
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
