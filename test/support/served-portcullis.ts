/**
 * Runs `portcullis serve` as its own process, as production does, for tests
 * whose failure mode is the process dying: an in-process proxy would take the
 * test runner down with it instead of failing one test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLI = join(import.meta.dirname, '../../src/cli/main.ts');

export interface ServedProxy {
  readonly port: number;
  /** Every line the process wrote (stdout and stderr). */
  readonly output: string[];
  /** Whether the process is still running. */
  alive(): boolean;
  /** Stops the process (SIGTERM, SIGKILL after 5 s) and removes its files. */
  stop(): Promise<void>;
}

/** Starts `portcullis serve` on 127.0.0.1 port 0 with `policyYaml` (which must not set listen, upstream, state_dir or admin). */
export async function startServedProxy(upstream: string, policyYaml: string): Promise<ServedProxy> {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-served-'));
  const file = join(dir, 'policy.yaml');
  await writeFile(file, `listen: "127.0.0.1:0"\nupstream: "${upstream}"\nstate_dir: "${join(dir, 'state')}"\nadmin:\n  listen: "127.0.0.1:0"\n${policyYaml}`);
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`portcullis serve did not start within 20 s:\n${output.join('\n')}`)), 20_000);
    const onLine = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        output.push(line);
        const listening = /"listen":"[^"]*:(\d+)"/.exec(line);
        if (listening && line.includes('portcullis is listening')) {
          clearTimeout(timer);
          resolve(Number(listening[1]));
        }
      }
    };
    child.stdout?.on('data', onLine);
    child.stderr?.on('data', onLine);
    void exit.then(() => {
      clearTimeout(timer);
      reject(new Error(`portcullis serve exited during start:\n${output.join('\n')}`));
    });
  });
  return {
    port,
    output,
    alive: () => !exited,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exit;
        clearTimeout(killer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
