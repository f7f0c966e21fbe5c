/**
 * Starts portcullis in-process for integration tests, on 127.0.0.1 port 0,
 * with a policy written as YAML and validated by the real loader. Its log lines
 * are kept so tests can assert on what an operator would read.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePolicy } from '../../src/config/policy-loader.js';
import type { BanBackend } from '../../src/firewall/ban-backend.js';
import { startPortcullis, type RunningPortcullis } from '../../src/app/start-portcullis.js';
import type { TlsSetup } from '../../src/proxy/proxy-server.js';
import { capturingLogger } from './captured-log.js';

export interface TestProxy {
  readonly url: string;
  readonly port: number;
  readonly running: RunningPortcullis;
  /** Parsed JSON log lines written so far. */
  readonly logs: Record<string, unknown>[];
  /** Where this proxy keeps its ban state. */
  readonly stateDir: string;
  /** The admin API's base URL. */
  readonly adminUrl: string;
  /** The policy file the proxy reloads from. */
  readonly policyFile: string;
  /** Writes a new policy (same form as `policyYaml`) to the policy file; reload with `running.reload` or SIGHUP. */
  writePolicy(policyYaml: string): Promise<void>;
  close(): Promise<void>;
}

export interface TestProxyOptions {
  /** A firewall backend instead of the policy's (e.g. one running inside a test network namespace). */
  readonly banBackend?: BanBackend;
  /** Keep bans in this directory (default: a fresh temp dir, removed on close). */
  readonly stateDir?: string;
  /** Enables state-changing admin calls with this bearer token (written to a token file). */
  readonly adminToken?: string;
  /** Reload when the policy file changes. */
  readonly watchPolicy?: boolean;
  /** The `listen` value as YAML (default `"127.0.0.1:0"`), e.g. a flow list of plain and TLS listeners. */
  readonly listenYaml?: string;
  /** Certificates and TLS settings for TLS listeners. */
  readonly tls?: TlsSetup;
}

/**
 * `policyYaml` must not set listen, upstream, state_dir or admin: they are
 * supplied here (the admin API on 127.0.0.1 port 0). The policy is written to a
 * file in a temp dir, so reloads read it like production does.
 */
export async function startTestProxy(upstream: string, policyYaml: string, options: TestProxyOptions = {}): Promise<TestProxy> {
  const workDir = await mkdtemp(join(tmpdir(), 'portcullis-test-'));
  const stateDir = options.stateDir ?? join(workDir, 'state');
  const policyFile = join(workDir, 'policy.yaml');
  const tokenLine = options.adminToken === undefined ? '' : `\n  token_file: "${join(workDir, 'admin.token')}"`;
  if (options.adminToken !== undefined) await writeFile(join(workDir, 'admin.token'), `${options.adminToken}\n`, { mode: 0o600 });
  const listen = options.listenYaml ?? '"127.0.0.1:0"';
  const render = (yaml: string) => `listen: ${listen}\nupstream: "${upstream}"\nstate_dir: "${stateDir}"\nadmin:\n  listen: "127.0.0.1:0"${tokenLine}\n${yaml}`;
  await writeFile(policyFile, render(policyYaml));
  const config = parsePolicy(render(policyYaml), policyFile);
  const logs: Record<string, unknown>[] = [];
  const running = await startPortcullis(config, {
    logger: capturingLogger((entry) => logs.push(entry)),
    policyFile,
    watchPolicy: options.watchPolicy ?? false,
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.banBackend ? { banBackend: options.banBackend } : {}),
  });
  const port = running.address.port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    running,
    logs,
    stateDir,
    adminUrl: `http://127.0.0.1:${running.adminAddress.port}`,
    policyFile,
    async writePolicy(yaml: string) {
      await writeFile(policyFile, render(yaml));
    },
    async close() {
      await running.close(2_000);
      await rm(workDir, { recursive: true, force: true });
    },
  };
}
