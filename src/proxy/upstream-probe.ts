import net from 'node:net';

/** Tries one TCP connection to the upstream; resolves to null when it accepts, else to why not. */
export function probeUpstream(upstream: string, timeoutMs: number): Promise<string | null> {
  const url = new URL(upstream);
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  return new Promise((resolve) => {
    const socket = net.connect({ host: url.hostname.replace(/^\[|\]$/g, ''), port, timeout: timeoutMs });
    socket.once('connect', () => {
      socket.destroy();
      resolve(null);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(`no answer within ${timeoutMs} ms`);
    });
    socket.once('error', (error) => resolve(error.message));
  });
}
