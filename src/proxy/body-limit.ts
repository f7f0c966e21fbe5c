import { Transform, type TransformCallback } from 'node:stream';

/** Raised inside the body stream when a chunked body grows past the limit. */
export class BodyTooLargeError extends Error {
  readonly code = 'PC_BODY_TOO_LARGE';
  constructor(readonly limitBytes: number) {
    super(`request body exceeds ${limitBytes} bytes`);
  }
}

/**
 * Passes a request body through, failing once more than `limitBytes` have gone
 * by: a chunked upload announces no length, so the limit can only be enforced
 * while streaming, never by buffering the whole body first.
 */
export class BodyLimit extends Transform {
  #seen = 0;

  constructor(private readonly limitBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.limitBytes) callback(new BodyTooLargeError(this.limitBytes));
    else callback(null, chunk);
  }
}
