import type { PortcullisError } from '../../core/errors.js';
import type { ByteBudget } from './byte-budget.js';
import { TempFile } from './temp-file.js';

/**
 * Why a SpillBuffer could not take a chunk:
 * - `needs_disk`: this buffer is at its own memory limit and has no temp dir
 *   to spill to (none configured, or it could not be written at start);
 * - `budget`: the shared memory budget is spent and the disk cannot take it
 *   either (no temp dir, or the shared disk budget is spent too);
 * - `disk_error`: the temp file could not be created or written.
 */
export type SpillRefusal = 'needs_disk' | 'budget' | 'disk_error';

export interface SpillBufferOptions {
  /** Bytes this buffer may hold in memory; past it, chunks go to its temp file. */
  readonly memoryLimitBytes: number;
  /** Memory shared by every buffer. */
  readonly memory: ByteBudget;
  /** Temp file space shared by every buffer (counted as file sizes). */
  readonly disk: ByteBudget;
  /** Where the temp file goes; null: never spill. */
  readonly tempDir: string | null;
  /** Called once, when this buffer first writes to disk. */
  readonly onSpill?: () => void;
  /** Called on every temp file failure, for the log. */
  readonly onDiskError?: (error: PortcullisError) => void;
}

/** Chunks smaller than this are copied into shared blocks instead of kept one by one. */
const SMALL_CHUNK_BYTES = 1_024;
/**
 * Size of such a block, charged in full when it is allocated. A client that
 * sends one byte per TCP segment would otherwise make the proxy keep one
 * Buffer (~100 bytes of object) per byte while the budget counted one.
 */
const BLOCK_BYTES = 4_096;
/** What one read from the temp file delivers, at most. Judgement call: the size of a socket read. */
const FILE_READ_BYTES = 65_536;

interface MemorySegment {
  readonly kind: 'memory';
  readonly bytes: Buffer;
  filled: number;
  readonly charged: number;
}

interface FileSegment {
  readonly kind: 'file';
  start: number;
  end: number;
}

/**
 * A first-in first-out byte buffer that never makes its writer wait while it
 * has room: chunks go to memory up to `memoryLimitBytes` (and while the
 * shared memory budget lasts), beyond that to a temp file (while the shared
 * disk budget lasts), and come out in the order they went in. It is what
 * lets the proxy take a whole request body from a slow client before Apache
 * is involved, and take Apache's whole answer at Apache's pace while a slow
 * client reads it at its own.
 *
 * Contract: one `append` at a time (wait for a returned promise before the
 * next) and one `shift` at a time; both are cheap and synchronous for
 * memory, and return a promise only when the disk is involved. Memory is
 * given back as chunks are shifted out; disk space when the buffer is
 * destroyed (the file is reused from its start whenever its reader catches
 * up, so it grows only as far as the reader falls behind).
 *
 * `destroy()` frees everything; it must be called when the owner is done,
 * however it ends. The temp file has no name (TempFile), so it cannot leak
 * on disk, and destroy closes its handle.
 */
export class SpillBuffer {
  readonly #options: SpillBufferOptions;
  readonly #segments: (MemorySegment | FileSegment)[] = [];
  #fileSegments = 0;
  #memoryCharged = 0;
  #diskCharged = 0;
  #storedBytes = 0;
  #file: Promise<TempFile> | null = null;
  /** Size of the temp file so far: disk charged grows only when a write goes past it. */
  #fileBytes = 0;
  #writeOffset = 0;
  #writing = false;
  #reads = 0;
  #diskFailed = false;
  #spilled = false;
  #destroyed = false;

  constructor(options: SpillBufferOptions) {
    this.#options = options;
  }

  /** Bytes appended so far (shifted ones included). */
  get storedBytes(): number {
    return this.#storedBytes;
  }

  /** Memory this buffer has charged to the shared budget now. */
  get memoryBytes(): number {
    return this.#memoryCharged;
  }

  /** Disk this buffer has charged to the shared budget now (its temp file's size). */
  get diskBytes(): number {
    return this.#diskCharged;
  }

  /** Whether nothing waits to be shifted (a disk write in flight is not waiting yet). */
  get isEmpty(): boolean {
    return this.#segments.length === 0;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /**
   * Stores `chunk` after everything before it. Returns true when it is in
   * memory, a promise when it goes to disk (true once written), or why it
   * could not be stored — then nothing was stored and the caller decides
   * (refuse the request, or wait for the reader). A destroyed buffer
   * discards what it is given and returns true.
   */
  append(chunk: Buffer): true | SpillRefusal | Promise<true | SpillRefusal> {
    if (this.#destroyed) return true;
    if (this.#writing) throw new Error('SpillBuffer: append while a disk write is in flight; wait for its promise');
    if (chunk.length === 0) return true;
    const memory = this.#appendToMemory(chunk);
    if (memory === true) {
      this.#storedBytes += chunk.length;
      return true;
    }
    if (this.#diskFailed) return 'disk_error';
    if (this.#options.tempDir === null) return memory === 'over_limit' ? 'needs_disk' : 'budget';
    const position = this.#writeOffset;
    const growth = Math.max(0, position + chunk.length - this.#fileBytes);
    if (growth > 0 && !this.#options.disk.tryTake(growth)) return 'budget';
    this.#diskCharged += growth;
    this.#fileBytes += growth;
    this.#writeOffset += chunk.length;
    this.#writing = true;
    return this.#appendToFile(chunk, position, this.#options.tempDir);
  }

  /**
   * Takes the oldest bytes out: a Buffer from memory, a promise of up to
   * 64 KiB read from the temp file (rejected with PC_ERR_BUFFER_TEMP if the
   * read fails), or null when nothing is waiting (or after destroy).
   */
  shift(): Buffer | Promise<Buffer> | null {
    if (this.#destroyed) return null;
    const head = this.#segments[0];
    if (head === undefined) return null;
    if (head.kind === 'memory') {
      this.#segments.shift();
      this.#memoryCharged -= head.charged;
      this.#options.memory.give(head.charged);
      return head.filled === head.bytes.length ? head.bytes : head.bytes.subarray(0, head.filled);
    }
    const length = Math.min(FILE_READ_BYTES, head.end - head.start);
    const position = head.start;
    head.start += length;
    if (head.start === head.end) {
      this.#segments.shift();
      this.#fileSegments -= 1;
    }
    this.#reads += 1;
    return this.#readFromFile(length, position);
  }

  /** Everything stored, as one Buffer, when all of it is in memory and nothing was shifted; null otherwise. Takes nothing out. */
  memoryContents(): Buffer | null {
    if (this.#destroyed || this.#fileSegments > 0 || this.#writing) return null;
    const parts = (this.#segments as MemorySegment[]).map((segment) => segment.bytes.subarray(0, segment.filled));
    const whole = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    return whole.length === this.#storedBytes ? whole : null;
  }

  /** Frees the memory and the temp file and gives their budgets back. Idempotent. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#segments.length = 0;
    this.#fileSegments = 0;
    this.#options.memory.give(this.#memoryCharged);
    this.#options.disk.give(this.#diskCharged);
    this.#memoryCharged = 0;
    this.#diskCharged = 0;
    // Reads and writes in flight finish first (FileHandle.close waits for them).
    void this.#file?.then((file) => file.close(), () => {});
  }

  #appendToMemory(chunk: Buffer): true | 'over_limit' | 'over_budget' {
    const small = chunk.length < SMALL_CHUNK_BYTES;
    const tail = this.#segments[this.#segments.length - 1];
    if (small && tail?.kind === 'memory' && tail.bytes.length - tail.filled >= chunk.length) {
      chunk.copy(tail.bytes, tail.filled);
      tail.filled += chunk.length;
      return true;
    }
    const charge = small ? BLOCK_BYTES : chunk.length;
    if (this.#memoryCharged + charge > this.#options.memoryLimitBytes) return 'over_limit';
    if (!this.#options.memory.tryTake(charge)) return 'over_budget';
    this.#memoryCharged += charge;
    if (small) {
      const block = Buffer.allocUnsafe(BLOCK_BYTES);
      chunk.copy(block);
      this.#segments.push({ kind: 'memory', bytes: block, filled: chunk.length, charged: charge });
    } else {
      // Kept as is, not copied: Node hands each socket read over as a Buffer of its own.
      this.#segments.push({ kind: 'memory', bytes: chunk, filled: chunk.length, charged: charge });
    }
    return true;
  }

  async #appendToFile(chunk: Buffer, position: number, tempDir: string): Promise<true | SpillRefusal> {
    try {
      this.#file ??= TempFile.create(tempDir);
      const file = await this.#file;
      if (!this.#destroyed) await file.write(chunk, position);
    } catch (error) {
      this.#writing = false;
      if (this.#destroyed) return true;
      // This buffer stops using the disk; what it already holds there stays readable.
      this.#diskFailed = true;
      this.#writeOffset = position;
      this.#options.onDiskError?.(error as PortcullisError);
      return 'disk_error';
    }
    this.#writing = false;
    if (this.#destroyed) return true;
    this.#storedBytes += chunk.length;
    const tail = this.#segments[this.#segments.length - 1];
    if (tail?.kind === 'file' && tail.end === position) {
      tail.end += chunk.length;
    } else {
      this.#segments.push({ kind: 'file', start: position, end: position + chunk.length });
      this.#fileSegments += 1;
    }
    if (!this.#spilled) {
      this.#spilled = true;
      this.#options.onSpill?.();
    }
    return true;
  }

  async #readFromFile(length: number, position: number): Promise<Buffer> {
    try {
      return await (await (this.#file as Promise<TempFile>)).read(length, position);
    } catch (error) {
      if (!this.#destroyed) this.#options.onDiskError?.(error as PortcullisError);
      throw error;
    } finally {
      this.#reads -= 1;
      // The reader has caught up: later chunks reuse the file from its start,
      // so a long answer to a client that keeps nearly up needs no more disk
      // than the distance between them.
      if (this.#reads === 0 && !this.#writing && this.#fileSegments === 0) this.#writeOffset = 0;
    }
  }
}
