import { detachedString } from '../core/detached-string.js';

/**
 * The longest line taken for a log line, in bytes (one character per byte:
 * logs are read as latin1). Apache's own limits (LimitRequestLine and
 * LimitRequestFieldSize, 8 KiB each) keep a combined line under about
 * 25 KiB; a format that logs many headers stays well under this. Anything
 * longer is no access log line (a binary file, a log whose newlines were
 * lost) and is skipped without being held.
 */
export const MAX_LOG_LINE_BYTES = 1024 * 1024;

/** How much of an overlong line is kept, to show the user which one it was. */
const OVERLONG_START_CHARS = 200;

/** A line longer than MAX_LOG_LINE_BYTES: its first characters and its length; the rest was never held. */
export interface OverlongLine {
  readonly start: string;
  readonly bytes: number;
}

/** A line of a log, or the note of one too long to be one. */
export type LogLine = string | OverlongLine;

/**
 * Cuts the chunks of a log into lines, dropping a trailing `\r`. A line
 * split across chunks is joined, up to MAX_LOG_LINE_BYTES; past that its
 * bytes are only counted until its newline, so memory stays bounded by two
 * chunks whatever the input is.
 */
export class LogLineSplitter {
  #rest = '';
  #overlong: { start: string; bytes: number } | null = null;

  /** The lines `chunk` completes, in order. */
  push(chunk: string): LogLine[] {
    let text = chunk;
    let finishedOverlong: OverlongLine | null = null;
    if (this.#overlong !== null) {
      const end = text.indexOf('\n');
      if (end === -1) {
        this.#overlong.bytes += text.length;
        return [];
      }
      this.#overlong.bytes += withoutCarriageReturn(text.slice(0, end)).length;
      finishedOverlong = this.#overlong;
      this.#overlong = null;
      text = text.slice(end + 1);
    } else if (this.#rest !== '') {
      text = this.#rest + text;
    }
    const lines: LogLine[] = text.split('\n');
    const rest = lines.pop() as string;
    // Checked line by line only when some line could need it: the common chunk holds neither.
    if (text.length > MAX_LOG_LINE_BYTES || text.includes('\r')) {
      for (let i = 0; i < lines.length; i++) lines[i] = asLogLine(lines[i] as string);
    }
    if (rest.length > MAX_LOG_LINE_BYTES) {
      this.#overlong = { start: detachedString(rest.slice(0, OVERLONG_START_CHARS)), bytes: rest.length };
      this.#rest = '';
    } else {
      this.#rest = rest;
    }
    if (finishedOverlong !== null) lines.unshift(finishedOverlong);
    return lines;
  }

  /** The last line, when the log does not end with a newline. */
  end(): LogLine[] {
    const last: LogLine[] = this.#overlong !== null ? [this.#overlong] : this.#rest !== '' ? [withoutCarriageReturn(this.#rest)] : [];
    this.#rest = '';
    this.#overlong = null;
    return last;
  }
}

function asLogLine(line: string): LogLine {
  const trimmed = withoutCarriageReturn(line);
  return trimmed.length > MAX_LOG_LINE_BYTES ? { start: detachedString(trimmed.slice(0, OVERLONG_START_CHARS)), bytes: trimmed.length } : trimmed;
}

function withoutCarriageReturn(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}
