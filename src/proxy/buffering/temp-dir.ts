import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PortcullisError } from '../../core/errors.js';
import { TEMP_FILE_PREFIX, TempFile } from './temp-file.js';

/**
 * Gets `buffering.temp_dir` ready at start: creates it (0700: buffered
 * bodies can hold passwords), removes temp files an earlier process left
 * (only a crash between creating and unlinking one can), and proves it can
 * be written by creating one. Files not named like ours are left alone, so a
 * temp_dir pointed at a shared directory loses nothing of anyone else's.
 *
 * Resolves with null when the directory is usable, or with the reason it is
 * not (PC_ERR_BUFFER_TEMP); never rejects: buffering then works in memory only.
 */
export async function prepareTempDir(dir: string): Promise<PortcullisError | null> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    for (const name of await readdir(dir)) {
      if (name.startsWith(TEMP_FILE_PREFIX)) await rm(join(dir, name), { force: true });
    }
  } catch (error) {
    return new PortcullisError('PC_ERR_BUFFER_TEMP', `cannot prepare ${dir}: ${(error as Error).message}`, { cause: error });
  }
  try {
    await (await TempFile.create(dir)).close();
  } catch (error) {
    return error as PortcullisError;
  }
  return null;
}
