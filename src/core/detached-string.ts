/**
 * A copy of `text` that shares no memory with it. V8 represents a slice of a
 * long string as a view into it, so a cache that keeps a 20-character slice
 * of a 1 MB chunk of log keeps the whole megabyte: a replay that remembers
 * one client per chunk held the entire log. What a long-lived table keeps
 * must be detached first. Lossless for any string (UTF-16 code units copied
 * as they are).
 */
export function detachedString(text: string): string {
  return Buffer.from(text, 'utf16le').toString('utf16le');
}
