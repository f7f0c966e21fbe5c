import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { BackendUnavailableError, FirewallCommandError } from '../../../src/core/errors.js';
import type { Ban } from '../../../src/escalation/ban.js';
import { BanLedger } from '../../../src/escalation/ban-ledger.js';
import { ScriptedCommandRunner, type CommandOutput, type RecordedCommand } from '../../../src/firewall/command-runner.js';
import { FirewallEnforcer } from '../../../src/firewall/firewall-enforcer.js';
import { IpsetBackend } from '../../../src/firewall/ipset-backend.js';
import { EscalationMetrics } from '../../../src/metrics/escalation-metrics.js';
import { capturingLogger } from '../../support/captured-log.js';
import { makeBan } from '../../support/ban-fixture.js';

function ban(target: string, nowMs: number, extra: Partial<Ban> = {}): Ban {
  return makeBan(target, { scope: 'ip', reason: 't', startedMs: nowMs, expiresMs: nowMs + 600_000, ...extra });
}

function setup(respond?: (command: RecordedCommand) => CommandOutput | Promise<CommandOutput>) {
  const clock = new ManualClock(1_000);
  const runner = new ScriptedCommandRunner(respond);
  const ledger = new BanLedger({ maxBans: 100, maxHistory: 100, prefix: { ipv4: 24, ipv6: 64 } });
  const registry = new Registry();
  const metrics = new EscalationMetrics(registry);
  const logs: Record<string, unknown>[] = [];
  const logger = capturingLogger((entry) => logs.push(entry));
  const enforcer = new FirewallEnforcer(new IpsetBackend({ ports: [80], maxBans: 100 }, runner), ledger, clock, logger, metrics);
  const restores = () => runner.commands.filter((command) => command.file === 'ipset' && command.args[0] === 'restore');
  return { clock, runner, ledger, registry, enforcer, logs, restores };
}

describe('FirewallEnforcer', () => {
  it('loads active bans at start, then commits each new ban, skipping dry-run ones', async () => {
    const { ledger, enforcer, clock, restores, registry } = setup();
    ledger.add(ban('198.51.100.1', clock.nowMs()));
    await enforcer.start();
    const atStart = restores().length;
    expect(restores().map((command) => command.input).join('')).toContain('198.51.100.1');

    ledger.add(ban('198.51.100.2', clock.nowMs()));
    ledger.add(ban('198.51.100.3', clock.nowMs(), { dryRun: true }));
    await enforcer.flush();
    const batches = restores().slice(atStart).map((command) => command.input ?? '');
    expect(batches.join('')).toContain('198.51.100.2');
    expect(batches.join('')).not.toContain('198.51.100.3');
    expect(await registry.getSingleMetricAsString('portcullis_ban_latency_seconds')).toMatch(/portcullis_ban_latency_seconds_count\{backend="ipset"\} 1/);
  });

  it('coalesces a burst of bans into few commits', async () => {
    const { ledger, enforcer, clock, restores } = setup();
    await enforcer.start();
    const before = restores().length;
    for (let i = 1; i <= 50; i++) ledger.add(ban(`198.51.100.${i}`, clock.nowMs()));
    await enforcer.flush();
    const batches = restores().slice(before);
    expect(batches.length).toBeLessThanOrEqual(2);
    for (let i = 1; i <= 50; i++) expect(batches.map((command) => command.input).join('')).toContain(`198.51.100.${i} `);
  });

  it('logs and counts a failing commit, and keeps going', async () => {
    let fail = false;
    const { ledger, enforcer, clock, logs, registry } = setup((command) => {
      if (fail && command.args[0] === 'restore') throw new FirewallCommandError('ipset', command.args, 'ipset v7.17: Hash is full');
      return { stdout: '', stderr: '' };
    });
    await enforcer.start();
    fail = true;
    ledger.add(ban('198.51.100.9', clock.nowMs()));
    await enforcer.flush();
    expect(logs.some((line) => String(line['msg']).startsWith('firewall commit failed'))).toBe(true);
    expect(await registry.getSingleMetricAsString('portcullis_firewall_command_failures_total')).toContain('operation="commit"} 1');
  });

  it('when the kernel refuses part of a commit, logs and counts only the refused bans, and treats the rest as landed', async () => {
    const { ledger, enforcer, clock, logs, registry, runner } = setup((command) => {
      if (command.args[0] === 'restore' && (command.input ?? '').includes('198.51.100.9 ')) {
        throw new FirewallCommandError('ipset', command.args, 'ipset v7.17: Error in line 1: Hash is full, cannot add more elements');
      }
      return { stdout: '', stderr: '' };
    });
    await enforcer.start();
    // The first ban starts a commit; the next two wait for it and go in one batch.
    ledger.add(ban('198.51.100.1', clock.nowMs()));
    ledger.add(ban('198.51.100.9', clock.nowMs()));
    ledger.add(ban('198.51.100.8', clock.nowMs()));
    await enforcer.flush();
    const line = logs.find((entry) => String(entry['msg']).startsWith('firewall refused part of a commit'));
    expect(line?.['refused']).toEqual(['add 198.51.100.9']);
    expect(await registry.getSingleMetricAsString('portcullis_firewall_command_failures_total')).toContain('operation="commit"} 1');
    expect(await registry.getSingleMetricAsString('portcullis_ban_latency_seconds')).toMatch(/portcullis_ban_latency_seconds_count\{backend="ipset"\} 2/);
    expect(enforcer.health()).toMatchObject({ ok: false, problem: expect.stringContaining('1 of 2 changes refused') });
    for (let round = 0; round < 100 && !runner.commands.some((command) => command.file === 'conntrack'); round++) await new Promise((resolve) => setImmediate(resolve));
    const flushed = runner.commands.filter((command) => command.file === 'conntrack').map((command) => command.input).join('');
    expect(flushed).toContain('-s 198.51.100.8\n');
    expect(flushed).not.toContain('198.51.100.9');
  });

  // Issue 9: one conntrack process per ban, all at once, was a fork bomb in a flood.
  it('flushes conntrack for a burst of bans in a few batched processes, never many at once', async () => {
    let running = 0;
    let mostAtOnce = 0;
    const releases: Array<() => void> = [];
    // Every conntrack process hangs until the test lets it finish.
    const { ledger, enforcer, clock, runner } = setup(async (command) => {
      if (command.file !== 'conntrack') return { stdout: '', stderr: '' };
      running += 1;
      mostAtOnce = Math.max(mostAtOnce, running);
      await new Promise<void>((resolve) => releases.push(resolve));
      running -= 1;
      return { stdout: '', stderr: '' };
    });
    const conntrack = () => runner.commands.filter((command) => command.file === 'conntrack');
    await enforcer.start();
    // As many as the ledger holds, arriving over four commits as in a flood.
    const n = 100;
    for (let i = 0; i < n; i++) {
      ledger.add(ban(`198.51.100.${i}`, clock.nowMs()));
      if (i % 25 === 24) await enforcer.flush();
    }
    await enforcer.flush();
    // Bounded: let the flusher run, answering conntrack as it asks.
    for (let round = 0; round < 1_000 && (releases.length > 0 || running > 0); round++) {
      await new Promise((resolve) => setImmediate(resolve));
      releases.shift()?.();
    }
    expect(mostAtOnce).toBeLessThanOrEqual(2);
    expect(conntrack().length).toBeLessThanOrEqual(4);
    const asked = conntrack().map((command) => `${command.args.join(' ')}\n${command.input ?? ''}`).join('\n');
    for (let i = 0; i < n; i++) expect(asked).toContain(`-s 198.51.100.${i}\n`);
  });

  it('falls back to proxy-level bans, loudly, when the backend is unavailable', async () => {
    const { enforcer, logs } = setup((command) => {
      if (command.file === 'ipset') throw new BackendUnavailableError('ipset is not installed: apt-get install ipset');
      return { stdout: '', stderr: '' };
    });
    await enforcer.start();
    expect(enforcer.backend.name).toBe('none');
    expect(logs.some((line) => line['level'] === 50 && String(line['msg']).includes('enforced by the proxy only'))).toBe(true);
  });
});
