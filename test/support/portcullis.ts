/**
 * Starts portcullis in-process for integration tests, on 127.0.0.1 port 0,
 * with a policy written as YAML and validated by the real loader. Its log lines
 * are kept so tests can assert on what an operator would read.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { parsePolicy } from '../../src/config/policy-loader.js';
import type { BanBackend } from '../../src/firewall/ban-backend.js';
import { startPortcullis, type RunningPortcullis } from '../../src/proxy/start-portcullis.js';

export interface TestProxy {
  readonly url: string;
  readonly port: number;
  readonly running: RunningPortcullis;
  /** Parsed JSON log lines written so far. */
  readonly logs: Record<string, unknown>[];
  /** Where this proxy keeps its ban state. */
  readonly stateDir: string;
  close(): Promise<void>;
}

export interface TestProxyOptions {
  /** A firewall backend instead of the policy's (e.g. one running inside a test network namespace). */
  readonly banBackend?: BanBackend;
  /** Keep bans in this directory (default: a fresh temp dir, removed on close). */
  readonly stateDir?: string;
}

/** `policyYaml` must not set listen, upstream or state_dir: they are supplied here. */
export async function startTestProxy(upstream: string, policyYaml: string, options: TestProxyOptions = {}): Promise<TestProxy> {
  const ownStateDir = options.stateDir === undefined ? await mkdtemp(join(tmpdir(), 'portcullis-test-state-')) : null;
  const stateDir = options.stateDir ?? (ownStateDir as string);
  const config = parsePolicy(`listen: "127.0.0.1:0"\nupstream: "${upstream}"\nstate_dir: "${stateDir}"\n${policyYaml}`, 'test-policy.yaml');
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  const running = await startPortcullis(config, { logger: pino({ level: 'info' }, sink), ...(options.banBackend ? { banBackend: options.banBackend } : {}) });
  const port = running.address.port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    running,
    logs,
    stateDir,
    async close() {
      await running.close(2_000);
      if (ownStateDir !== null) await rm(ownStateDir, { recursive: true, force: true });
    },
  };
}
