import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * Metrics of bans and their enforcement. Labels are small closed sets (scope,
 * backend, mode, operation), never an address: a label per client would be a
 * memory leak in Prometheus.
 */
export class EscalationMetrics {
  readonly bansIssued: Counter<'scope' | 'backend' | 'mode'>;
  readonly bansActive: Gauge<'scope'>;
  readonly bansRefusedFull: Counter;
  readonly banLatency: Histogram<'backend'>;
  readonly firewallFailures: Counter<'backend' | 'operation'>;
  #activeBans: () => readonly { scope: string }[] = () => [];

  constructor(registry: Registry) {
    const metrics = this;
    this.bansIssued = new Counter({
      name: 'portcullis_bans_total',
      help: 'Bans issued, by scope (ip or prefix), backend and mode (enforced or dry_run).',
      labelNames: ['scope', 'backend', 'mode'],
      registers: [registry],
    });
    this.bansActive = new Gauge({
      name: 'portcullis_bans_active',
      help: 'Bans in force now, by scope.',
      labelNames: ['scope'],
      registers: [registry],
      // Counted on scrape from the ledger itself, so it can never drift from it.
      collect() {
        const counts = { ip: 0, prefix: 0 };
        for (const ban of metrics.#activeBans()) counts[ban.scope as 'ip' | 'prefix']++;
        this.set({ scope: 'ip' }, counts.ip);
        this.set({ scope: 'prefix' }, counts.prefix);
      },
    });
    this.bansRefusedFull = new Counter({
      name: 'portcullis_bans_refused_full_total',
      help: 'Bans not made because escalation.max_bans were already active.',
      registers: [registry],
    });
    this.banLatency = new Histogram({
      name: 'portcullis_ban_latency_seconds',
      help: 'Time from the strike that earned a ban to the firewall backend confirming it.',
      labelNames: ['backend'],
      // Target: under 0.5 s. Buckets resolve around it.
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
    this.firewallFailures = new Counter({
      name: 'portcullis_firewall_command_failures_total',
      help: 'Firewall commands that failed, by backend and operation (init, commit, restore, conntrack).',
      labelNames: ['backend', 'operation'],
      registers: [registry],
    });
  }

  /** Where the active-bans gauge reads from. */
  observeActiveBans(source: () => readonly { scope: string }[]): void {
    this.#activeBans = source;
  }
}
