import { parseApacheTime, unescapeApache } from './apache-time.js';

/** One request as an Apache access log line tells it. */
export interface LoggedRequest {
  /** `%v` of vhost_combined: the virtual host that served it; null in combined and common. */
  readonly vhost: string | null;
  /** `%h` (or `%a`): the client address as logged. */
  readonly client: string;
  /** `%t`: when the request was received, milliseconds since the epoch (Apache logs it to the second). */
  readonly epochMs: number;
  readonly method: string;
  /** The request-target of `%r`, unescaped to the bytes the client sent. */
  readonly target: string;
  /** `%>s`. */
  readonly status: number;
  /** `%{User-Agent}i`; null in common or when logged as `-`. */
  readonly userAgent: string | null;
  /** `%{X-Forwarded-For}i` of a custom format, when logged: believed only when `client` is a trusted proxy. */
  readonly forwardedFor?: string;
}

/*
 * `[vhost:port ]host ident user [time] "request" status bytes[ "referer" "agent"[ "portcullis:…"]]`:
 * vhost_combined, combined and common read by one scanner (vhost_combined has
 * four fields before the time, the others three). The last field is what
 * portcullis appends to the requests it answered itself (`access_log_refused`);
 * any other extra field is not one of these formats. A scanner rather than a
 * regular expression: a replay reads hundreds of thousands of lines a second,
 * and the expression's capture groups were a fifth of its time.
 */

const SPACE = 0x20;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const TIME_LENGTH = 26; // 24/Nov/2026:11:00:05 +0100
const PORTCULLIS_FIELD = ' "portcullis:';

/** The last `%t` read and its instant: the lines of one second share it. */
let lastTime = '';
let lastTimeMs = 0;

/** Parses one line of Apache's combined, common or vhost_combined format; null when it is none of them. */
export function parseAccessLogLine(line: string): LoggedRequest | null {
  const open = line.indexOf(' [');
  if (open < 0) return null;
  // Three space-separated fields before the time, or four with the vhost first.
  const first = line.indexOf(' ');
  const second = line.indexOf(' ', first + 1);
  const third = line.indexOf(' ', second + 1);
  let vhost: string | null = null;
  let clientStart = 0;
  if (third === open) {
    // common or combined: host ident user
  } else if (first > 0 && line.indexOf(' ', third + 1) === open) {
    vhost = line.slice(0, first);
    clientStart = first + 1;
  } else {
    return null;
  }
  const clientEnd = line.indexOf(' ', clientStart);
  if (clientEnd <= clientStart || hasEmptyField(line, clientStart, open)) return null;

  const timeStart = open + 2;
  if (line.charCodeAt(timeStart + TIME_LENGTH) !== 0x5d || line.charCodeAt(timeStart + TIME_LENGTH + 1) !== SPACE || line.charCodeAt(timeStart + TIME_LENGTH + 2) !== QUOTE) return null;
  let epochMs: number | null;
  if (lastTime.length === TIME_LENGTH && line.startsWith(lastTime, timeStart)) {
    epochMs = lastTimeMs;
  } else {
    const time = line.slice(timeStart, timeStart + TIME_LENGTH);
    epochMs = parseApacheTime(time);
    if (epochMs === null) return null;
    lastTime = time;
    lastTimeMs = epochMs;
  }

  const requestStart = timeStart + TIME_LENGTH + 3;
  const requestEnd = quotedEnd(line, requestStart);
  if (requestEnd < 0) return null;
  const request = unescapeApache(line.slice(requestStart, requestEnd));
  // "-" or a bare target: Apache logs what it got, even when it is no request line.
  const methodEnd = request.indexOf(' ');
  const targetEnd = request.indexOf(' ', methodEnd + 1);
  if (methodEnd <= 0 || targetEnd < 0 || request.indexOf(' ', targetEnd + 1) >= 0) return null;

  let at = requestEnd + 1;
  if (line.charCodeAt(at) !== SPACE) return null;
  const status = threeDigits(line, at + 1);
  if (status < 0 || line.charCodeAt(at + 4) !== SPACE) return null;
  at += 5;
  const bytesStart = at;
  if (line.charCodeAt(at) === 0x2d) at++;
  else while (isDigit(line.charCodeAt(at))) at++;
  if (at === bytesStart) return null;

  let userAgent: string | null = null;
  if (at < line.length && !isBlankFrom(line, at)) {
    // combined: "referer" "agent", then perhaps portcullis's own field.
    if (line.charCodeAt(at) !== SPACE || line.charCodeAt(at + 1) !== QUOTE) return null;
    const refererEnd = quotedEnd(line, at + 2);
    if (refererEnd < 0 || line.charCodeAt(refererEnd + 1) !== SPACE || line.charCodeAt(refererEnd + 2) !== QUOTE) return null;
    const agentEnd = quotedEnd(line, refererEnd + 3);
    if (agentEnd < 0) return null;
    const agent = unescapeApache(line.slice(refererEnd + 3, agentEnd));
    userAgent = agent === '-' ? null : agent;
    at = agentEnd + 1;
    if (line.startsWith(PORTCULLIS_FIELD, at)) {
      const fieldEnd = quotedEnd(line, at + 2);
      if (fieldEnd < 0) return null;
      at = fieldEnd + 1;
    }
    if (!isBlankFrom(line, at)) return null;
  }

  return {
    vhost: vhost === null ? null : stripPort(vhost),
    client: line.slice(clientStart, clientEnd),
    epochMs,
    method: request.slice(0, methodEnd),
    target: request.slice(methodEnd + 1, targetEnd),
    status,
    userAgent,
  };
}

/** The index of the quote that closes a quoted field whose content starts at `from`; -1 when the line ends first. */
function quotedEnd(line: string, from: number): number {
  // indexOf is native; a quote is escaped when an odd number of backslashes precede it.
  for (let quote = line.indexOf('"', from); quote >= 0; quote = line.indexOf('"', quote + 1)) {
    let backslashes = 0;
    for (let i = quote - 1; i >= from && line.charCodeAt(i) === BACKSLASH; i--) backslashes++;
    if (backslashes % 2 === 0) return quote;
  }
  return -1;
}

/** Whether a field between `from` and `to` is empty (two spaces in a row): the formats' fields are never empty. */
function hasEmptyField(line: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (line.charCodeAt(i) === SPACE && line.charCodeAt(i + 1) === SPACE) return true;
  return false;
}

function threeDigits(line: string, at: number): number {
  const a = line.charCodeAt(at) - 0x30;
  const b = line.charCodeAt(at + 1) - 0x30;
  const c = line.charCodeAt(at + 2) - 0x30;
  if (a < 0 || a > 9 || b < 0 || b > 9 || c < 0 || c > 9) return -1;
  return a * 100 + b * 10 + c;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isBlankFrom(line: string, from: number): boolean {
  for (let i = from; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c !== SPACE && (c < 0x09 || c > 0x0d)) return false;
  }
  return true;
}

/** `shop.example.org:443` → `shop.example.org`. */
function stripPort(vhost: string): string {
  const colon = vhost.lastIndexOf(':');
  if (colon < 0) return vhost;
  for (let i = colon + 1; i < vhost.length; i++) if (!isDigit(vhost.charCodeAt(i))) return vhost;
  return colon + 1 === vhost.length ? vhost : vhost.slice(0, colon);
}
