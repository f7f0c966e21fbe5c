import ipaddr from 'ipaddr.js';

/** Where a listener binds. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

const HOST_PORT = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/;

/**
 * Parses `0.0.0.0:8000`, `127.0.0.1:9180`, `[::]:8000` or `localhost:8000`.
 * Port 0 asks the kernel for a free port (useful in tests). Returns null when
 * the text is not `HOST:PORT` with a port in 0–65535.
 */
export function parseListenAddress(text: string): ListenAddress | null {
  const match = HOST_PORT.exec(text.trim());
  if (!match) return null;
  const host = (match[1] ?? match[2]) as string;
  const port = Number(match[3]);
  if (port > 65_535) return null;
  if (match[1] !== undefined && !ipaddr.IPv6.isValid(host)) return null;
  return { host, port };
}
