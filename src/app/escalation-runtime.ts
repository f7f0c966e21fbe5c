import type { Logger } from 'pino';
import { parseListenAddress } from '../config/listen-address.js';
import type { PolicyConfig } from '../config/schema.js';
import type { Clock, WallClock } from '../core/clock.js';
import { systemTimers, type Timers } from '../core/timers.js';
import type { BanBackend } from '../firewall/ban-backend.js';
import { createBanBackend } from '../firewall/create-ban-backend.js';
import { FirewallEnforcer } from '../firewall/firewall-enforcer.js';
import type { EscalationMetrics } from '../metrics/escalation-metrics.js';
import type { BanLedger } from '../escalation/ban-ledger.js';
import { BanPersistence } from '../escalation/ban-persistence.js';
import { BanStateFile } from '../escalation/ban-state-file.js';

/** The I/O around the engine's ban ledger: the state file, the firewall backend, the sweep and the ban log lines. */
export interface EscalationRuntime {
  readonly enforcer: FirewallEnforcer;
  readonly persistence: BanPersistence;
  /** Stops the sweep, waits for the last commit and the last state write. */
  close(): Promise<void>;
}

export interface EscalationDeps {
  readonly clock: Clock;
  /** @default systemTimers */
  readonly timers?: Timers;
  readonly wall: WallClock;
  readonly logger: Logger;
  readonly metrics: EscalationMetrics;
  /** A backend to use instead of the one the policy names (tests run one inside a network namespace). */
  readonly backend?: BanBackend;
}

/** How often expired bans are swept out (their kernel entries expire by themselves). */
const SWEEP_INTERVAL_MS = 1_000;

/**
 * Restores the ledger from the state file, starts the firewall backend and
 * follows every change of the ledger (kernel, state file, log, metrics).
 * The ledger itself comes from the engine assembly, which does no I/O.
 */
export async function startEscalation(config: PolicyConfig, ledger: BanLedger, deps: EscalationDeps): Promise<EscalationRuntime> {
  const { clock, logger, metrics } = deps;
  const esc = config.escalation;
  metrics.observeActiveBans(() => ledger.active().filter((ban) => !ban.dryRun));

  const persistence = new BanPersistence(BanStateFile.in(config.state_dir), ledger, clock, deps.wall, logger);
  const restored = await persistence.restore();
  if (restored > 0) logger.info({ bans: restored, stateDir: config.state_dir }, 'restored active bans from the state file');

  const backend = deps.backend ?? createBanBackend(esc.backend, { ports: esc.ports, maxBans: esc.max_bans });
  const enforcer = new FirewallEnforcer(backend, ledger, clock, logger, metrics);
  await enforcer.start();
  // Series exist from the start at 0, so `increase()` in alerting rules sees the first ban and the first failure.
  for (const scope of ['ip', 'prefix']) {
    for (const mode of ['enforced', 'dry_run']) metrics.bansIssued.inc({ scope, backend: enforcer.backend.name, mode }, 0);
  }
  for (const operation of ['init', 'restore', 'queue', 'commit', 'conntrack']) metrics.firewallFailures.inc({ backend: enforcer.backend.name, operation }, 0);
  for (const listener of config.listen) {
    const listenPort = parseListenAddress(listener.address)?.port;
    if (enforcer.backend.name !== 'none' && listenPort !== undefined && listenPort !== 0 && !esc.ports.includes(listenPort)) {
      logger.warn({ listenPort, ports: esc.ports }, 'escalation.ports does not include a port portcullis listens on: kernel bans will not keep banned clients away from it');
    }
  }

  ledger.onChange((change) => {
    const { ban } = change;
    const fields = { target: ban.target, scope: ban.scope, source: ban.source, nth: ban.nth, reason: ban.reason };
    if (change.kind === 'added') {
      metrics.bansIssued.inc({ scope: ban.scope, backend: enforcer.backend.name, mode: ban.dryRun ? 'dry_run' : 'enforced' });
      const seconds = Math.round((ban.expiresMs - clock.nowMs()) / 1000);
      logger.warn({ ...fields, seconds, backend: enforcer.backend.name }, ban.dryRun ? 'would ban (dry run)' : 'banned');
    } else if (change.kind === 'removed') {
      logger.info({ ...fields, why: change.why }, change.why === 'expired' ? 'ban expired' : 'ban lifted');
    } else {
      metrics.bansRefusedFull.inc();
      logger.error({ ...fields, maxBans: esc.max_bans }, 'ban not made: escalation.max_bans bans are already active; raise it or shorten bans');
    }
  });

  const timers = deps.timers ?? systemTimers;
  const sweep = timers.setInterval(() => ledger.sweep(clock.nowMs()), SWEEP_INTERVAL_MS);

  return {
    enforcer,
    persistence,
    async close() {
      timers.clearInterval(sweep);
      await enforcer.close();
      await persistence.close();
    },
  };
}
