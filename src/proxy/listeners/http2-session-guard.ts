import http2 from 'node:http2';
import type { Clock } from '../../core/clock.js';
import { FrameBudget } from './frame-budget.js';
import { sessionAbuseKind, type Http2AbuseKind } from './http2-abuse.js';

/** Concurrent streams a client may open on one connection (nginx's default too). */
export const MAX_CONCURRENT_STREAMS = 100;

/**
 * Cancelled streams a session may have at once, and per second after that
 * (CVE-2023-44487). A browser leaving a page cancels what it has open, at
 * most MAX_CONCURRENT_STREAMS, so twice that at once; rapid-reset floods run
 * at thousands a second. A judgement call.
 */
export const RESET_BURST = 2 * MAX_CONCURRENT_STREAMS;
export const RESETS_PER_SEC = 20;

/**
 * PING and SETTINGS frames (each counted apart) a session may send at once,
 * and per second after that. Browsers send a handful per session, gRPC
 * keep-alives one every few seconds; each costs us an answer, and nghttp2's
 * own flood check only fires once answers pile up unsent, which a client
 * that reads them never lets happen. A judgement call.
 */
export const CONTROL_FRAME_BURST = 100;
export const CONTROL_FRAMES_PER_SEC = 10;

/**
 * Streams a client may open that never become requests (refused by nghttp2
 * for too many or too large header fields) before the session is ended: each
 * still costs HPACK decoding, and nghttp2 refuses them one by one for ever.
 * Node's own maxSessionRejectedStreams (set to the same number) counts
 * only streams it refuses itself, never these.
 */
export const MAX_REFUSED_STREAMS = 100;

/** After the idle GOAWAY, how long a session may take to close by itself before it is cut. */
export const CLOSE_GRACE_MS = 1_000;

/** Timeouts of HTTP/2 sessions and streams, from `timeouts` in the policy. */
export interface Http2Limits {
  /** A session with no stream open for this long is closed, PINGs or not (`timeouts.client_keepalive`). */
  readonly idleTimeoutMs: number;
  /** A stream silent for this long is cancelled (`timeouts.client_request`). */
  readonly requestTimeoutMs: number;
}

/**
 * What the HTTP/2 side reports besides requests, with the peer's address as
 * it was when the session began (a destroyed socket no longer knows it).
 */
export interface Http2Hooks {
  /** A session ended for abuse: a strike for its peer, counted by kind. */
  onAbuse(peerAddress: string | undefined, kind: Http2AbuseKind): void;
  /** A client too slow with its request: a stream's body, or a header block it never finished. */
  onClientTimeout(peerAddress: string | undefined): void;
}

/**
 * Watches one HTTP/2 session for the attacks nghttp2 leaves to its user:
 * streams cancelled in bulk, PING and SETTINGS floods, streams refused one
 * by one for ever, idle sessions that cannot close because a header block is
 * still open; and names the ones nghttp2 ends by itself (CONTINUATION
 * floods, invalid frames, streams past the cap). A session ended for abuse
 * gets GOAWAY ENHANCE_YOUR_CALM and is reported once.
 */
export class Http2SessionGuard {
  readonly #session: http2.ServerHttp2Session;
  readonly #peerAddress: string | undefined;
  readonly #hooks: Http2Hooks;
  readonly #clock: Clock;
  readonly #limits: () => Http2Limits;
  readonly #resets: FrameBudget;
  readonly #pings: FrameBudget;
  readonly #settings: FrameBudget;
  /** Streams handed to the pipeline, the highest id among them, and how many are open now. */
  #seen = 0;
  #lastSeenId = 0;
  #open = 0;
  /** When the last stream closed (or the session began): idleness counts from here. */
  #lastActiveMs: number;
  #closingSinceMs: number | null = null;
  #reported = false;

  constructor(session: http2.ServerHttp2Session, hooks: Http2Hooks, clock: Clock, limits: () => Http2Limits) {
    this.#session = session;
    this.#peerAddress = session.socket?.remoteAddress;
    this.#hooks = hooks;
    this.#clock = clock;
    this.#limits = limits;
    const nowMs = clock.nowMs();
    this.#lastActiveMs = nowMs;
    this.#resets = new FrameBudget(RESET_BURST, RESETS_PER_SEC, nowMs);
    this.#pings = new FrameBudget(CONTROL_FRAME_BURST, CONTROL_FRAMES_PER_SEC, nowMs);
    this.#settings = new FrameBudget(CONTROL_FRAME_BURST, CONTROL_FRAMES_PER_SEC, nowMs);
    session.on('ping', () => this.#spend(this.#pings, 'ping_flood'));
    session.on('remoteSettings', () => this.#spend(this.#settings, 'settings_flood'));
    session.on('error', (error: NodeJS.ErrnoException) => {
      const kind = sessionAbuseKind(error, this.#open >= MAX_CONCURRENT_STREAMS);
      if (kind !== null) this.#report(kind);
    });
    session.on('stream', (stream) => this.#track(stream));
  }

  /**
   * The periodic check (every CONNECTIONS_CHECK_MS): refused streams, idle
   * sessions, and idle sessions that would not close. Idle means no stream
   * open for `idleTimeoutMs`: Node's own session timer is reset by every
   * PING once anyone listens for them, so a client could hold a session
   * open for ever with one PING every few seconds.
   */
  check(nowMs: number): void {
    const session = this.#session;
    if (session.destroyed) return;
    const lastStreamId = session.state.lastProcStreamID ?? 0;
    this.#checkRefused(lastStreamId);
    if (session.destroyed || this.#open > 0) return;
    if (this.#closingSinceMs === null) {
      if (nowMs - this.#lastActiveMs < this.#limits().idleTimeoutMs) return;
      this.#closingSinceMs = nowMs;
      // GOAWAY: the client may still finish what it sent; nothing new starts.
      session.close();
      return;
    }
    if (nowMs - this.#closingSinceMs < CLOSE_GRACE_MS) return;
    // No stream of ours is open, yet nghttp2 holds the session: a header
    // block the client began and never finished (a slow-loris of headers),
    // or answers it does not read. Either way it is cut.
    if (lastStreamId > this.#lastSeenId) this.#hooks.onClientTimeout(this.#peerAddress);
    session.destroy();
  }

  #track(stream: http2.ServerHttp2Stream): void {
    const id = stream.id ?? 0;
    this.#seen++;
    this.#lastSeenId = Math.max(this.#lastSeenId, id);
    this.#open++;
    const session = this.#session;
    this.#checkRefused(id);
    let cancelledHere = false;
    stream.on('error', ignore);
    stream.setTimeout(this.#limits().requestTimeoutMs, () => {
      // Only a client still sending its request is to blame; one waiting for our answer is not.
      const clientSending = stream.state.remoteClose === 0;
      cancelledHere = true;
      stream.close(http2.constants.NGHTTP2_CANCEL);
      if (clientSending) this.#hooks.onClientTimeout(this.#peerAddress);
    });
    // 'aborted' fires for any stream closed before its answer was sent in
    // full: a client's RST_STREAM, but also our own cancel and the session's end.
    stream.on('aborted', () => {
      if (!cancelledHere && !session.destroyed) this.#spend(this.#resets, 'rapid_reset');
    });
    stream.on('close', () => {
      // Streams a destroyed session takes with it stay counted: the error
      // that destroyed it is told apart by how many were open.
      if (session.destroyed) return;
      this.#open--;
      this.#lastActiveMs = this.#clock.nowMs();
    });
  }

  /** Client stream ids are odd and rising: those up to `lastStreamId` that never reached us were refused. */
  #checkRefused(lastStreamId: number): void {
    if ((lastStreamId + 1) / 2 - this.#seen > MAX_REFUSED_STREAMS) this.#end('refused_streams');
  }

  #spend(budget: FrameBudget, kind: Http2AbuseKind): void {
    if (!budget.take(this.#clock.nowMs())) this.#end(kind);
  }

  /** Ends the session for abuse: GOAWAY ENHANCE_YOUR_CALM, then cut. */
  #end(kind: Http2AbuseKind): void {
    const session = this.#session;
    if (session.destroyed) return;
    this.#report(kind);
    session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    session.destroy();
  }

  #report(kind: Http2AbuseKind): void {
    if (this.#reported) return;
    this.#reported = true;
    this.#hooks.onAbuse(this.#peerAddress, kind);
  }
}

/** Resets are a client's normal behaviour: never a crash. */
function ignore(): void {}
