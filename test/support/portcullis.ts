/**
 * Starts portcullis in-process for integration tests, on 127.0.0.1 port 0,
 * with a policy written as YAML and validated by the real loader. Its log lines
 * are kept so tests can assert on what an operator would read.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { parsePolicy } from '../../src/config/policy-loader.js';
import { startPortcullis, type RunningPortcullis } from '../../src/proxy/start-portcullis.js';

export interface TestProxy {
  readonly url: string;
  readonly port: number;
  readonly running: RunningPortcullis;
  /** Parsed JSON log lines written so far. */
  readonly logs: Record<string, unknown>[];
  close(): Promise<void>;
}

/** `policyYaml` must not set listen or upstream: they are supplied here. */
export async function startTestProxy(upstream: string, policyYaml: string): Promise<TestProxy> {
  const config = parsePolicy(`listen: "127.0.0.1:0"\nupstream: "${upstream}"\n${policyYaml}`, 'test-policy.yaml');
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  const running = await startPortcullis(config, { logger: pino({ level: 'info' }, sink) });
  const port = running.address.port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    running,
    logs,
    close: () => running.close(2_000),
  };
}
