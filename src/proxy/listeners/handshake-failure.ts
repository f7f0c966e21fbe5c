/** Why a TLS handshake failed, as the `reason` label says it. A closed set. */
export const HANDSHAKE_FAILURE_REASONS = ['timeout', 'no_shared_protocol', 'no_certificate', 'reset', 'other'] as const;
export type HandshakeFailureReason = (typeof HANDSHAKE_FAILURE_REASONS)[number];

/** Sorts a `tlsClientError` into a reason: enough to tell a scan, a slow client and a misconfiguration apart. */
export function handshakeFailureReason(error: NodeJS.ErrnoException): HandshakeFailureReason {
  const code = error.code ?? '';
  const message = error.message ?? '';
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT' || /timed? ?out/i.test(message)) return 'timeout';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'reset';
  if (/unsupported protocol|wrong version|no shared cipher|no protocols available|version too low|inappropriate fallback/i.test(message)) return 'no_shared_protocol';
  if (/no suitable|certificate|SNI/i.test(message)) return 'no_certificate';
  return 'other';
}
