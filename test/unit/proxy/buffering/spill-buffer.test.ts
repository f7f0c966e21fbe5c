import { chmod, mkdtemp, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PortcullisError } from '../../../../src/core/errors.js';
import { ByteBudget } from '../../../../src/proxy/buffering/byte-budget.js';
import { SpillBuffer, type SpillBufferOptions } from '../../../../src/proxy/buffering/spill-buffer.js';
import { prepareTempDir } from '../../../../src/proxy/buffering/temp-dir.js';
import { TEMP_FILE_PREFIX } from '../../../../src/proxy/buffering/temp-file.js';

describe('SpillBuffer, with real temp files', () => {
  let dir: string;
  let memory: ByteBudget;
  let disk: ByteBudget;
  const buffers: SpillBuffer[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portcullis-spill-test-'));
    memory = new ByteBudget(1_048_576);
    disk = new ByteBudget(16 * 1_048_576);
  });

  afterEach(async () => {
    for (const buffer of buffers.splice(0)) buffer.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  function spill(options: Partial<SpillBufferOptions> = {}): SpillBuffer {
    const buffer = new SpillBuffer({ memoryLimitBytes: 8_192, memory, disk, tempDir: dir, ...options });
    buffers.push(buffer);
    return buffer;
  }

  /** Appends, waiting for disk writes, and says where each chunk went. */
  async function appendAll(buffer: SpillBuffer, chunks: Buffer[]): Promise<string[]> {
    const results: string[] = [];
    for (const chunk of chunks) {
      const stored = buffer.append(chunk);
      results.push(stored instanceof Promise ? `disk:${String(await stored)}` : String(stored));
    }
    return results;
  }

  async function shiftAll(buffer: SpillBuffer): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (let next = buffer.shift(); next !== null; next = buffer.shift()) parts.push(await next);
    return Buffer.concat(parts);
  }

  /** Distinct bytes per chunk, so a reordering shows. */
  const chunkOf = (index: number, size: number) => Buffer.alloc(size, 65 + (index % 26));

  it('keeps chunks in memory up to its limit, synchronously, and hands them out in order', async () => {
    const buffer = spill();
    expect(buffer.append(chunkOf(0, 4_000))).toBe(true);
    expect(buffer.append(chunkOf(1, 4_000))).toBe(true);
    expect(buffer.memoryBytes).toBe(8_000);
    expect(memory.usedBytes).toBe(8_000);
    expect(buffer.diskBytes).toBe(0);
    expect((await shiftAll(buffer)).equals(Buffer.concat([chunkOf(0, 4_000), chunkOf(1, 4_000)]))).toBe(true);
    // Memory comes back as the reader takes it out.
    expect(memory.usedBytes).toBe(0);
    expect(buffer.shift()).toBeNull();
  });

  it('spills to a temp file past its memory limit and still delivers everything in order', async () => {
    let spills = 0;
    const buffer = spill({ onSpill: () => spills++ });
    const chunks = Array.from({ length: 40 }, (_, i) => chunkOf(i, 3_000));
    const where = await appendAll(buffer, chunks);
    expect(where.slice(0, 2)).toEqual(['true', 'true']);
    expect(where.slice(2).every((result) => result === 'disk:true')).toBe(true);
    expect(spills).toBe(1);
    expect(buffer.diskBytes).toBe(38 * 3_000);
    expect(disk.usedBytes).toBe(38 * 3_000);
    expect(buffer.storedBytes).toBe(40 * 3_000);
    expect((await shiftAll(buffer)).equals(Buffer.concat(chunks))).toBe(true);
  });

  it('interleaves memory and disk as the reader frees memory, without reordering', async () => {
    const buffer = spill({ memoryLimitBytes: 4_096 });
    const chunks = Array.from({ length: 12 }, (_, i) => chunkOf(i, 2_048));
    const out: Buffer[] = [];
    // Writer ahead of the reader by a varying distance.
    for (let i = 0; i < chunks.length; i++) {
      const stored = buffer.append(chunks[i] as Buffer);
      expect(stored instanceof Promise ? await stored : stored).toBe(true);
      if (i % 3 === 2) {
        const next = buffer.shift();
        if (next !== null) out.push(await next);
      }
    }
    out.push(await shiftAll(buffer));
    expect(Buffer.concat(out).equals(Buffer.concat(chunks))).toBe(true);
  });

  it('reuses its file from the start once the reader has caught up, so the file grows only as far as the reader lags', async () => {
    const buffer = spill({ memoryLimitBytes: 1_024 });
    for (let round = 0; round < 5; round++) {
      const chunks = [chunkOf(round, 10_000), chunkOf(round + 1, 10_000)];
      await appendAll(buffer, chunks);
      expect((await shiftAll(buffer)).equals(Buffer.concat(chunks))).toBe(true);
    }
    expect(buffer.diskBytes).toBe(20_000);
  });

  it('copies small chunks into shared blocks, charging whole blocks, so a byte-at-a-time client cannot outgrow its budget', async () => {
    const buffer = spill({ memoryLimitBytes: 8_192 });
    const bytes = Buffer.from('abcdefghij'.repeat(500));
    for (const byte of bytes) expect(buffer.append(Buffer.from([byte]))).toBe(true);
    expect(buffer.memoryBytes).toBe(4_096 * 2);
    expect(memory.usedBytes).toBe(8_192);
    expect(buffer.memoryContents()?.equals(bytes)).toBe(true);
    expect((await shiftAll(buffer)).equals(bytes)).toBe(true);
  });

  it('gives the whole content as one Buffer when it is all in memory, and null once part of it is on disk', async () => {
    const buffer = spill();
    buffer.append(chunkOf(0, 2_000));
    buffer.append(chunkOf(1, 2_000));
    expect(buffer.memoryContents()?.equals(Buffer.concat([chunkOf(0, 2_000), chunkOf(1, 2_000)]))).toBe(true);
    await appendAll(buffer, [chunkOf(2, 9_000)]);
    expect(buffer.memoryContents()).toBeNull();
  });

  it('refuses with needs_disk past its own limit when it has no temp dir, and with budget when shared memory is spent', () => {
    const alone = spill({ tempDir: null });
    expect(alone.append(chunkOf(0, 8_000))).toBe(true);
    expect(alone.append(chunkOf(1, 2_000))).toBe('needs_disk');
    expect(alone.storedBytes).toBe(8_000);

    const tight = new ByteBudget(10_000);
    const first = spill({ tempDir: null, memory: tight });
    const second = spill({ tempDir: null, memory: tight });
    expect(first.append(chunkOf(0, 6_000))).toBe(true);
    expect(second.append(chunkOf(1, 6_000))).toBe('budget');
    first.destroy();
    expect(tight.usedBytes).toBe(0);
    expect(second.append(chunkOf(1, 6_000))).toBe(true);
  });

  it('spills to disk when shared memory is spent, and refuses with budget when the shared disk is spent too', async () => {
    const tightMemory = new ByteBudget(4_000);
    const tightDisk = new ByteBudget(10_000);
    const buffer = spill({ memory: tightMemory, disk: tightDisk });
    expect(await appendAll(buffer, [chunkOf(0, 4_000), chunkOf(1, 4_000), chunkOf(2, 4_000), chunkOf(3, 4_000)])).toEqual(['true', 'disk:true', 'disk:true', 'budget']);
    expect(tightDisk.usedBytes).toBe(8_000);
  });

  it('refuses with disk_error and reports it when the temp file cannot be created', async () => {
    const errors: PortcullisError[] = [];
    const file = join(dir, 'a-file');
    await writeFile(file, '');
    const buffer = spill({ memoryLimitBytes: 1_024, tempDir: join(file, 'below'), onDiskError: (error) => errors.push(error) });
    expect(await appendAll(buffer, [chunkOf(0, 2_000), chunkOf(1, 2_000)])).toEqual(['disk:disk_error', 'disk_error']);
    expect(errors.map((error) => error.code)).toEqual(['PC_ERR_BUFFER_TEMP']);
    // The refused bytes charged nothing that stays charged after destroy.
    buffer.destroy();
    expect(disk.usedBytes).toBe(0);
  });

  it('leaves no file in the temp dir while in use, and closes its file on destroy', async () => {
    const buffer = spill({ memoryLimitBytes: 1_024 });
    await appendAll(buffer, [chunkOf(0, 50_000)]);
    expect(await readdir(dir)).toEqual([]);
    expect(await openFilesIn(dir)).toBe(1);
    buffer.destroy();
    expect(disk.usedBytes).toBe(0);
    expect(memory.usedBytes).toBe(0);
    await waitFor(async () => (await openFilesIn(dir)) === 0);
    expect(buffer.shift()).toBeNull();
    expect(buffer.append(chunkOf(1, 10))).toBe(true);
  });

  it('closes a file whose write is in flight when destroyed', async () => {
    const buffer = spill({ memoryLimitBytes: 1_024 });
    const stored = buffer.append(chunkOf(0, 200_000));
    buffer.destroy();
    expect(await stored).toBe(true);
    await waitFor(async () => (await openFilesIn(dir)) === 0);
    expect(disk.usedBytes).toBe(0);
  });
});

describe('prepareTempDir', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portcullis-tempdir-test-'));
  });

  afterEach(async () => {
    await chmod(dir, 0o700).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });

  it('creates the directory, private, and removes only the temp files an earlier process left', async () => {
    const temp = join(dir, 'state', 'tmp');
    expect(await prepareTempDir(temp)).toBeNull();
    await writeFile(join(temp, `${TEMP_FILE_PREFIX}left-over`), 'x');
    await writeFile(join(temp, 'notes.txt'), 'x');
    expect(await prepareTempDir(temp)).toBeNull();
    expect(await readdir(temp)).toEqual(['notes.txt']);
  });

  it('says why a directory cannot be used, without throwing', async () => {
    await writeFile(join(dir, 'file'), '');
    const problem = await prepareTempDir(join(dir, 'file', 'tmp'));
    expect(problem?.code).toBe('PC_ERR_BUFFER_TEMP');
    expect(problem?.message).toContain(join(dir, 'file', 'tmp'));
  });
});

/** Files this process holds open in `dir` (unlinked ones show as `PATH (deleted)`). */
async function openFilesIn(dir: string): Promise<number> {
  let count = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(join('/proc/self/fd', fd)).catch(() => '');
    if (target.startsWith(`${dir}/`)) count++;
  }
  return count;
}

/** Polls `condition` every 10 ms, at most 2 s: closing a file handle completes on libuv's thread pool. */
async function waitFor(condition: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('condition not met within 2 s');
}
