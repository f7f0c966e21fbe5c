import type { Logger } from 'pino';
import type { AlertsRuntime } from '../alerts/alert-runtime.js';
import { keepRestartOnly, restartOnlyChanges } from '../config/restart-only-keys.js';
import type { PolicyConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { AssembledEngine } from '../engine/engine-assembly.js';
import type { ProxyServer } from '../proxy/proxy-server.js';
import type { UpgradedConnections } from '../proxy/upgraded-connections.js';
import type { UpstreamSlots } from '../proxy/upstream-slots.js';
import { createResolver, serverLimits, slotOptions } from './component-options.js';

/** The running parts a reload reaches. */
export interface ReloadableParts {
  readonly assembled: AssembledEngine;
  readonly server: ProxyServer;
  readonly slots: UpstreamSlots;
  readonly upgraded: UpgradedConnections;
  readonly alerts: AlertsRuntime;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * Swaps a validated policy into the running parts. Restart-only keys keep
 * their running values (and are returned, so the reloader can say so). What
 * can throw (compiling the policy and the resolver) is built before anything
 * is swapped, so a throw leaves the old policy whole.
 */
export function applyReload(parts: ReloadableParts, running: PolicyConfig, next: PolicyConfig): { config: PolicyConfig; restartNeeded: string[] } {
  const restartNeeded = restartOnlyChanges(running, next);
  const effective = keepRestartOnly(running, next);
  const { assembled, server, slots, upgraded, alerts, clock, logger } = parts;
  const compiled = assembled.reconfigure(effective);
  server.setResolver(createResolver(effective, compiled, clock, logger));
  server.setLimits(serverLimits(effective));
  slots.reconfigure(slotOptions(effective));
  upgraded.configure(effective.connections.upgraded_per_client_max);
  alerts.setConfig(effective.alerts);
  return { config: effective, restartNeeded };
}
