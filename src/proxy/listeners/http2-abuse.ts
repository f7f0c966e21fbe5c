/**
 * Why an HTTP/2 session was ended for abuse, as the `kind` label of
 * portcullis_http2_abuse_total says it. A closed set.
 */
export const HTTP2_ABUSE_KINDS = [
  /** Streams opened and cancelled faster than the reset budget (CVE-2023-44487). */
  'rapid_reset',
  /** A header block continued past nghttp2's CONTINUATION limit (CVE-2024-27983 and kin). */
  'continuation_flood',
  /** Streams refused before they were requests (too many or too large header fields) past MAX_REFUSED_STREAMS. */
  'refused_streams',
  /** Streams opened past the advertised concurrency cap. */
  'concurrent_streams',
  'ping_flood',
  'settings_flood',
  /** Invalid frames past nghttp2's tolerance: empty DATA frames (CVE-2019-9518), frames on closed streams. */
  'invalid_frames',
  /** Any other fatal protocol error nghttp2 ended the session for, its own outbound-queue flood detection included. */
  'protocol_error',
] as const;
export type Http2AbuseKind = (typeof HTTP2_ABUSE_KINDS)[number];

/**
 * Sorts the error Node ended a session with into an abuse kind; null when
 * the session did not end for something its peer sent (a reset socket, or
 * the peer's own GOAWAY with an error code: a client that gives up costs
 * nothing). `atStreamCap`: the session had as many streams open as it may,
 * which is how a stream past the cap shows (nghttp2 reports it as a protocol
 * error once SETTINGS are acknowledged, as refused, invalid frames before).
 */
export function sessionAbuseKind(error: NodeJS.ErrnoException, atStreamCap: boolean): Http2AbuseKind | null {
  const code = error.code ?? '';
  if (code !== 'ERR_HTTP2_TOO_MANY_INVALID_FRAMES' && code !== 'ERR_HTTP2_ERROR') return null;
  if (atStreamCap) return 'concurrent_streams';
  if (code === 'ERR_HTTP2_TOO_MANY_INVALID_FRAMES') return 'invalid_frames';
  const message = error.message ?? '';
  if (/CONTINUATION/i.test(message)) return 'continuation_flood';
  // Node fails its stream-start callback once it has refused more than
  // maxSessionRejectedStreams streams (refused ones hold session memory
  // until their RST_STREAM is out, so a fast flood of oversized headers ends here).
  if (/callback function failed/i.test(message)) return 'refused_streams';
  return 'protocol_error';
}
