import { describe, expect, it } from 'vitest';
import { parseAccessLogLine } from '../../../src/replay/access-log-line.js';

describe('parseAccessLogLine', () => {
  it('reads combined, with the time zone applied', () => {
    expect(parseAccessLogLine('192.0.2.7 - frank [24/Nov/2026:11:00:05 +0100] "POST /xmlrpc.php HTTP/1.1" 403 12 "-" "curl/8.0"')).toEqual({
      vhost: null,
      client: '192.0.2.7',
      epochMs: Date.UTC(2026, 10, 24, 10, 0, 5),
      method: 'POST',
      target: '/xmlrpc.php',
      status: 403,
      userAgent: 'curl/8.0',
    });
  });

  it('reads common (no referer or agent) and vhost_combined (the site first)', () => {
    expect(parseAccessLogLine('2001:db8::1 - - [01/Dec/2026:00:00:00 -0500] "GET / HTTP/1.0" 200 -')).toMatchObject({ client: '2001:db8::1', epochMs: Date.UTC(2026, 11, 1, 5), userAgent: null });
    expect(parseAccessLogLine('shop.example.org:443 192.0.2.8 - - [01/Dec/2026:00:00:00 +0000] "GET /cart HTTP/1.1" 200 5 "-" "Mozilla/5.0"')).toMatchObject({ vhost: 'shop.example.org', client: '192.0.2.8', target: '/cart' });
  });

  it('reads a line of portcullis\'s own log with its trailing refusal field (access_log_refused), as the combined line before it', () => {
    const combined = '192.0.2.7 - - [01/Dec/2026:00:00:00 +0000] "POST /xmlrpc.php HTTP/1.1" 403 10 "-" "curl/8.0"';
    const expected = parseAccessLogLine(combined);
    expect(expected).not.toBeNull();
    expect(parseAccessLogLine(`${combined} "portcullis:block:/xmlrpc.php"`)).toEqual(expected);
    expect(parseAccessLogLine(`${combined} "portcullis:reject:more than one \\"Host\\" header"`)).toEqual(expected);
    expect(parseAccessLogLine(`site.example:80 ${combined} "portcullis:ban:192.0.2.0/24"`)).toMatchObject({ vhost: 'site.example', client: '192.0.2.7' });
    // One extra field at most, and only after a whole combined line.
    expect(parseAccessLogLine(`${combined} "portcullis:block:x" "more"`)).toBeNull();
    expect(parseAccessLogLine(`${combined} "198.51.100.9"`)).toBeNull();
    expect(parseAccessLogLine('192.0.2.7 - - [01/Dec/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 - "portcullis:limit:x"')).toBeNull();
  });

  it('undoes Apache\'s escaping, so the target is the bytes the client sent', () => {
    expect(parseAccessLogLine('192.0.2.7 - - [01/Dec/2026:00:00:00 +0000] "GET /a\\\\..\\\\xmlrpc.php?q=\\"x\\"\\xc3\\xa9 HTTP/1.1" 404 0 "-" "-"')?.target).toBe('/a\\..\\xmlrpc.php?q="x"\u00c3\u00a9');
  });

  it('refuses what is none of the formats, and request lines that are not requests', () => {
    for (const line of [
      '',
      'garbage',
      '192.0.2.7 - - [01/Dec/2026:00:00:00 +0000] "-" 408 0 "-" "-"',
      '192.0.2.7 - - [01/Foo/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 0 "-" "-"',
      '192.0.2.7 - - [01/Dec/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 0 "-" "trunc',
    ]) {
      expect(parseAccessLogLine(line), line).toBeNull();
    }
  });
});
