import { describe, expect, it } from 'vitest';
import { buildClientHeaders, buildUpstreamHeaders } from '../../../src/proxy/upstream-headers.js';

const untrusted = { clientIp: '198.51.100.7', peerIp: '198.51.100.7', peerTrusted: false };
const viaCdn = { clientIp: '203.0.113.9', peerIp: '192.0.2.10', peerTrusted: true };

/** Turns the flat [name, value, ...] list into name → values for assertions. */
function asMap(flat: string[]): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (let i = 0; i < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase();
    map.set(name, [...(map.get(name) ?? []), flat[i + 1] as string]);
  }
  return map;
}

describe('buildUpstreamHeaders', () => {
  it('drops hop-by-hop headers, including those the Connection header nominates', () => {
    const raw = ['Host', 'blog.example', 'Connection', 'keep-alive, X-Secret', 'Keep-Alive', 'timeout=5', 'X-Secret', 's', 'TE', 'trailers', 'Upgrade', 'h2c', 'Proxy-Connection', 'keep-alive', 'Expect', '100-continue', 'Cookie', 'a=1', 'Cookie', 'b=2'];
    const headers = asMap(buildUpstreamHeaders(raw, 'keep-alive, X-Secret', untrusted));
    for (const name of ['connection', 'keep-alive', 'x-secret', 'te', 'upgrade', 'proxy-connection', 'expect']) expect(headers.has(name), name).toBe(false);
    expect(headers.get('host')).toEqual(['blog.example']);
    expect(headers.get('cookie')).toEqual(['a=1', 'b=2']);
  });

  it('replaces what an untrusted client says about forwarding', () => {
    const raw = ['Host', 'x', 'X-Forwarded-For', '6.6.6.6', 'X-Real-IP', '6.6.6.6', 'X-Forwarded-Proto', 'https'];
    const headers = asMap(buildUpstreamHeaders(raw, undefined, untrusted));
    expect(headers.get('x-forwarded-for')).toEqual(['198.51.100.7']);
    expect(headers.get('x-real-ip')).toEqual(['198.51.100.7']);
    expect(headers.get('x-forwarded-proto')).toEqual(['http']);
  });

  it('extends a trusted proxy\'s chain and keeps its protocol', () => {
    const raw = ['X-Forwarded-For', '203.0.113.9', 'x-forwarded-for', '10.0.0.1', 'X-Forwarded-Proto', 'https'];
    const headers = asMap(buildUpstreamHeaders(raw, undefined, viaCdn));
    expect(headers.get('x-forwarded-for')).toEqual(['203.0.113.9, 10.0.0.1, 192.0.2.10']);
    expect(headers.get('x-real-ip')).toEqual(['203.0.113.9']);
    expect(headers.get('x-forwarded-proto')).toEqual(['https']);
  });
});

describe('buildClientHeaders', () => {
  it('keeps the response\'s own headers and drops the upstream connection\'s', () => {
    const headers = buildClientHeaders({
      'content-type': 'text/html',
      'set-cookie': ['a=1', 'b=2'],
      connection: 'Keep-Alive, X-Upstream-Only',
      'keep-alive': 'timeout=5, max=100',
      'transfer-encoding': 'chunked',
      'x-upstream-only': '1',
    });
    expect(headers).toEqual({ 'content-type': 'text/html', 'set-cookie': ['a=1', 'b=2'] });
  });
});
