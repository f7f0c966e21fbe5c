import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { AlertMetrics } from '../../src/metrics/alert-metrics.js';
import { EscalationMetrics } from '../../src/metrics/escalation-metrics.js';
import { ProxyMetrics } from '../../src/metrics/proxy-metrics.js';
import { TlsMetrics } from '../../src/metrics/tls-metrics.js';
import { promtoolPath } from '../support/promtool.js';

const run = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RULES = path.join(repoRoot, 'deploy/prometheus/portcullis-alerts.yml');
const RULE_TESTS = path.join(repoRoot, 'deploy/prometheus/portcullis-alerts.test.yml');

/** Runs promtool; resolves with its exit code and output instead of throwing, so a failure shows what promtool said. */
async function promtool(args: string[], input?: string): Promise<{ code: number; output: string }> {
  const child = run(promtoolPath(), args, { cwd: repoRoot, timeout: 60_000 });
  if (input !== undefined) {
    child.child.stdin?.end(input);
  }
  try {
    const { stdout, stderr } = await child;
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

describe('deploy/prometheus/portcullis-alerts.yml', () => {
  it('is a valid rule file (promtool check rules)', async () => {
    const result = await promtool(['check', 'rules', RULES]);
    expect(result.output).toContain('SUCCESS: 8 rules found');
    expect(result.code).toBe(0);
  });

  it('fires on synthetic series exactly as its annotations say (promtool test rules)', async () => {
    const result = await promtool(['test', 'rules', RULE_TESTS]);
    expect(result.output).toContain('SUCCESS');
    expect(result.code).toBe(0);
  });

  it('names only metric families portcullis exposes', async () => {
    const registry = new Registry();
    new ProxyMetrics(registry, { upstreamInFlight: () => 0, upstreamQueued: () => 0, trackedClients: () => ({}), tarpitHeld: () => 0 });
    new EscalationMetrics(registry);
    new AlertMetrics(registry);
    new TlsMetrics(registry);
    const exposed = new Set((await registry.getMetricsAsJSON()).map((metric) => metric.name));
    const named = new Set((await readFile(RULES, 'utf8')).match(/\bportcullis_[a-z_]+/g) ?? []);
    // portcullis_upstream_errors_total appears in a description, as advice; it must exist too.
    expect([...named].filter((name) => !exposed.has(name))).toEqual([]);
    expect(named.size).toBeGreaterThanOrEqual(7);
  });
});

describe('alert metrics', () => {
  it('pass promtool check metrics', async () => {
    const registry = new Registry();
    const metrics = new AlertMetrics(registry);
    metrics.deliverySeconds.observe(0.2);
    const result = await promtool(['check', 'metrics'], await registry.metrics());
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });
});

describe('TLS certificate metrics', () => {
  it('pass promtool check metrics', async () => {
    const registry = new Registry();
    const metrics = new TlsMetrics(registry);
    metrics.setExpiry('example.org', 1_800_000_000_000);
    metrics.countRejected('key_mismatch');
    const result = await promtool(['check', 'metrics'], await registry.metrics());
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });
});
