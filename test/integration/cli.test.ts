import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { runCli } from '../support/cli.js';
import { request } from '../support/http-client.js';

const CLI = [join(import.meta.dirname, '../../src/cli/main.ts')];
const NODE_ARGS = ['--import', 'tsx'];

describe('portcullis check', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portcullis-cli-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts the shipped policy', async () => {
    const result = await runCli(['check', join(import.meta.dirname, '../../config/portcullis.yaml')]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('OK (4 limit rules, 1 blocks');
  });

  it('prints FILE:LINE:COL for each problem and exits 1', async () => {
    const file = join(dir, 'typo.yaml');
    await writeFile(file, 'limits:\n  - name: read\n    methods: [GET]\n    per_ip: { rate: 20/s, brust: 100 }\nconcurrency:\n  upstream_mx: 10\n');
    const result = await runCli(['check', file]);
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')).toEqual([
      `${file}:4:27: limits[0].per_ip.brust: unknown key "brust"; did you mean "burst"?`,
      `${file}:6:3: concurrency.upstream_mx: unknown key "upstream_mx"; did you mean "upstream_max"?`,
      `${file}: 2 problems`,
      '',
    ]);
  });

  it('explains usage errors with exit code 2', async () => {
    const result = await runCli(['check']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('check takes exactly one policy file');
    expect((await runCli(['serve', '--bogus'])).code).toBe(2);
    expect((await runCli(['frobnicate'])).stderr).toContain('unknown command "frobnicate"');
  });

  it('has --help on every command', async () => {
    for (const args of [['--help'], ['serve', '--help'], ['check', '--help']]) {
      const result = await runCli(args);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^Usage: portcullis/);
    }
  });
});

describe('portcullis serve', () => {
  let apache: ApacheHandle;
  let dir: string;

  beforeAll(async () => {
    apache = await startApacheWithScripts();
    dir = await mkdtemp(join(tmpdir(), 'portcullis-serve-'));
  });

  afterAll(async () => {
    await apache?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('finishes in-flight requests on SIGTERM, then exits 0', async () => {
    const file = join(dir, 'policy.yaml');
    await writeFile(file, `listen: "127.0.0.1:0"\nupstream: "${apache.url}"\nstate_dir: "${join(dir, 'state')}"\n`);
    const child = spawn(process.execPath, [...NODE_ARGS, ...CLI, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const port = await listeningPort(child);
      const inFlight = request(`http://127.0.0.1:${port}`, { path: '/slow.cgi?1' });
      // Give the request time to reach Apache before the signal.
      await new Promise((resolve) => setTimeout(resolve, 300));
      child.kill('SIGTERM');
      const response = await inFlight;
      expect(response.status).toBe(200);
      expect(response.body).toContain('slept 1');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a single node never loads the Redis client', async () => {
    const file = join(dir, 'single.yaml');
    await writeFile(file, `listen: "127.0.0.1:0"\nupstream: "${apache.url}"\nstate_dir: "${join(dir, 'state-single')}"\n`);
    // Node's CommonJS cache names every package file loaded, also those an ES module imported.
    const loaded = join(dir, 'loaded.txt');
    const preload = join(dir, 'list-loaded.cjs');
    // Written aside and renamed, so the test never reads a half-written list.
    await writeFile(preload, `process.on('SIGUSR2', () => { const fs = require('node:fs'); fs.writeFileSync(${JSON.stringify(`${loaded}.part`)}, Object.keys(require.cache).join('\\n')); fs.renameSync(${JSON.stringify(`${loaded}.part`)}, ${JSON.stringify(loaded)}); });\n`);
    const child = spawn(process.execPath, ['--require', preload, ...NODE_ARGS, ...CLI, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await listeningPort(child);
      child.kill('SIGUSR2');
      const files = await readWhenWritten(loaded);
      expect(files.some((path) => path.includes('/node_modules/undici/')), 'the list holds packages at all').toBe(true);
      expect(files.filter((path) => path.includes('/node_modules/ioredis/'))).toEqual([]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('refuses to start on an invalid policy, naming the problem', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'listen: "127.0.0.1:0"\nlimits: 5\n');
    const result = await runCli(['serve', '--config', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${file}:2:9: limits: must be`);
  });
});

/** The lines of `file` once it exists (bounded wait). */
async function readWhenWritten(file: string): Promise<string[]> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) return text.split('\n');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${file} was not written within 5 s`);
}

/** Reads the port from the "portcullis is listening" log line (bounded wait). */
function listeningPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error(`portcullis did not start listening: ${buffer}`)), 15_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const match = /"listen":"[^"]*:(\d+)"/.exec(buffer);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.on('exit', () => reject(new Error(`portcullis exited before listening: ${buffer}`)));
  });
}
