import type { SecureContextOptions } from 'node:tls';

/*
 * The TLS settings every certificate's context and every TLS listener share:
 * Mozilla's "intermediate" configuration (guidelines 6.0, ssl-config.mozilla.org),
 * the recommendation for a general-purpose server. Not policy keys on purpose:
 * these are the ones a site should not have to think about, and a shared list
 * is updated here, once, when Mozilla's is.
 */

/** TLS 1.0 and 1.1 are deprecated (RFC 8996); every browser of the last decade speaks 1.2. */
export const TLS_MIN_VERSION = 'TLSv1.2';
export const TLS_MAX_VERSION = 'TLSv1.3';

/**
 * Cipher suites, in Mozilla's order: the three TLS 1.3 suites (Node takes the
 * `TLS_` names of this list for TLS 1.3), then the six ECDHE AEAD suites for
 * TLS 1.2. Guidelines 6.0 dropped the DHE suites of 5.7: every client they
 * served also speaks ECDHE, and DHE costs a flood-prone server more per handshake.
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/**
 * Key-exchange groups, Mozilla's list without X25519MLKEM768, which needs
 * OpenSSL 3.5 (Node 20 ships 3.0, and an unknown group name is an error).
 */
export const TLS_ECDH_CURVES = 'X25519:prime256v1:secp384r1';

/** HTTP/2 first, HTTP/1.1 for clients without it, on the same port. */
export const TLS_ALPN_PROTOCOLS: readonly string[] = ['h2', 'http/1.1'];

/**
 * How long a session ticket may be used to resume (seconds): a resumed
 * handshake skips the certificate signature, the costly part. An hour covers
 * a visit; it is a judgement call, shorter than the 12 h key rotation so few
 * tickets die with their key.
 */
export const TLS_SESSION_TIMEOUT_SEC = 3_600;

/** Settings for `tls.createSecureContext` besides the certificate and key; the same for every context, so SNI switching changes nothing else. */
export const TLS_CONTEXT_SETTINGS: Readonly<SecureContextOptions> = Object.freeze({
  minVersion: TLS_MIN_VERSION,
  maxVersion: TLS_MAX_VERSION,
  ciphers: TLS_CIPHERS,
  ecdhCurve: TLS_ECDH_CURVES,
  // Mozilla intermediate: the client picks, since every suite offered is strong and clients know which is fast on their hardware (AES-NI or not).
  honorCipherOrder: false,
  sessionTimeout: TLS_SESSION_TIMEOUT_SEC,
});
