import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../../core/clock.js';
import type { PortcullisError } from '../../core/errors.js';
import type { Timers } from '../../core/timers.js';
import { compileRulePath } from '../../policy/compiled-policy.js';
import type { PathPattern } from '../../policy/path-pattern.js';
import { normalizeRequestPath } from '../../policy/request-path.js';
import { ByteBudget } from './byte-budget.js';
import { receiveRequestBody, type BodyReceipt } from './request-body-receiver.js';
import { ResponseSpill } from './response-spill.js';
import { SpillBuffer } from './spill-buffer.js';
import { StalledDeliveries } from './stalled-deliveries.js';
import { hasRequestBody } from '../request-body-presence.js';

/** Buffering settings, from `buffering:` in the policy; sizes in bytes. */
export interface BufferingSettings {
  readonly enabled: boolean;
  /** Per request body, in memory; beyond it, the temp file. */
  readonly requestMemoryBytes: number;
  /** Per response, in memory; beyond it, the temp file. */
  readonly responseMemoryBytes: number;
  /** All buffers' memory together. */
  readonly memoryTotalBytes: number;
  /** All temp files together. */
  readonly tempTotalBytes: number;
  /** Paths streamed both ways without buffering, `limits[].paths` syntax (exact, or a prefix ending in `*`), matched case-insensitively. */
  readonly streamPaths: readonly string[];
  /** A client that takes none of its buffered response for this long is cut. */
  readonly sendTimeoutMs: number;
}

/** Which way a buffer carries bytes: a request body or a response. */
export type BufferSide = 'request' | 'response';

/** What buffering reports, for metrics and the log. */
export interface BufferingEvents {
  /** A buffer outgrew its memory share and went on to a temp file. */
  spilled(side: BufferSide): void;
  /** A request body was refused, or a response passed on unbuffered, for want of buffer space (budgets, no temp dir, a disk error). */
  exhausted(side: BufferSide): void;
  /** A temp file could not be created, written or read. */
  diskError(error: PortcullisError): void;
}

/**
 * Buffering with budgets, one per process: decides which exchanges are
 * buffered, and makes their buffers, all drawing on one memory budget and
 * one disk budget. See SpillBuffer for how a buffer behaves and
 * ResponseSpill for the response side.
 *
 * Memory: what buffers hold, capped by `memoryTotalBytes` (small chunks are
 * charged by the 4 KiB block they are copied into); disk: temp file sizes,
 * capped by `tempTotalBytes`. Both shown as portcullis_buffer_bytes.
 */
export class Buffering {
  readonly memory: ByteBudget;
  readonly disk: ByteBudget;
  /** Null: no temp dir could be written at start; buffers live in memory only. */
  readonly tempDir: string | null;
  readonly #events: BufferingEvents;
  readonly #stalls: StalledDeliveries;
  #settings: BufferingSettings;
  #streamPaths: readonly PathPattern[];

  constructor(settings: BufferingSettings, tempDir: string | null, events: BufferingEvents, time: { timers: Timers; clock: Clock }) {
    this.tempDir = tempDir;
    this.#events = events;
    this.#stalls = new StalledDeliveries(time.timers, time.clock, settings.sendTimeoutMs);
    this.memory = new ByteBudget(settings.memoryTotalBytes);
    this.disk = new ByteBudget(tempDir === null ? 0 : settings.tempTotalBytes);
    this.#settings = settings;
    this.#streamPaths = compileStreamPaths(settings.streamPaths);
  }

  /** Applies reloaded settings; buffers in use keep their own memory limits, new budgets apply to new takes. */
  configure(settings: BufferingSettings): void {
    const streamPaths = compileStreamPaths(settings.streamPaths);
    this.memory.setLimit(settings.memoryTotalBytes);
    this.disk.setLimit(this.tempDir === null ? 0 : settings.tempTotalBytes);
    this.#stalls.setTimeout(settings.sendTimeoutMs);
    this.#settings = settings;
    this.#streamPaths = streamPaths;
  }

  /**
   * Whether the exchange for request-target `target` is buffered both ways:
   * yes unless buffering is off or the path is in `stream_paths` (matched on
   * the normalised path, as `limits[].paths` are).
   */
  buffers(target: string): boolean {
    if (!this.#settings.enabled) return false;
    if (this.#streamPaths.length === 0) return true;
    const path = normalizeRequestPath(target);
    // A target that does not normalise was refused before it got here.
    if (!path.ok) return true;
    return !this.#streamPaths.some((pattern) => pattern.matches(path.views));
  }

  /**
   * Receives the body of `req` in full (see receiveRequestBody); `none` when
   * the request has no body. A declared length that can never be buffered is
   * refused at once, before the client sends it.
   */
  async receiveBody(req: IncomingMessage, maxBodyBytes: number): Promise<BodyReceipt | { readonly kind: 'none' }> {
    if (!hasRequestBody(req)) return { kind: 'none' };
    const declared = req.headers['content-length'];
    const settings = this.#settings;
    if (this.tempDir === null && Number(declared) > settings.requestMemoryBytes) {
      this.#events.exhausted('request');
      return { kind: 'refused', reason: 'needs_disk' };
    }
    const receipt = await receiveRequestBody(req, this.#buffer('request', settings.requestMemoryBytes), maxBodyBytes);
    if (receipt.kind === 'refused' && receipt.reason !== 'too_large') this.#events.exhausted('request');
    return receipt;
  }

  /** The stream undici writes a buffered response into, delivering to `res` (see ResponseSpill). Bound, to be handed on as is. */
  readonly bufferResponse = (res: ServerResponse): ResponseSpill =>
    new ResponseSpill(res, this.#responseBuffer, this.#onUnbuffered, this.#stalls);

  readonly #responseBuffer = (): SpillBuffer => this.#buffer('response', this.#settings.responseMemoryBytes);
  readonly #onUnbuffered = (): void => this.#events.exhausted('response');

  /** How a buffered request without a body is forwarded: one shared value, nothing made per request. */
  readonly withoutBody: { readonly body: null; readonly response: (res: ServerResponse) => ResponseSpill } = Object.freeze({ body: null, response: this.bufferResponse });

  #buffer(side: BufferSide, memoryLimitBytes: number): SpillBuffer {
    return new SpillBuffer({
      memoryLimitBytes,
      memory: this.memory,
      disk: this.disk,
      tempDir: this.tempDir,
      onSpill: () => this.#events.spilled(side),
      onDiskError: (error) => this.#events.diskError(error),
    });
  }
}

function compileStreamPaths(paths: readonly string[]): readonly PathPattern[] {
  return paths.map((path) => compileRulePath(path, false));
}

