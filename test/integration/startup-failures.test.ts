import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPortcullis } from '../../src/app/start-portcullis.js';
import { parsePolicy } from '../../src/config/policy-loader.js';

const CLI = join(import.meta.dirname, '../../src/cli/main.ts');

/** A port something else holds for the test's length. */
async function occupyPort(): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** Whether anything accepts connections on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/** Runs `portcullis serve` on `yaml` until it exits (bounded); says how long it took from its error line to its exit. */
function serveUntilExit(file: string): Promise<{ code: number | null; stderr: string; exitAfterErrorMs: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let errorAtMs = Number.NaN;
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (Number.isNaN(errorAtMs) && stderr.includes('portcullis: ')) errorAtMs = performance.now();
    });
    child.stdout.resume();
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`portcullis serve did not exit within 15 s:\n${stderr}`));
    }, 15_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, exitAfterErrorMs: performance.now() - errorAtMs });
    });
  });
}

describe('a start-up step that fails', () => {
  let dir: string;
  let taken: { port: number; close(): Promise<void> };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portcullis-startup-'));
    taken = await occupyPort();
  });

  afterAll(async () => {
    await taken?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function policy(name: string, yaml: string): Promise<string> {
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, `upstream: "http://127.0.0.1:9"\nstate_dir: "${join(dir, `${name}-state`)}"\n${yaml}`);
    return file;
  }

  it.each([
    ['the proxy listen', 'PC_ERR_LISTEN', () => `listen: "127.0.0.1:${taken.port}"\nadmin:\n  listen: "127.0.0.1:0"\n`],
    ['the admin listen', 'PC_ERR_LISTEN', () => `listen: "127.0.0.1:0"\nadmin:\n  listen: "127.0.0.1:${taken.port}"\n`],
    ['the admin token file', 'PC_ERR_ADMIN_TOKEN', () => `listen: "127.0.0.1:0"\nadmin:\n  listen: "127.0.0.1:0"\n  token_file: "/nonexistent/portcullis.token"\n`],
    ['the access log', 'PC_ERR_ACCESS_LOG', () => `listen: "127.0.0.1:0"\nadmin:\n  listen: "127.0.0.1:0"\naccess_log: "/nonexistent/dir/access.log"\n`],
  ])('%s: the process says which (%s) and exits at once, watchers and timers unwound', async (name, code, yaml) => {
    const result = await serveUntilExit(await policy(name.replaceAll(' ', '-'), yaml()));
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain(`[${code}]`);
    expect(result.exitAfterErrorMs).toBeLessThan(1_000);
  });

  it('an unusable state dir is not fatal (npm start as a non-root user): it serves, and says bans will not be kept', async () => {
    const notADir = join(dir, 'state-is-a-file');
    await writeFile(notADir, 'not a directory');
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const config = parsePolicy(`listen: "127.0.0.1:0"\nupstream: "http://127.0.0.1:9"\nstate_dir: "${notADir}"\nadmin:\n  listen: "127.0.0.1:0"\n`, 'state.yaml');
    const running = await startPortcullis(config, { logger });
    try {
      expect(await accepts(running.address.port)).toBe(true);
      expect(lines.join('\n')).toContain('PC_ERR_STATE_FILE');
    } finally {
      await running.close(0);
    }
  });

  it('unwinds what it had started: after a failed admin listen the proxy port is free again', async () => {
    const free = await occupyPort();
    const proxyPort = free.port;
    await free.close();
    const config = parsePolicy(`listen: "127.0.0.1:${proxyPort}"\nupstream: "http://127.0.0.1:9"\nstate_dir: "${join(dir, 'inproc-state')}"\nadmin:\n  listen: "127.0.0.1:${taken.port}"\n`, 'inproc.yaml');
    const file = join(dir, 'inproc.yaml');
    await writeFile(file, '');
    await expect(startPortcullis(config, { logger: pino({ level: 'silent' }), policyFile: file, watchPolicy: true })).rejects.toMatchObject({ code: 'PC_ERR_LISTEN' });
    expect(await accepts(proxyPort)).toBe(false);
  });
});
