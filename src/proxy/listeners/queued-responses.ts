import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Per connection, its responses queued behind another (pipelining) that have no socket yet. */
const queuedOn = new WeakMap<Socket, Set<ServerResponse>>();

/**
 * Makes a pipelined request's response close with its connection. Node
 * queues a response behind the one before it on the connection, without a
 * socket, and when the connection goes it never closes the queued ones: they
 * emit no 'close', ever. Everything that notices a client leaving listens for
 * that 'close' (aborting the upstream request, freeing a buffered answer or
 * body, leaving the slot queue), so a client that pipelines and hangs up
 * would keep Apache working for nobody and hold buffers until
 * buffering.send_timeout. Here such a response is destroyed and closed as
 * Node closes one with a socket. A response that gets its socket leaves the
 * queue and closes the normal way.
 */
export function closeWithConnectionWhileQueued(req: IncomingMessage, res: ServerResponse): void {
  if (res.socket !== null) return;
  const socket = req.socket;
  if (socket.destroyed) {
    closeQueued(res);
    return;
  }
  let queued = queuedOn.get(socket);
  if (queued === undefined) {
    const responses = new Set<ServerResponse>();
    queued = responses;
    queuedOn.set(socket, responses);
    socket.once('close', () => {
      queuedOn.delete(socket);
      for (const response of responses) closeQueued(response);
    });
  }
  queued.add(res);
  const waiting = queued;
  res.once('socket', () => waiting.delete(res));
}

function closeQueued(res: ServerResponse): void {
  if (res.socket !== null || res.destroyed) return;
  res.destroy();
  res.emit('close');
}
