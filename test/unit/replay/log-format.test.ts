import { describe, expect, it } from 'vitest';
import { compileLogFormat, NAMED_LOG_FORMATS } from '../../../src/replay/log-format.js';

describe('compileLogFormat: Apache LogFormat strings', () => {
  it('reads combined as its LogFormat string says, with the time zone applied', () => {
    const format = compileLogFormat(NAMED_LOG_FORMATS.combined);
    expect(format.parse('192.0.2.7 - frank [24/Nov/2026:11:00:05 +0100] "POST /xmlrpc.php HTTP/1.1" 403 12 "-" "curl/8.0"')).toEqual({
      vhost: null,
      client: '192.0.2.7',
      epochMs: Date.UTC(2026, 10, 24, 10, 0, 5),
      method: 'POST',
      target: '/xmlrpc.php',
      status: 403,
      userAgent: 'curl/8.0',
    });
  });

  it('takes %a over %h (mod_remoteip\'s client), %V over %v (the name the client asked for), and reads %{X-Forwarded-For}i', () => {
    const format = compileLogFormat('%v %V %h %a %l %u %t "%r" %>s %B %D "%{X-Forwarded-For}i" "%{User-Agent}i"');
    expect(format.parse('shop.example www.shop.example 127.0.0.1 203.0.113.9 - - [01/Dec/2026:00:00:00 +0000] "GET /cart HTTP/1.1" 200 0 1234 "203.0.113.9, 10.0.0.1" "Mozilla/5.0"')).toEqual({
      vhost: 'www.shop.example',
      client: '203.0.113.9',
      epochMs: Date.UTC(2026, 11, 1),
      method: 'GET',
      target: '/cart',
      status: 200,
      userAgent: 'Mozilla/5.0',
      forwardedFor: '203.0.113.9, 10.0.0.1',
    });
  });

  it('reads the usual directives in any order, with literal text between them', () => {
    const format = compileLogFormat('%t %{Referer}i|%s|%b|%T|%p|%h "%r" ua=%{User-Agent}i');
    expect(format.parse('[01/Dec/2026:00:00:01 +0000] https://a.example/|404|-|0|443|2001:db8::7 "GET /x?y HTTP/2.0" ua=curl/8')).toMatchObject({
      client: '2001:db8::7',
      epochMs: Date.UTC(2026, 11, 1, 0, 0, 1),
      target: '/x?y',
      status: 404,
      userAgent: 'curl/8',
    });
  });

  it('undoes Apache\'s escaping inside quoted fields', () => {
    const format = compileLogFormat(NAMED_LOG_FORMATS.common);
    expect(format.parse('192.0.2.7 - - [01/Dec/2026:00:00:00 +0000] "GET /a\\\\b?q=\\"x\\"\\xc3\\xa9 HTTP/1.1" 404 -')?.target).toBe('/a\\b?q="x"\u00c3\u00a9');
  });

  it('refuses lines that do not fit, and request lines that are no request', () => {
    const format = compileLogFormat(NAMED_LOG_FORMATS.vhost_combined);
    expect(format.parse('192.0.2.7 - - [01/Dec/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 0 "-" "-"')).toBeNull();
    expect(format.parse('a.example:80 192.0.2.7 - - [01/Dec/2026:00:00:00 +0000] "-" 408 0 "-" "-"')).toBeNull();
    expect(format.parse('a.example:80 192.0.2.7 - - [01/Dec/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 0 "-" "-"')).toMatchObject({ vhost: 'a.example' });
  });

  it('refuses a format it cannot replay with a message that says what it needs', () => {
    expect(() => compileLogFormat('%h %t %>s')).toThrow(/needs %r.*request line/);
    expect(() => compileLogFormat('%h "%r" %>s')).toThrow(/needs %t/);
    expect(() => compileLogFormat('%t "%r" %>s')).toThrow(/needs %h or %a/);
    expect(() => compileLogFormat('%h %t "%r" %>s %{%d/%b/%Y}t')).toThrow(/%\{%d\/%b\/%Y\}t is not supported/);
    expect(() => compileLogFormat('%h %t "%r" %>s %Z')).toThrow(/%Z is not a directive portcullis replay reads; it reads %h %a/);
  });
});
