import type { AddressInfo, Server } from 'node:net';
import { PortcullisError } from '../../core/errors.js';

/**
 * Binds `server` to `host:port`; resolves with the bound address (port 0 gets
 * a free one), or rejects with PC_ERR_LISTEN naming `what` and what to do.
 */
export function listenOn(server: Server, host: string, port: number, what: string, advice: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(new PortcullisError('PC_ERR_LISTEN', `cannot listen ${what} on ${host}:${port}: ${error.message}; ${advice}`, { cause: error }));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** The advice for a proxy port that cannot be bound. */
export const PROXY_PORT_ADVICE = 'is another process using the port, or does it need privileges?';
