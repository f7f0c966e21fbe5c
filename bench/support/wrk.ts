import { execFile } from 'node:child_process';
import { pinned } from './bench-tools.js';

export interface WrkRun {
  readonly requests: number;
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Non-2xx/3xx answers and socket errors. */
  readonly errors: number;
}

export interface WrkOptions {
  readonly url: string;
  readonly connections: number;
  readonly durationS: number;
  /** CPU to pin wrk to. */
  readonly cpu?: number;
  /** A wrk Lua script (e.g. one X-Forwarded-For per request). */
  readonly script?: string;
  /** Arguments for the script (after `--`). */
  readonly args?: readonly string[];
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

/** Runs wrk once (one thread) and parses its --latency report. */
export function runWrk(options: WrkOptions): Promise<WrkRun> {
  const args = ['-t1', `-c${options.connections}`, `-d${options.durationS}s`, '--latency', ...(options.script ? ['-s', options.script] : []), options.url, ...(options.args ? ['--', ...options.args] : [])];
  const [command, fullArgs] = options.cpu === undefined ? ['wrk', args] : pinned(options.cpu, 'wrk', args);
  return new Promise((resolve, reject) => {
    execFile(command, fullArgs, { timeout: (options.durationS + 30) * 1000 }, (error, stdout) => {
      if (error) return reject(new Error(`wrk failed: ${error.message}\n${stdout}`));
      const latency = (pct: string) => {
        const match = new RegExp(`^\\s+${pct}%\\s+([\\d.]+)(us|ms|s|m)$`, 'm').exec(stdout);
        return match ? Number(match[1]) * (UNIT_MS[match[2] as string] as number) : Number.NaN;
      };
      const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? Number.NaN);
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
      const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
      const errors = non2xx + (socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0);
      resolve({ requests, reqPerSec: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? Number.NaN), p50Ms: latency('50'), p99Ms: latency('99'), errors });
    });
  });
}
