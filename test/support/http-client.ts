/**
 * A small HTTP client for tests that need what fetch hides: a chosen source
 * address (all of 127.0.0.0/8 is loopback, so `localAddress: '127.9.1.1'` is
 * another client, and `127.9.2.1` another /24), keep-alive, and raw targets.
 */
import http from 'node:http';
import net from 'node:net';

export interface TestResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface TestRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  localAddress?: string;
  agent?: http.Agent;
}

/** Sends one request to `baseUrl` and reads the whole answer. */
export function request(baseUrl: string, options: TestRequest = {}): Promise<TestResponse> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port,
        method: options.method ?? 'GET',
        path: options.path ?? '/',
        headers: options.headers,
        localAddress: options.localAddress,
        agent: options.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A keep-alive agent bound to one source address: one "client" reusing its connections, as a flood does. */
export function clientAgent(localAddress: string): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: 4, localAddress } as http.AgentOptions);
}

/**
 * Sends a request line exactly as given (fetch and http.request would normalise
 * the path) and returns the status code. Bounded: gives up after `timeoutMs`.
 */
export function rawRequest(port: number, requestText: string, timeoutMs = 5_000, localAddress?: string, host = '127.0.0.1'): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, ...(localAddress === undefined ? {} : { localAddress }) });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms to ${JSON.stringify(requestText.split('\r\n')[0])}`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(requestText));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, text });
    });
  });
}
