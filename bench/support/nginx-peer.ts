import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pinned, startChild, waitForHttp } from './bench-tools.js';

/** A running nginx the benchmarks compare with. */
export interface NginxPeer {
  /** The master and its workers, for CPU accounting. */
  pids(): number[];
  stop(): Promise<void>;
}

/**
 * Starts nginx in the foreground on `port`, one worker pinned to `cpu`, with
 * `http` as the body of its `http {}` block (written into `dir`, which also
 * holds its pid and error log). Resolves once it answers.
 */
export async function startNginx(dir: string, port: number, http: string, cpu = 1): Promise<NginxPeer> {
  const conf = `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
${http}
}
`;
  await writeFile(join(dir, 'nginx.conf'), conf);
  const nginx = startChild(...pinned(cpu, 'nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir]));
  await waitForHttp(`http://127.0.0.1:${port}/`);
  const master = nginx.child.pid as number;
  return { pids: () => [master, ...childPids(master)], stop: () => nginx.stop() };
}

/** Child pids of `pid` (nginx's workers), from /proc. */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
