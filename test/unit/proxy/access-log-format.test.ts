import { afterEach, describe, expect, it } from 'vitest';
import { escapeLogItem, formatApacheTime, formatCombinedLine, formatVhostCombinedLine, type AccessLogEntry } from '../../../src/proxy/access-log-format.js';

/** The combined-format line as log tools parse it: nine fields, quoted ones may hold backslash escapes. */
const COMBINED = /^(\S+) (\S+) (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$/;

const AT = Date.UTC(2026, 10, 25, 11, 27, 10, 999);

function entry(overrides: Partial<AccessLogEntry> = {}): AccessLogEntry {
  return {
    clientIp: '203.0.113.7',
    epochMs: AT,
    method: 'GET',
    target: '/path?q=1',
    httpVersion: '1.1',
    status: 200,
    bytes: 1234,
    referer: 'https://example.com/',
    userAgent: 'Mozilla/5.0 (X11; Linux x86_64)',
    ...overrides,
  };
}

/** Undoes ap_escape_logitem, to show the escaping loses nothing. */
function unescape(field: string): string {
  const named: Record<string, string> = { b: '\b', n: '\n', r: '\r', t: '\t', v: '\v', '"': '"', '\\': '\\' };
  return field.replace(/\\(x[0-9a-f]{2}|.)/g, (_, e: string) => (e.length === 3 ? String.fromCharCode(parseInt(e.slice(1), 16)) : (named[e] as string)));
}

describe('formatCombinedLine', () => {
  it('writes the nine fields of Apache combined format', () => {
    expect(formatCombinedLine(entry(), 0)).toBe(
      '203.0.113.7 - - [25/Nov/2026:11:27:10 +0000] "GET /path?q=1 HTTP/1.1" 200 1234 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)"',
    );
  });

  it('writes - for absent Referer and User-Agent, and "" for empty ones, as Apache does', () => {
    expect(formatCombinedLine(entry({ referer: undefined, userAgent: undefined }), 0)).toMatch(/ 200 1234 "-" "-"$/);
    expect(formatCombinedLine(entry({ referer: '', userAgent: '' }), 0)).toMatch(/ 200 1234 "" ""$/);
  });

  it('writes - for a response without body bytes (HEAD, 204, 304)', () => {
    expect(formatCombinedLine(entry({ method: 'HEAD', bytes: 0 }), 0)).toContain('"HEAD /path?q=1 HTTP/1.1" 200 - "');
    expect(formatCombinedLine(entry({ status: 304, bytes: 0 }), 0)).toContain('" 304 - "');
  });

  it('writes IPv6 clients as they are, without brackets', () => {
    expect(formatCombinedLine(entry({ clientIp: '2001:db8::1' }), 0)).toMatch(/^2001:db8::1 - - \[/);
    expect(formatCombinedLine(entry({ clientIp: '::ffff:192.0.2.1' }), 0)).toMatch(/^::ffff:192\.0\.2\.1 - - \[/);
    expect(COMBINED.exec(formatCombinedLine(entry({ clientIp: '2001:db8::1' }), 0))?.[1]).toBe('2001:db8::1');
  });

  it('keeps the request line as received, HTTP/1.0 and absolute-form included', () => {
    expect(formatCombinedLine(entry({ method: 'POST', target: 'http://example.com/x?a=b&c', httpVersion: '1.0' }), 0)).toContain(
      '"POST http://example.com/x?a=b&c HTTP/1.0" 200',
    );
  });

  it('writes - for %l and %u: portcullis neither asks identd nor authenticates', () => {
    expect(COMBINED.exec(formatCombinedLine(entry(), 0))?.slice(2, 4)).toEqual(['-', '-']);
  });
});

describe('a request portcullis answered itself (access_log_refused)', () => {
  /** The nine combined fields, not anchored at the end: how goaccess and most combined readers take a line. */
  const COMBINED_PREFIX = new RegExp(COMBINED.source.slice(0, -1));

  it('is the combined line, byte for byte, and one more quoted field "portcullis:KIND:DETAIL"', () => {
    const refused = entry({ method: 'POST', target: '/xmlrpc.php', status: 403, bytes: 10, refusal: 'block:/xmlrpc.php' });
    const line = formatCombinedLine(refused, 0);
    expect(line).toBe(`${formatCombinedLine({ ...refused, refusal: undefined }, 0)} "portcullis:block:/xmlrpc.php"`);
    expect(COMBINED_PREFIX.exec(line)?.slice(5, 8)).toEqual(['POST /xmlrpc.php HTTP/1.1', '403', '10']);
    expect(COMBINED.test(line)).toBe(false);
  });

  it('leaves a forwarded request\'s line as Apache writes it: no extra field', () => {
    expect(formatCombinedLine(entry(), 0)).toMatch(COMBINED);
  });

  it('escapes the detail like any other field, and follows vhost_combined too', () => {
    expect(formatCombinedLine(entry({ refusal: 'reject:a "quoted"\nreason' }), 0)).toMatch(/ "portcullis:reject:a \\"quoted\\"\\nreason"$/);
    expect(formatVhostCombinedLine(entry({ vhost: 'shop.test', port: 80, refusal: 'ban:203.0.113.0/24' }), 0)).toMatch(/^shop\.test:80 203\.0\.113\.7 .* "portcullis:ban:203\.0\.113\.0\/24"$/);
  });
});

describe('formatApacheTime', () => {
  const savedTz = process.env['TZ'];
  afterEach(() => {
    if (savedTz === undefined) delete process.env['TZ'];
    else process.env['TZ'] = savedTz;
  });

  it('truncates to the second and pads day, hour, minute and second', () => {
    expect(formatApacheTime(Date.UTC(2026, 0, 5, 3, 4, 5, 999), 0)).toBe('[05/Jan/2026:03:04:05 +0000]');
  });

  it('applies the offset, rolling over the day and the year', () => {
    expect(formatApacheTime(AT, 60)).toBe('[25/Nov/2026:12:27:10 +0100]');
    expect(formatApacheTime(Date.UTC(2026, 11, 31, 23, 59, 59), 60)).toBe('[01/Jan/2027:00:59:59 +0100]');
    expect(formatApacheTime(Date.UTC(2026, 0, 1, 2, 0, 0), -210)).toBe('[31/Dec/2025:22:30:00 -0330]');
    expect(formatApacheTime(AT, 345)).toBe('[25/Nov/2026:17:12:10 +0545]');
    expect(formatApacheTime(AT, 840)).toBe('[26/Nov/2026:01:27:10 +1400]');
  });

  it('uses the process local time zone by default, following DST line by line', () => {
    process.env['TZ'] = 'America/New_York';
    expect(formatApacheTime(Date.UTC(2026, 0, 15, 12, 0, 0))).toBe('[15/Jan/2026:07:00:00 -0500]');
    expect(formatApacheTime(Date.UTC(2026, 6, 15, 12, 0, 0))).toBe('[15/Jul/2026:08:00:00 -0400]');
    process.env['TZ'] = 'Asia/Kathmandu';
    expect(formatCombinedLine(entry())).toContain('[25/Nov/2026:17:12:10 +0545]');
  });

  it('names every month as Apache does', () => {
    const months = Array.from({ length: 12 }, (_, m) => formatApacheTime(Date.UTC(2026, m, 1), 0).slice(4, 7));
    expect(months).toEqual(['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']);
  });
});

describe('escaping (ap_escape_logitem)', () => {
  it('backslash-escapes " and \\ and writes C escapes for \\b \\n \\r \\t \\v', () => {
    expect(escapeLogItem('a"b\\c')).toBe('a\\"b\\\\c');
    expect(escapeLogItem('\b\n\r\t\v')).toBe('\\b\\n\\r\\t\\v');
  });

  it('writes other control bytes, DEL and bytes above 0x7f as lowercase \\xhh', () => {
    expect(escapeLogItem('\x00\x01\x0c\x1b\x7f')).toBe('\\x00\\x01\\x0c\\x1b\\x7f');
    // Node gives header bytes as latin1: the UTF-8 bytes of "é" arrive as "Ã©".
    expect(escapeLogItem('caf\xc3\xa9 \xff')).toBe('caf\\xc3\\xa9 \\xff');
  });

  it('writes characters above U+00FF as their UTF-8 bytes', () => {
    expect(escapeLogItem('€ 🦀')).toBe('\\xe2\\x82\\xac \\xf0\\x9f\\xa6\\x80');
  });

  it('leaves printable ASCII alone', () => {
    const printable = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i))
      .filter((c) => c !== '"' && c !== '\\')
      .join('');
    expect(escapeLogItem(printable)).toBe(printable);
  });

  it('turns every byte into printable ASCII, and loses nothing', () => {
    const allBytes = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join('');
    const escaped = escapeLogItem(allBytes);
    expect(escaped).toMatch(/^[\x20-\x7e]*$/);
    expect(unescape(escaped)).toBe(allBytes);
  });

  it('keeps a hostile User-Agent inside its own field on its own line', () => {
    const forged = '1.2.3.4 - - [25/Nov/2026:11:27:10 +0000] "GET /admin HTTP/1.1" 200 1 "-" "-"';
    const userAgent = `x" 200 1 "-" "y\n${forged}\r\n\\`;
    const line = formatCombinedLine(entry({ userAgent, referer: 'r"\n' }), 0);
    expect(line.split('\n')).toHaveLength(1);
    expect(line).not.toMatch(/[\r\n]/);
    const fields = COMBINED.exec(line);
    expect(fields?.[1]).toBe('203.0.113.7');
    expect(fields?.[6]).toBe('200');
    expect(unescape(fields?.[8] as string)).toBe('r"\n');
    expect(unescape(fields?.[9] as string)).toBe(userAgent);
  });

  it('escapes the request line, so a target cannot close its quotes', () => {
    const line = formatCombinedLine(entry({ target: '/a" 404 0 "-" "-\\' }), 0);
    expect(line).toContain('"GET /a\\" 404 0 \\"-\\" \\"-\\\\ HTTP/1.1" 200 1234');
    expect(COMBINED.exec(line)?.[6]).toBe('200');
  });
});
