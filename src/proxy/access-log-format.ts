/**
 * Apache's `combined` log format, byte for byte as mod_log_config writes it:
 *
 *     %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"
 *
 * so that goaccess, awstats and fail2ban filters written for Apache's own log
 * read portcullis's log unchanged. Pure: the file handling is in access-log.ts.
 */

/**
 * The facts of one forwarded request. Strings are as Node's HTTP parser gives
 * them: one character per byte received (latin1), so `é` sent as UTF-8 arrives
 * as `Ã©` and is logged as `\xc3\xa9`, exactly as Apache logs those bytes.
 */
export interface AccessLogEntry {
  /** `%h`: the client address as portcullis identified it (after trusted proxies), e.g. `203.0.113.7` or `2001:db8::1`. */
  readonly clientIp: string;
  /** `%t`: when the request was received, wall-clock milliseconds since the epoch (`Date.now()`, not the monotonic Clock). Logged to the second. */
  readonly epochMs: number;
  /** The request method as received (`req.method`). */
  readonly method: string;
  /** The request target as received (`req.url`), query string included. */
  readonly target: string;
  /** The protocol version as Node reports it (`req.httpVersion`): `1.1`, not `HTTP/1.1`. */
  readonly httpVersion: string;
  /** `%>s`: the final status sent to the client. */
  readonly status: number;
  /** `%b`: response body bytes sent; 0 is logged as `-` (HEAD, 204, 304 send none). */
  readonly bytes: number;
  /** The Referer header; absent is logged as `-`, present but empty as `""`. */
  readonly referer?: string | undefined;
  /** The User-Agent header; absent is logged as `-`, present but empty as `""`. */
  readonly userAgent?: string | undefined;
  /** `%v` of vhost_combined: the host of the site that served it (its first exact name), else the request's own host. */
  readonly vhost?: string | undefined;
  /** `%p` of vhost_combined: the port the client connected to. */
  readonly port?: number | undefined;
  /**
   * For a request portcullis answered itself instead of forwarding (logged
   * only with `access_log_refused`): why, as `KIND:DETAIL`, e.g.
   * `block:/xmlrpc.php`, `limit:login`, `ban:203.0.113.0/24` (see
   * refusal-log-field.ts). Written as one extra quoted field after the
   * combined ones, `"portcullis:block:/xmlrpc.php"`. Absent on a forwarded
   * request, whose line stays exactly Apache's.
   */
  readonly refusal?: string | undefined;
}

/** Formats one entry as Apache's `vhost_combined`: `%v:%p` and then the `combined` line. */
export function formatVhostCombinedLine(entry: AccessLogEntry, tzOffsetMinutes?: number): string {
  return `${escapeLogItem(entry.vhost ?? '-')}:${entry.port ?? '-'} ${formatCombinedLine(entry, tzOffsetMinutes)}`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

/**
 * Formats one entry as an Apache `combined` line, without the trailing newline.
 * Every client-supplied field is escaped (see {@link escapeLogItem}), so the
 * line is printable ASCII and a client cannot end it early or forge another.
 * An entry with a `refusal` gets it as one more quoted field at the end: the
 * nine fields before it are unchanged, so a reader that takes the combined
 * fields from the start of the line (goaccess, awstats, a fail2ban
 * `failregex` without `$`) reads it as a combined line; Apache's own
 * equivalent would be a trailing `"%{portcullis}n"` note.
 * `%l` and `%u` are always `-`: portcullis runs no identd lookup and does not
 * authenticate, and Apache writes `%u` only for a user it authenticated.
 *
 * @param tzOffsetMinutes offset of local time from UTC for `%t`, east positive
 *   (`+0100` is 60). @default the process's local offset at `entry.epochMs`,
 *   as Apache uses local time; DST changes are followed per line.
 */
export function formatCombinedLine(entry: AccessLogEntry, tzOffsetMinutes?: number): string {
  const bytes = entry.bytes > 0 ? String(entry.bytes) : '-';
  return (
    `${escapeLogItem(entry.clientIp)} - - ${formatApacheTime(entry.epochMs, tzOffsetMinutes)} ` +
    `"${escapeLogItem(`${entry.method} ${entry.target} HTTP/${entry.httpVersion}`)}" ${entry.status} ${bytes} ` +
    `"${headerField(entry.referer)}" "${headerField(entry.userAgent)}"` +
    (entry.refusal === undefined ? '' : ` "portcullis:${escapeLogItem(entry.refusal)}"`)
  );
}

/**
 * Formats `%t`: `[25/Nov/2026:11:27:10 +0000]`, truncated to the second, in
 * the given offset (minutes east of UTC) or the process's local one.
 */
export function formatApacheTime(epochMs: number, tzOffsetMinutes?: number): string {
  const epochSec = Math.floor(epochMs / 1000);
  // Thousands of lines a second share their second: two Date objects and
  // a getTimezoneOffset each were ~1 % of a logged request's CPU.
  if (epochSec === lastTime.epochSec && tzOffsetMinutes === lastTime.tzOffsetMinutes) return lastTime.text;
  const text = formatSecond(epochSec, tzOffsetMinutes);
  lastTime = { epochSec, tzOffsetMinutes, text };
  return text;
}

/** The last second formatted, with the offset it was asked in. */
let lastTime: { readonly epochSec: number; readonly tzOffsetMinutes: number | undefined; readonly text: string } = { epochSec: Number.NaN, tzOffsetMinutes: undefined, text: '' };

function formatSecond(epochSec: number, tzOffsetMinutes: number | undefined): string {
  // Seconds, like tm_gmtoff: historical zones have offsets that are not whole minutes.
  const offsetSec = Math.round((tzOffsetMinutes ?? -new Date(epochSec * 1000).getTimezoneOffset()) * 60);
  const local = new Date((epochSec + offsetSec) * 1000);
  const abs = Math.abs(offsetSec);
  // Apache: sign from tm_gmtoff, then hours and whole minutes of its absolute value.
  const zone = `${offsetSec < 0 ? '-' : '+'}${pad2(Math.floor(abs / 3600))}${pad2(Math.floor((abs % 3600) / 60))}`;
  return (
    `[${pad2(local.getUTCDate())}/${MONTHS[local.getUTCMonth()]}/${local.getUTCFullYear()}:` +
    `${pad2(local.getUTCHours())}:${pad2(local.getUTCMinutes())}:${pad2(local.getUTCSeconds())} ${zone}]`
  );
}

/** Printable ASCII other than `"` and `\`: the bytes Apache logs as they are. */
const NEEDS_ESCAPE = /[^\x20\x21\x23-\x5b\x5d-\x7e]/;
const NAMED_ESCAPES: Readonly<Record<number, string>> = { 0x08: '\\b', 0x09: '\\t', 0x0a: '\\n', 0x0b: '\\v', 0x0d: '\\r', 0x22: '\\"', 0x5c: '\\\\' };

/**
 * Escapes a value as httpd's `ap_escape_logitem` does: `"` and `\` get a
 * backslash; `\b \n \r \t \v` their C escapes; every other control byte, DEL
 * and every byte ≥ 0x80 becomes `\xhh` (lowercase hex). The result is
 * printable ASCII, so a quoted field cannot be closed and no newline can start
 * a forged line. Characters above U+00FF (not from the wire; Node gives header
 * bytes as latin1) are escaped as their UTF-8 bytes.
 */
export function escapeLogItem(value: string): string {
  // Nearly every real value is plain ASCII: one regex test, no copy.
  if (!NEEDS_ESCAPE.test(value)) return value;
  let out = '';
  for (const char of value) {
    const code = char.codePointAt(0) as number;
    if (code > 0xff) {
      for (const byte of Buffer.from(char, 'utf8')) out += hexEscape(byte);
    } else if (code >= 0x20 && code <= 0x7e && code !== 0x22 && code !== 0x5c) {
      out += char;
    } else {
      out += NAMED_ESCAPES[code] ?? hexEscape(code);
    }
  }
  return out;
}

/** A request header for a quoted field: `-` when absent, as Apache writes a missing `%{...}i`. */
function headerField(value: string | undefined): string {
  return value === undefined ? '-' : escapeLogItem(value);
}

function hexEscape(byte: number): string {
  return `\\x${byte.toString(16).padStart(2, '0')}`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}
