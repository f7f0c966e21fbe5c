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

/** The expression the scanner replaced, kept as the reference it must agree with. */
const REFERENCE = /^(?:(\S+) )?(\S+) \S+ \S+ \[(\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "((?:[^"\\]|\\.)*)" (\d{3}) (?:\d+|-)(?: "(?:[^"\\]|\\.)*" "((?:[^"\\]|\\.)*)"(?: "portcullis:(?:[^"\\]|\\.)*")?)?\s*$/;

function referenceParse(line: string): { vhost: string | null; client: string; target: string; status: number } | null {
  const m = REFERENCE.exec(line);
  if (m === null || !/^(0[1-9]|[12]\d|3[01])\/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\/\d{4}:([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60) /.test(m[3] as string)) return null;
  const request = (m[4] as string).replace(/\\(x[0-9a-fA-F]{2}|.)/g, (_, e: string) => (e.length === 3 ? String.fromCharCode(Number.parseInt(e.slice(1), 16)) : e === 'n' ? '\n' : e === 't' ? '\t' : e)).split(' ');
  if (request.length !== 3 || request[0] === '') return null;
  return { vhost: m[1] === undefined ? null : m[1].replace(/:\d+$/, ''), client: m[2] as string, target: request[1] as string, status: Number(m[5]) };
}

describe('parseAccessLogLine agrees with the reference expression on mutated lines', () => {
  it('for 20,000 seeded mutations (PORTCULLIS_FUZZ_SEED replays one)', () => {
    const seed = Number(process.env.PORTCULLIS_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
    let state = seed;
    const random = (n: number) => ((state = (state * 1103515245 + 12345) % 2147483648) % n);
    const bases = [
      '192.0.2.7 - frank [24/Nov/2026:11:00:05 +0100] "POST /xmlrpc.php HTTP/1.1" 403 12 "-" "curl/8.0"',
      'shop.example.org:443 2001:db8::1 - - [01/Dec/2026:00:00:00 -0500] "GET /a\\"b HTTP/1.0" 200 - "http://r/" "Mozilla/5.0 (X11)"',
      '192.0.2.7 - - [01/Dec/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 -',
      '192.0.2.7 - - [01/Dec/2026:00:00:00 +0000] "GET / HTTP/1.1" 429 5 "-" "-" "portcullis:limit:x"',
    ];
    const alphabet = [' ', '"', '\\', '[', ']', '-', ':', '0', '9', 'a', '\t', '/'];
    for (let i = 0; i < 20_000; i++) {
      let line = bases[random(bases.length)] as string;
      for (let edits = 1 + random(3); edits > 0; edits--) {
        const at = random(line.length + 1);
        const kind = random(3);
        const char = alphabet[random(alphabet.length)] as string;
        line = kind === 0 ? line.slice(0, at) + char + line.slice(at) : kind === 1 ? line.slice(0, at) + line.slice(at + 1) : line.slice(0, at) + char + line.slice(at + 1);
      }
      const expected = referenceParse(line);
      const actual = parseAccessLogLine(line);
      const got = actual === null ? null : { vhost: actual.vhost, client: actual.client, target: actual.target, status: actual.status };
      expect(got, `seed ${seed}, line ${JSON.stringify(line)}`).toEqual(expected);
    }
  });
});
