import { z } from 'zod';
import { byteSize, durationMs, expected, positiveInt, rate, text } from './schema-values.js';
import { rulePath } from './rule-schema.js';

/* What one client or all of them may hold: `concurrency`, `connections`, `timeouts`, `request` and `buffering`. */

/** `concurrency`: requests in flight to the upstream and waiting for a slot, overall and per client. */
export const concurrency = z.strictObject({
  /** In-flight requests to the upstream in total. Keep it below Apache's MaxRequestWorkers. */
  upstream_max: positiveInt().default(32),
  /** In-flight requests per client IP. Browsers open 6 connections; 16 leaves room for a small office behind NAT. */
  per_client_max: positiveInt().default(16),
  /** Requests waiting for a slot, in total; beyond it, 503 at once. */
  queue_max: positiveInt().default(512),
  /** Requests waiting per client IP, so one client cannot fill the queue. */
  per_client_queue_max: positiveInt().default(16),
  /** How long a request may wait for a slot before 503. */
  queue_timeout: durationMs('2s').default(5_000),
});

/** `connections`: open connections and TLS handshakes, overall and per client. */
export const connections = z.strictObject({
  /**
   * Open connections per client address (the TCP peer), idle keep-alive ones
   * included; past it a new connection is closed at once and counts as a
   * strike. Trusted proxies are exempt (a CDN node carries many visitors).
   * Browsers open 6 per host; 256 leaves room for a large office behind NAT.
   */
  per_client_max: positiveInt().default(256),
  /** Open client connections in total; past it new ones are closed at once (nobody is struck). Keep it below the process's file limit. */
  max: positiveInt().default(10_000),
  /** Upgraded (WebSocket) connections per client: once spliced they hold no upstream slot, so they have a cap of their own. */
  upgraded_per_client_max: positiveInt().default(16),
  /**
   * New connections to a TLS listener per client address (the TCP peer), a
   * bucket of their own checked at accept, before any TLS work: past it the
   * connection is closed before the handshake and counts as a strike.
   * Trusted proxies are exempt. A full handshake is the most expensive thing
   * a client can make portcullis do (a private-key signature: ~1 ms of CPU
   * with RSA-2048). A browser opens at most 6 connections to a host over
   * HTTP/1.1 and one over HTTP/2, and resumes its TLS session after that,
   * so a burst of 50 is eight browsers behind one NAT address arriving
   * together, and 20/s sustained is 1 200 new connections a minute, beyond
   * any office; a handshake flood from one address gets at most 20 a second.
   * A judgement call. ~150 bytes per address that connected in the last few
   * seconds (at most 100 000 kept).
   */
  tls_handshakes: z
    .strictObject({
      rate: rate.prefault('20/s'),
      burst: positiveInt().default(50),
    })
    .prefault({}),
});

/** `timeouts`: how long clients and the upstream may take in each phase. */
export const timeouts = z.strictObject({
  /** Time for a client to send its request headers (slowloris guard). */
  client_headers: durationMs('10s').default(10_000),
  /** Time for a client to send its whole request, body included. */
  client_request: durationMs('5m').default(300_000),
  /** How long an idle client keep-alive connection is kept open. */
  client_keepalive: durationMs('5s').default(5_000),
  /** Time for a client to finish its TLS handshake (Node's own default is 120 s: a slow-loris of handshakes). */
  tls_handshake: durationMs('10s').default(10_000),
  /** Time to open a connection to the upstream; failing that, 502. */
  upstream_connect: durationMs('5s').default(5_000),
  /** Time for the upstream to start answering; failing that, 504. PHP pages can be slow, hence a minute. */
  upstream_headers: durationMs('60s').default(60_000),
  /** Longest silence while the upstream sends a body. */
  upstream_body: durationMs('5m').default(300_000),
});

/** `request`: limits on what one request may carry. */
export const request = z.strictObject({
  /** Largest request body forwarded; larger gets 413. WordPress media uploads are often a few tens of MB. */
  max_body: byteSize.default(64 * 1_048_576),
});

/**
 * Buffering between slow clients and Apache: a request body is received in
 * full before an upstream slot is taken, and Apache's answer is read at
 * Apache's pace while the client reads it at its own, so neither a client
 * that sends one byte a second nor one that never reads holds a worker.
 * Memory first, then temp files; both capped in total.
 */
export const buffering = z.strictObject({
  /** Off: bodies stream both ways as they arrive, and a slow client holds its Apache worker to the end. */
  enabled: z.boolean({ error: (issue) => expected('true or false', issue.input) }).default(true),
  /** Request body bytes kept in memory per request; the rest goes to a temp file. Logins, comments and REST saves fit; uploads spill. */
  request_memory: byteSize.default(64 * 1_024),
  /** Response bytes kept in memory per response ahead of a slow reader; the rest goes to a temp file. Most HTML pages fit whole. */
  response_memory: byteSize.default(256 * 1_024),
  /** Memory all buffers together may hold; past it, buffers spill to disk. Judgement call: a small share of a web server's RAM. */
  memory_total: byteSize.default(128 * 1_048_576),
  /** Where temp files go (created 0700; ours are removed at start). Absent: `state_dir`/tmp. */
  temp_dir: text('a directory path').optional(),
  /** Disk all temp files together may use; past it, request bodies get 503 and responses are passed on at the client's pace. */
  temp_total: byteSize.default(1_073_741_824),
  /** Paths streamed both ways without buffering (large uploads, server-sent events); same syntax as `limits[].paths`. */
  stream_paths: z.array(rulePath).default([]),
  /** A client that takes none of its buffered response for this long is cut and its buffer freed (nginx's send_timeout), so a reader that never reads cannot keep a temp file forever. */
  send_timeout: durationMs('60s').default(60_000),
});
