/**
 * Hand-written HTTP/2 frames over a raw TLS socket, for attacks Node's own
 * http2 client would never send (CONTINUATION without end, PING and SETTINGS
 * floods, empty DATA frames, streams past the advertised cap). Only what the
 * hostile tests need: frame builders, a minimal HPACK encoder (static-table
 * indexed fields and literals without indexing) and a connection that
 * collects what the server sends back.
 */
import tls from 'node:tls';

/** The client connection preface (RFC 9113 §3.4). */
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Frame types (RFC 9113 §6). */
export const FRAME = { DATA: 0x0, HEADERS: 0x1, RST_STREAM: 0x3, SETTINGS: 0x4, PING: 0x6, GOAWAY: 0x7, CONTINUATION: 0x9 } as const;
/** Frame flags. */
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
/** Error codes (RFC 9113 §7). */
export const ERROR = { NO_ERROR: 0x0, PROTOCOL_ERROR: 0x1, INTERNAL_ERROR: 0x2, REFUSED_STREAM: 0x7, CANCEL: 0x8, ENHANCE_YOUR_CALM: 0xb } as const;

/** One frame: 9-byte header (24-bit length, type, flags, 31-bit stream id) and its payload. */
export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

/** An HPACK integer with a 7-bit prefix (RFC 7541 §5.1), first byte's high bit clear. */
function hpackInt7(value: number): Buffer {
  if (value < 127) return Buffer.from([value]);
  const bytes = [127];
  let rest = value - 127;
  while (rest >= 128) {
    bytes.push((rest & 127) | 128);
    rest >>= 7;
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

/** A literal header field without indexing, new name (RFC 7541 §6.2.2), no Huffman. */
export function literalField(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00]), hpackInt7(name.length), Buffer.from(name, 'latin1'), hpackInt7(value.length), Buffer.from(value, 'latin1')]);
}

/**
 * A request's header block: `:method GET` or `POST` (static index 2 or 3,
 * 0x82/0x83), `:scheme https` (7, 0x87), `:path` (`/` is static index 4,
 * 0x84; others a literal with name index 4), `:authority` a literal with name
 * index 1, then `extra` fields.
 */
export function requestBlock(authority: string, path = '/', extra: readonly Buffer[] = [], method: 'GET' | 'POST' = 'GET'): Buffer {
  const pathField = path === '/' ? Buffer.from([0x84]) : Buffer.concat([Buffer.from([0x04]), hpackInt7(path.length), Buffer.from(path, 'latin1')]);
  const authorityField = Buffer.concat([Buffer.from([0x01]), hpackInt7(authority.length), Buffer.from(authority, 'latin1')]);
  return Buffer.concat([Buffer.from([method === 'GET' ? 0x82 : 0x83, 0x87]), pathField, authorityField, ...extra]);
}

/** A HEADERS frame; by default the whole request (END_HEADERS | END_STREAM). */
export function headersFrame(streamId: number, block: Buffer, flags: number = FLAG.END_HEADERS | FLAG.END_STREAM): Buffer {
  return frame(FRAME.HEADERS, flags, streamId, block);
}

/** A CONTINUATION frame of a header block. */
export function continuationFrame(streamId: number, fragment: Buffer, endHeaders = false): Buffer {
  return frame(FRAME.CONTINUATION, endHeaders ? FLAG.END_HEADERS : 0, streamId, fragment);
}

/** RST_STREAM with an error code (CANCEL by default). */
export function rstStreamFrame(streamId: number, code: number = ERROR.CANCEL): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code);
  return frame(FRAME.RST_STREAM, 0, streamId, payload);
}

/** An empty SETTINGS frame, or its ACK. */
export function settingsFrame(ack = false): Buffer {
  return frame(FRAME.SETTINGS, ack ? FLAG.ACK : 0, 0);
}

/** A PING with an 8-byte payload numbered `n`. */
export function pingFrame(n: number): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeUInt32BE(n >>> 0, 4);
  return frame(FRAME.PING, 0, 0, payload);
}

/** A DATA frame (empty unless given bytes). */
export function dataFrame(streamId: number, bytes: Buffer = Buffer.alloc(0), endStream = false): Buffer {
  return frame(FRAME.DATA, endStream ? FLAG.END_STREAM : 0, streamId, bytes);
}

/** A frame as received. */
export interface ReceivedFrame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

/** A raw HTTP/2 client connection over TLS, collecting the server's frames. */
export class RawHttp2Connection {
  readonly frames: ReceivedFrame[] = [];
  readonly socket: tls.TLSSocket;
  /** performance.now() when the socket closed; null while open. */
  closedAtMs: number | null = null;
  readonly openedAtMs: number;
  readonly #closed: Promise<void>;
  #pending = Buffer.alloc(0);

  private constructor(socket: tls.TLSSocket) {
    this.socket = socket;
    this.openedAtMs = performance.now();
    socket.on('data', (chunk: Buffer) => this.#parse(chunk));
    socket.on('error', () => {});
    this.#closed = new Promise((resolve) => socket.once('close', () => ((this.closedAtMs = performance.now()), resolve())));
  }

  /** Connects with ALPN h2 from `localAddress`, and sends the preface, an empty SETTINGS and the ACK of the server's (as real clients do). */
  static async open(port: number, options: { ca: string; servername: string; localAddress: string; ackSettings?: boolean }): Promise<RawHttp2Connection> {
    const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, servername: options.servername, ca: options.ca, ALPNProtocols: ['h2'], localAddress: options.localAddress } as tls.ConnectionOptions, () => resolve(s));
      s.once('error', reject);
    });
    if (socket.alpnProtocol !== 'h2') throw new Error(`server chose ${String(socket.alpnProtocol)}, not h2`);
    const connection = new RawHttp2Connection(socket);
    connection.write(Buffer.concat([PREFACE, settingsFrame(), ...(options.ackSettings === false ? [] : [settingsFrame(true)])]));
    return connection;
  }

  get closed(): boolean {
    return this.closedAtMs !== null;
  }

  /** Writes bytes unless the socket is gone; false once it is. */
  write(bytes: Buffer): boolean {
    if (this.socket.destroyed || !this.socket.writable) return false;
    this.socket.write(bytes);
    return true;
  }

  /**
   * Writes `count` frames made by `make(i)`, yielding to the event loop every
   * `batch` so the server's answers (and its closing) are seen; stops early
   * once the socket is gone. Returns how many were written.
   */
  async flood(count: number, make: (i: number) => Buffer, batch = 50): Promise<number> {
    let written = 0;
    for (let i = 0; i < count; i += batch) {
      const chunk: Buffer[] = [];
      for (let j = i; j < Math.min(count, i + batch); j++) chunk.push(make(j));
      if (!this.write(Buffer.concat(chunk))) break;
      written += chunk.length;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return written;
  }

  /** Resolves once the socket closed, or after `timeoutMs`; true if it closed. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([this.#closed, timeout]);
    clearTimeout(timer);
    return this.closed;
  }

  /** The error code of the server's GOAWAY, if it sent one. */
  get goawayCode(): number | null {
    const goaway = this.frames.find((f) => f.type === FRAME.GOAWAY);
    return goaway === undefined ? null : goaway.payload.readUInt32BE(4);
  }

  /** Error codes of the RST_STREAM frames the server sent. */
  get resetCodes(): number[] {
    return this.frames.filter((f) => f.type === FRAME.RST_STREAM).map((f) => f.payload.readUInt32BE(0));
  }

  destroy(): void {
    this.socket.destroy();
  }

  #parse(chunk: Buffer): void {
    let buffer = Buffer.concat([this.#pending, chunk]);
    while (buffer.length >= 9) {
      const length = buffer.readUIntBE(0, 3);
      if (buffer.length < 9 + length) break;
      this.frames.push({ type: buffer[3] as number, flags: buffer[4] as number, streamId: buffer.readUInt32BE(5) & 0x7fffffff, payload: Buffer.from(buffer.subarray(9, 9 + length)) });
      buffer = buffer.subarray(9 + length);
    }
    this.#pending = Buffer.from(buffer);
  }
}
