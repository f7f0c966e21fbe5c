import type { IncomingMessage } from 'node:http';
import { ReceivedBody } from './received-body.js';
import type { SpillBuffer, SpillRefusal } from './spill-buffer.js';

/**
 * How receiving a request body ended. A value, not an exception: refusing a
 * body is normal operation under load.
 * - `received`: all of it is in the buffer;
 * - `refused`: `too_large` past `request.max_body`, or why the buffer could
 *   not take more (SpillRefusal); the rest of the body is discarded;
 * - `client_gone`: the client hung up or timed out (`timeouts.client_request`
 *   cuts a client that takes too long) before sending all of it.
 */
export type BodyReceipt =
  | { readonly kind: 'received'; readonly body: ReceivedBody }
  | { readonly kind: 'refused'; readonly reason: 'too_large' | SpillRefusal }
  | { readonly kind: 'client_gone' };

/**
 * Reads the whole body of `req` into `buffer`, as fast or as slowly as the
 * client sends it, pausing the client only while a chunk is written to disk.
 * No upstream slot is held meanwhile: that is the point. The buffer belongs
 * to the receipt: it is destroyed here unless the body was received, and
 * then released through the ReceivedBody.
 */
export function receiveRequestBody(req: IncomingMessage, buffer: SpillBuffer, maxBodyBytes: number): Promise<BodyReceipt> {
  return new Promise((resolve) => {
    let receivedBytes = 0;
    let writing = false;
    let ended = false;
    let settled = false;
    const settle = (receipt: BodyReceipt): void => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onGone);
      // With no 'error' listener left, Node's IncomingMessage emits none (it
      // checks): a client that resets after this cannot raise an unhandled one.
      req.off('error', onGone);
      if (receipt.kind === 'refused') {
        buffer.destroy();
        // Read and drop the rest, so the refusal is not lost to a reset when the connection closes on unread data.
        req.resume();
      } else if (receipt.kind === 'client_gone') {
        buffer.destroy();
      }
      resolve(receipt);
    };
    const onData = (chunk: Buffer): void => {
      receivedBytes += chunk.length;
      if (receivedBytes > maxBodyBytes) {
        settle({ kind: 'refused', reason: 'too_large' });
        return;
      }
      const stored = buffer.append(chunk);
      if (stored === true) return;
      if (typeof stored === 'string') {
        settle({ kind: 'refused', reason: stored });
        return;
      }
      // One disk write at a time: the client waits for the disk, never for Apache.
      writing = true;
      req.pause();
      void stored.then((result) => {
        writing = false;
        if (result !== true) settle({ kind: 'refused', reason: result });
        else if (ended) settle({ kind: 'received', body: new ReceivedBody(buffer) });
        else req.resume();
      });
    };
    const onEnd = (): void => {
      ended = true;
      if (!writing) settle({ kind: 'received', body: new ReceivedBody(buffer) });
    };
    const onGone = (): void => {
      if (!ended) settle({ kind: 'client_gone' });
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('close', onGone);
    req.on('error', onGone);
  });
}
