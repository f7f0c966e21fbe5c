import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';

/**
 * The external tools the load benchmarks drive. Nothing is installed behind
 * the user's back: a missing tool stops the benchmark with the Debian
 * package to install.
 */
export function requireTool(command: string, debianPackage: string): string {
  try {
    return execFileSync('sh', ['-c', 'command -v "$1"', 'sh', command], { encoding: 'utf8' }).trim();
  } catch {
    console.error(`bench: ${command} is not installed. Install it with: sudo apt-get install ${debianPackage}`);
    process.exit(1);
  }
}

/** Whether a tool exists (for optional peers such as nginx). */
export function hasTool(command: string): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v "$1"', 'sh', command], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `taskset -c CPU` prefix when the machine has that CPU, so processes do not fight over one core. */
export function pinned(cpu: number, command: string, args: readonly string[]): [string, string[]] {
  if (os.cpus().length <= cpu || !hasTool('taskset')) return [command, [...args]];
  return ['taskset', ['-c', String(cpu), command, ...args]];
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Resident memory of a process in bytes, from /proc. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kb ?? 0) * 1024;
}

/** Starts a child, kills it (and waits) on `stop`; bounded by `maxMs` in case the benchmark dies. */
export function startChild(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; maxMs?: number } = {}): { child: ChildProcess; stop(): Promise<void>; output(): string } {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
  const killer = setTimeout(() => child.kill('SIGKILL'), options.maxMs ?? 30 * 60_000);
  killer.unref();
  return {
    child,
    output: () => output,
    stop: () =>
      new Promise<void>((resolve) => {
        clearTimeout(killer);
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
      }),
  };
}

/** Resolves once `url` answers (any status), or rejects after `timeoutMs`. */
export async function waitForHttp(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      await fetch(url, { signal: AbortSignal.timeout(1_000) });
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port` (a TLS server fetch cannot check without its CA), or rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`nothing accepted connections on port ${port} within ${timeoutMs} ms`);
}
