import { open, type FileHandle } from 'node:fs/promises';

/** Created rw-r-----: client addresses and URLs are personal data; the group is for log readers (adm). */
const FILE_MODE = 0o640;

/** Opens for appending (O_APPEND: each write lands at the end, even if another process also appends), creating with FILE_MODE. */
export async function openForAppend(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'a', FILE_MODE);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
    const hint =
      code === 'ENOENT' ? '; does the directory exist?'
      : code === 'EACCES' || code === 'EPERM' ? '; can the portcullis user write to it and its directory?'
      : code === 'EISDIR' ? '; access_log must name a file'
      : '';
    throw new Error(`cannot open access log ${path} for appending: ${code}${hint}`, { cause: error });
  }
}
