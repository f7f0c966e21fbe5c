import type { SpillBuffer } from './spill-buffer.js';

/**
 * A request body received in full before the request goes upstream: its
 * length is known, so Apache gets `Content-Length` (never chunked), and it
 * arrives at Apache at loopback speed however slowly the client sent it.
 */
export class ReceivedBody {
  readonly #buffer: SpillBuffer;

  constructor(buffer: SpillBuffer) {
    this.#buffer = buffer;
  }

  /** The body's size in bytes. */
  get length(): number {
    return this.#buffer.storedBytes;
  }

  /**
   * What to send upstream: one Buffer when the body is all in memory (the
   * common case, sent without a stream), else an iterable of its chunks in
   * order, read from memory and the temp file. Send it once.
   */
  source(): Buffer | AsyncIterable<Buffer> {
    return this.#buffer.memoryContents() ?? drain(this.#buffer);
  }

  /**
   * Sets `Content-Length` in an upstream header list (flat name, value, ...)
   * to this body's length, replacing what the client sent: the body goes
   * from the buffer with a known length, never chunked.
   */
  declareLength(headers: string[]): void {
    for (let i = headers.length - 2; i >= 0; i -= 2) {
      if ((headers[i] as string).toLowerCase() === 'content-length') headers.splice(i, 2);
    }
    headers.push('content-length', String(this.length));
  }

  /** Frees the body's memory and temp file. Idempotent; call it however the exchange ends. */
  release(): void {
    this.#buffer.destroy();
  }
}

async function* drain(buffer: SpillBuffer): AsyncIterable<Buffer> {
  for (let next = buffer.shift(); next !== null; next = buffer.shift()) yield await next;
}
