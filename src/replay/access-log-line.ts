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

/**
 * `[vhost:port ]host ident user [time] "request" status bytes[ "referer" "agent"[ "portcullis:…"]]`:
 * vhost_combined, combined and common in one expression (vhost_combined has
 * four fields before the time, the others three). The last field is what
 * portcullis appends to the requests it answered itself (`access_log_refused`);
 * any other extra field is not one of these formats.
 */
const LINE = /^(?:(\S+) )?(\S+) \S+ \S+ \[(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\] "((?:[^"\\]|\\.)*)" (\d{3}) (?:\d+|-)(?: "(?:[^"\\]|\\.)*" "((?:[^"\\]|\\.)*)"(?: "portcullis:(?:[^"\\]|\\.)*")?)?\s*$/;

const MONTHS: Readonly<Record<string, number>> = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 };

/** Parses one line of Apache's combined, common or vhost_combined format; null when it is none of them. */
export function parseAccessLogLine(line: string): LoggedRequest | null {
  const m = LINE.exec(line);
  if (m === null) return null;
  const month = MONTHS[m[4] as string];
  if (month === undefined) return null;
  const offsetMin = (Number(m[10]) * 60 + Number(m[11])) * (m[9] === '-' ? -1 : 1);
  const epochMs = Date.UTC(Number(m[5]), month, Number(m[3]), Number(m[6]), Number(m[7]), Number(m[8])) - offsetMin * 60_000;
  const request = unescapeApache(m[12] as string).split(' ');
  // "-" or a bare target: Apache logs what it got, even when it is no request line.
  if (request.length !== 3 || request[0] === '') return null;
  const vhost = m[1] === undefined ? null : (m[1].replace(/:\d+$/, '') as string);
  const agent = m[14] === undefined ? null : unescapeApache(m[14]);
  return { vhost, client: m[2] as string, epochMs, method: request[0] as string, target: request[1] as string, status: Number(m[13]), userAgent: agent === '-' ? null : agent };
}

/** Undoes Apache's log escaping: `\"`, `\\` and `\xhh` (control and non-ASCII bytes), back to one character per byte as Node's `req.url` has them. */
function unescapeApache(text: string): string {
  if (!text.includes('\\')) return text;
  return text.replace(/\\(x[0-9a-fA-F]{2}|.)/g, (_, escape: string) => (escape.length === 3 ? String.fromCharCode(Number.parseInt(escape.slice(1), 16)) : escape === 'n' ? '\n' : escape === 't' ? '\t' : escape));
}
