/** Runs the real `portcullis` CLI (src/cli/main.ts through tsx) as a subprocess, as a user would. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const CLI = join(import.meta.dirname, '../../src/cli/main.ts');

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunCliOptions {
  /** The whole environment (PATH is added); absent: the test's own. Pass one to keep e.g. PORTCULLIS_ADMIN_TOKEN out. */
  readonly env?: Record<string, string>;
  readonly timeoutMs?: number;
}

/** Runs the CLI to completion; rejects if it does not finish within the timeout (default 20 s). */
export function runCli(args: string[], options: RunCliOptions = {}): Promise<Finished> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env === undefined ? process.env : { PATH: process.env.PATH ?? '', ...options.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`portcullis ${args.join(' ')} did not finish in ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
