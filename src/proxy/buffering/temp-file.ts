import { randomUUID } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { PortcullisError } from '../../core/errors.js';

/** Names of portcullis's temp files start with this, so start-up can tell them from an operator's files. */
export const TEMP_FILE_PREFIX = 'portcullis-spill-';

/**
 * A temp file without a name: created in `dir` and unlinked at once, as
 * nginx does with its buffers, so nothing is left behind whatever happens to
 * the request or the process; the open handle alone keeps the space, and
 * closing it (or the process dying) frees it. Only a crash between the open
 * and the unlink can leave a file, which start-up removes (prepareTempDir).
 *
 * Reads and writes are positional; the owner keeps track of what is where.
 */
export class TempFile {
  readonly #handle: FileHandle;
  #closed: Promise<void> | null = null;

  private constructor(handle: FileHandle) {
    this.#handle = handle;
  }

  /** Creates one in `dir` (mode 0600: request bodies can hold passwords). Rejects with PC_ERR_BUFFER_TEMP. */
  static async create(dir: string): Promise<TempFile> {
    const path = join(dir, `${TEMP_FILE_PREFIX}${randomUUID()}`);
    let handle: FileHandle;
    try {
      handle = await open(path, 'wx+', 0o600);
    } catch (error) {
      throw tempError(`cannot create a temp file in ${dir}`, error);
    }
    try {
      await unlink(path);
    } catch (error) {
      await handle.close().catch(() => {});
      throw tempError(`cannot unlink the temp file ${path}`, error);
    }
    return new TempFile(handle);
  }

  /** Writes all of `data` at `position`. Rejects with PC_ERR_BUFFER_TEMP (ENOSPC, EIO, closed). */
  async write(data: Buffer, position: number): Promise<void> {
    try {
      let done = 0;
      // A regular file takes all at once; the loop only guards against a short write.
      while (done < data.length) {
        const { bytesWritten } = await this.#handle.write(data, done, data.length - done, position + done);
        if (bytesWritten === 0) throw new Error('the file system took no bytes');
        done += bytesWritten;
      }
    } catch (error) {
      throw tempError('cannot write a temp file', error);
    }
  }

  /** Reads exactly `length` bytes at `position` into a new Buffer. Rejects with PC_ERR_BUFFER_TEMP. */
  async read(length: number, position: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(length);
    try {
      let done = 0;
      while (done < length) {
        const { bytesRead } = await this.#handle.read(buffer, done, length - done, position + done);
        if (bytesRead === 0) throw new Error(`the file ended ${length - done} bytes early`);
        done += bytesRead;
      }
    } catch (error) {
      throw tempError('cannot read a temp file', error);
    }
    return buffer;
  }

  /** Closes the handle, freeing the space; waits for reads and writes in flight. Idempotent; never rejects. */
  close(): Promise<void> {
    // A failed close leaves nothing to do: the file has no name, and the descriptor is gone either way.
    this.#closed ??= this.#handle.close().catch(() => {});
    return this.#closed;
  }
}

function tempError(what: string, cause: unknown): PortcullisError {
  return new PortcullisError('PC_ERR_BUFFER_TEMP', `${what}: ${(cause as Error).message}`, { cause });
}
