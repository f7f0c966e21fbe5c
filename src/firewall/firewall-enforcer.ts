import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { BackendUnavailableError, FirewallBatchError } from '../core/errors.js';
import type { Ban } from '../escalation/ban.js';
import type { BanChange, BanLedger } from '../escalation/ban-ledger.js';
import type { EscalationMetrics } from '../metrics/escalation-metrics.js';
import type { BanBackend, KernelBan } from './ban-backend.js';
import { NoneBackend } from './none-backend.js';

/**
 * Follows the ban ledger into the kernel: each new ban is queued on the
 * backend and committed at once, coalescing whatever arrives while a commit
 * runs into the next one. A failing command is logged and counted, never a
 * crash: the proxy still refuses the banned client itself. When the kernel
 * refuses part of a batch, the rest is in force and only the refused changes
 * are logged (and counted, one each).
 */
export class FirewallEnforcer {
  #backend: BanBackend;
  readonly #ledger: BanLedger;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #metrics: EscalationMetrics;
  /** Bans queued since the last commit, for latency and conntrack after it lands. */
  #pending: Ban[] = [];
  #dirty = false;
  #committing: Promise<void> | null = null;
  #unsubscribe: (() => void) | null = null;
  readonly #configured: string;
  /** Why the backend is not (or was last not) working; null while it works. */
  #problem: string | null = null;

  constructor(backend: BanBackend, ledger: BanLedger, clock: Clock, logger: Logger, metrics: EscalationMetrics) {
    this.#backend = backend;
    this.#ledger = ledger;
    this.#clock = clock;
    this.#logger = logger;
    this.#metrics = metrics;
    this.#configured = backend.name;
  }

  /** Whether kernel bans work as configured, for /readyz: false after a failed start or a failed last commit. */
  health(): { configured: string; active: string; ok: boolean; problem: string | null } {
    return { configured: this.#configured, active: this.#backend.name, ok: this.#problem === null, problem: this.#problem };
  }

  /** The backend in use (`none` after a failed start). */
  get backend(): BanBackend {
    return this.#backend;
  }

  /**
   * Sets the backend up and loads every active ban into it in one transaction
   * (reconciling what the kernel held). When the backend cannot work here, logs
   * why, loudly, and carries on with proxy-level bans only.
   */
  async start(): Promise<void> {
    try {
      await this.#backend.init();
      const live = this.#ledger.active().filter((ban) => !ban.dryRun).map((ban) => this.#toKernel(ban));
      await this.#backend.replaceAll(live.filter((ban) => ban.timeoutSec > 0));
    } catch (error) {
      const unavailable = error instanceof BackendUnavailableError;
      this.#metrics.firewallFailures.inc({ backend: this.#backend.name, operation: unavailable ? 'init' : 'restore' });
      this.#logger.error(
        { err: error, backend: this.#backend.name, code: (error as { code?: string }).code },
        `firewall backend ${this.#backend.name} is not working: bans are enforced by the proxy only (${(error as Error).message})`,
      );
      if (unavailable) this.#backend = new NoneBackend();
      this.#problem = (error as Error).message;
    }
    this.#unsubscribe = this.#ledger.onChange((change) => this.#follow(change));
  }

  /** Stops following the ledger and waits for the last commit. Kernel bans stay: they expire by themselves. */
  async close(): Promise<void> {
    this.#unsubscribe?.();
    await this.#committing;
  }

  /** Resolves when everything queued so far has been committed (for tests and shutdown). */
  async flush(): Promise<void> {
    while (this.#committing !== null) await this.#committing;
  }

  #follow(change: BanChange): void {
    if (change.kind === 'full') return;
    if (change.ban.dryRun) return;
    try {
      if (change.kind === 'added') {
        const kernelBan = this.#toKernel(change.ban);
        if (kernelBan.timeoutSec <= 0) return;
        this.#backend.add(kernelBan);
        this.#pending.push(change.ban);
      } else {
        // Kernel timeouts lift expired bans themselves (except iptables): removing is harmless either way.
        this.#backend.remove(change.ban.target);
      }
    } catch (error) {
      // The backend re-validates every target; a refusal here is a bug to report, not a reason to stop the proxy.
      this.#metrics.firewallFailures.inc({ backend: this.#backend.name, operation: 'queue' });
      this.#logger.error({ err: error, target: change.ban.target }, 'firewall backend refused a ban: it is enforced by the proxy only');
      return;
    }
    this.#dirty = true;
    this.#committing ??= this.#drain();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#dirty) {
        this.#dirty = false;
        let landed = this.#pending;
        this.#pending = [];
        try {
          await this.#backend.commit();
          // A start that failed to restore is healed once a commit works again.
          if (this.#backend.name === this.#configured) this.#problem = null;
        } catch (error) {
          this.#problem = `last commit failed: ${(error as Error).message}`;
          if (!(error instanceof FirewallBatchError) || error.refused.length === error.total) {
            const refusedCount = error instanceof FirewallBatchError ? error.refused.length : 1;
            this.#metrics.firewallFailures.inc({ backend: this.#backend.name, operation: 'commit' }, refusedCount);
            this.#logger.error({ err: error, backend: this.#backend.name, bans: landed.map((ban) => ban.target) }, 'firewall commit failed: these bans are enforced by the proxy only');
            continue;
          }
          // The backend applied the rest of the batch: only the refused changes are lost to the kernel.
          this.#metrics.firewallFailures.inc({ backend: this.#backend.name, operation: 'commit' }, error.refused.length);
          this.#logger.error(
            { err: error, backend: this.#backend.name, refused: error.refused.map((change) => `${change.kind} ${change.target}`) },
            'firewall refused part of a commit: the refused bans are enforced by the proxy only, the others are in the kernel',
          );
          const refused = new Set(error.refused.filter((change) => change.kind === 'add').map((change) => change.target));
          landed = landed.filter((ban) => !refused.has(ban.target));
        }
        const nowMs = this.#clock.nowMs();
        for (const ban of landed) this.#metrics.banLatency.observe({ backend: this.#backend.name }, Math.max(0, nowMs - ban.startedMs) / 1000);
        // Not awaited: the bans are in force already. The backend batches the flushes and bounds its processes.
        if (landed.length > 0) {
          this.#backend.forgetConnections(landed.map((ban) => this.#toKernel(ban))).catch((error: unknown) => {
            this.#metrics.firewallFailures.inc({ backend: this.#backend.name, operation: 'conntrack' });
            this.#logger.warn({ err: error, bans: landed.length }, 'could not flush connection tracking for banned sources');
          });
        }
      }
    } finally {
      this.#committing = null;
    }
  }

  #toKernel(ban: Ban): KernelBan {
    return { target: ban.target, family: ban.family, scope: ban.scope, timeoutSec: Math.ceil((ban.expiresMs - this.#clock.nowMs()) / 1000) };
  }
}
