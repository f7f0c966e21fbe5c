import { describe, expect, it } from 'vitest';
import { sessionAbuseKind } from '../../../../src/proxy/listeners/http2-abuse.js';

/** An error as Node's http2 ends a session with. */
function nodeError(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

describe('sessionAbuseKind', () => {
  it('names what nghttp2 and Node end a session for', () => {
    expect(sessionAbuseKind(nodeError('ERR_HTTP2_ERROR', 'Too many CONTINUATION frames following a HEADER frame'), false)).toBe('continuation_flood');
    expect(sessionAbuseKind(nodeError('ERR_HTTP2_TOO_MANY_INVALID_FRAMES', 'Too many invalid HTTP/2 frames'), false)).toBe('invalid_frames');
    expect(sessionAbuseKind(nodeError('ERR_HTTP2_ERROR', 'The user callback function failed'), false)).toBe('refused_streams');
    expect(sessionAbuseKind(nodeError('ERR_HTTP2_ERROR', 'Flooding was detected in this HTTP/2 session, and it must be closed'), false)).toBe('protocol_error');
  });

  it('calls an error at the stream cap a stream past it, whatever nghttp2 called it', () => {
    expect(sessionAbuseKind(nodeError('ERR_HTTP2_ERROR', 'Protocol error'), true)).toBe('concurrent_streams');
    expect(sessionAbuseKind(nodeError('ERR_HTTP2_TOO_MANY_INVALID_FRAMES', 'Too many invalid HTTP/2 frames'), true)).toBe('concurrent_streams');
  });

  it('blames nobody for a reset socket or the peer\'s own GOAWAY with an error code', () => {
    expect(sessionAbuseKind(nodeError('ECONNRESET', 'read ECONNRESET'), false)).toBeNull();
    expect(sessionAbuseKind(nodeError('ERR_HTTP2_SESSION_ERROR', 'Session closed with error code 2'), true)).toBeNull();
  });
});
