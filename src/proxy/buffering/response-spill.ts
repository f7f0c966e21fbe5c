import type { ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import type { SpillBuffer } from './spill-buffer.js';
import type { Cuttable, StalledDeliveries } from './stalled-deliveries.js';

/** Told when a response could not be buffered and is passed on at the client's pace instead. */
export type OnUnbuffered = () => void;

/**
 * What undici writes Apache's response body into, in front of the client's
 * `res`. While the client keeps up, each chunk goes straight to `res` (a
 * streaming page streams, with no copy and no delay); when `res` pushes back,
 * chunks go into the SpillBuffer (memory, then a temp file) and are passed on
 * as the client drains. So this stream finishes, and undici's `stream()`
 * resolves and the upstream slot is released, when Apache has sent
 * everything, not when a slow client has read it.
 *
 * When the buffer cannot take a chunk (budgets spent, no temp dir, a disk
 * error), the chunk is held and its write not acknowledged until the client
 * has taken what is buffered: undici then stops reading from Apache, which
 * is plain streaming with backpressure, as without buffering. A response is
 * never failed for want of buffer space.
 *
 * Two lifetimes: the Writable side is Apache's (finished or destroyed by
 * undici), the delivery is the client's and goes on after it. The buffer is
 * destroyed when delivery ends, whichever way: delivered, client gone,
 * upstream error (the client is cut: a truncated body must not pass for a
 * whole one), a temp file read error (cut too), or a client that took
 * nothing for the send timeout (cut by StalledDeliveries).
 */
export class ResponseSpill extends Writable implements Cuttable {
  readonly #res: ServerResponse;
  readonly #makeBuffer: () => SpillBuffer;
  /** Made when first needed: most clients keep up, and their answers never touch it. */
  #buffer: SpillBuffer | null = null;
  readonly #onUnbuffered: OnUnbuffered;
  readonly #stalls: StalledDeliveries;
  /** `res` has pushed back; nothing is written to it until 'drain'. */
  #waitingForDrain = false;
  /** A temp file read is in flight. */
  #reading = false;
  /** A chunk the buffer could not take, with its unacknowledged write. */
  #held: { readonly chunk: Buffer; readonly callback: (error?: Error | null) => void } | null = null;
  #upstreamDone = false;
  #over = false;
  #countedUnbuffered = false;

  constructor(res: ServerResponse, makeBuffer: () => SpillBuffer, onUnbuffered: OnUnbuffered, stalls: StalledDeliveries) {
    super();
    this.#res = res;
    this.#makeBuffer = makeBuffer;
    this.#onUnbuffered = onUnbuffered;
    this.#stalls = stalls;
    res.on('drain', this.#onDrain);
    res.once('close', this.#onClientClose);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#over) {
      callback();
      return;
    }
    if ((this.#buffer === null || this.#buffer.isEmpty) && !this.#waitingForDrain && !this.#reading) {
      this.#send(chunk);
      callback();
      return;
    }
    const stored = (this.#buffer ??= this.#makeBuffer()).append(chunk);
    if (stored === true) {
      callback();
      this.#pump();
    } else if (typeof stored === 'string') {
      this.#hold(chunk, callback);
    } else {
      void stored.then((result) => {
        if (result === true) callback();
        else this.#hold(chunk, callback);
        this.#pump();
      });
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#upstreamDone = true;
    callback();
    this.#pump();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // undici destroys the stream once it has finished, without an error:
    // that ends Apache's side only, delivery goes on.
    if (error !== null || !this.writableFinished) this.#abort();
    callback(error);
  }

  #hold(chunk: Buffer, callback: (error?: Error | null) => void): void {
    this.#held = { chunk, callback };
    if (!this.#countedUnbuffered) {
      this.#countedUnbuffered = true;
      this.#onUnbuffered();
    }
    this.#pump();
  }

  /** Moves buffered bytes to `res` while it accepts them; ends `res` when Apache is done and all is passed on. */
  #pump(): void {
    while (!this.#over && !this.#waitingForDrain && !this.#reading) {
      const next = this.#buffer === null ? null : this.#buffer.shift();
      if (next === null) {
        const held = this.#held;
        if (held !== null) {
          this.#held = null;
          this.#send(held.chunk);
          // May call _write again at once; the state is consistent for it.
          held.callback();
          continue;
        }
        if (this.#upstreamDone) this.#deliver();
        return;
      }
      if (next instanceof Promise) {
        this.#reading = true;
        next.then(
          (chunk) => {
            this.#reading = false;
            if (this.#over) return;
            this.#send(chunk);
            this.#pump();
          },
          // The buffer has reported the read error (PC_ERR_BUFFER_TEMP).
          () => this.#abort(),
        );
        return;
      }
      this.#send(next);
    }
  }

  #send(chunk: Buffer): void {
    if (this.#res.write(chunk)) return;
    this.#waitingForDrain = true;
    this.#stalls.stalled(this);
  }

  readonly #onDrain = (): void => {
    this.#waitingForDrain = false;
    this.#stalls.resumed(this);
    this.#pump();
  };

  /** Bytes written to `res` that its connection has not yet handed to the kernel. */
  pendingBytes(): number {
    return this.#res.writableLength;
  }

  /** The client has taken nothing for the send timeout: cut it, free the buffer, and stop the upstream if it is still sending. */
  cut(): void {
    this.#abort();
  }

  readonly #onClientClose = (): void => {
    if (this.#over) return;
    this.#finishDelivery();
    // Apache may still be sending: stop taking it (undici is told by the forwarder's own signal too).
    if (!this.writableFinished && !this.destroyed) this.destroy();
  };

  #deliver(): void {
    this.#finishDelivery();
    this.#res.end();
  }

  /** Delivery cannot go on: cut the client (as the forwarder does when an answer fails half-way). */
  #abort(): void {
    if (this.#over) return;
    this.#finishDelivery();
    this.#res.destroy();
    if (!this.writableFinished && !this.destroyed) this.destroy();
  }

  #finishDelivery(): void {
    this.#over = true;
    this.#held = null;
    this.#buffer?.destroy();
    this.#stalls.resumed(this);
    this.#res.off('drain', this.#onDrain);
    this.#res.off('close', this.#onClientClose);
  }
}
