import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { AdminServer, type Readiness } from '../admin/admin-server.js';
import { startAlerts } from '../alerts/alert-runtime.js';
import { loadAdminToken } from '../admin/admin-token.js';
import { parseListenAddress, type ListenAddress } from '../config/listen-address.js';
import { PolicyReloader, type ReloadResult } from '../config/policy-reloader.js';
import { keepRestartOnly, restartOnlyChanges } from '../config/restart-only-keys.js';
import type { PolicyConfig } from '../config/schema.js';
import { systemClock, systemWallClock, type Clock, type WallClock } from '../core/clock.js';
import { DecisionEngine } from '../engine/decision-engine.js';
import { startEscalation, type EscalationRuntime } from '../escalation/escalation-runtime.js';
import type { BanBackend } from '../firewall/ban-backend.js';
import { ClientResolver } from '../identity/client-resolver.js';
import { MemoryBucketStore } from '../limiter/stores/memory-bucket-store.js';
import { DecisionRates } from '../metrics/decision-rates.js';
import { ConnectionMetrics } from '../metrics/connection-metrics.js';
import { EscalationMetrics } from '../metrics/escalation-metrics.js';
import { ProxyMetrics } from '../metrics/proxy-metrics.js';
import { RecentOffenders } from '../metrics/recent-offenders.js';
import { compilePolicy, type CompiledPolicy } from '../policy/compiled-policy.js';
import { PortcullisError } from '../core/errors.js';
import { AccessLog } from './access-log.js';
import { ClientConnections } from './client-connections.js';
import { ProxyServer, type ProxyServerLimits } from './proxy-server.js';
import { RequestObserver } from './request-observer.js';
import { UndiciForwarder } from './undici-forwarder.js';
import { probeUpstream } from './upstream-probe.js';
import { UpgradedConnections } from './upgraded-connections.js';
import { UpstreamSlots, type UpstreamSlotsOptions } from './upstream-slots.js';
import { WebSocketForwarder } from './websocket-forwarder.js';

/** A running proxy. */
export interface RunningPortcullis {
  /** Where the proxy actually listens (the real port when the policy said 0). */
  readonly address: AddressInfo;
  /** Where the admin API listens. */
  readonly adminAddress: AddressInfo;
  readonly engine: DecisionEngine;
  /** Upstream admission, for status and tests. */
  readonly slots: UpstreamSlots;
  readonly escalation: EscalationRuntime;
  /** Every metric portcullis keeps (served by the admin API). */
  readonly registry: Registry;
  /** The policy in force. */
  readonly config: PolicyConfig;
  /** Re-reads the policy file and swaps it in; rejected (old policy kept) when invalid. Needs `policyFile`. */
  reload(trigger: string): Promise<ReloadResult>;
  /** Reopens the access log at its path (after logrotate moved it); SIGHUP does this. */
  reopenAccessLog(): Promise<void>;
  /** Graceful stop: in-flight requests get up to `graceMs` to finish. Idempotent. */
  close(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly wall?: WallClock;
  /** Overrides the policy's firewall backend (tests drive one inside a network namespace). */
  readonly banBackend?: BanBackend;
  /** The file the policy came from: reloads re-read it. */
  readonly policyFile?: string;
  /** Reload by itself when the policy file changes (serve does; tests choose). */
  readonly watchPolicy?: boolean;
}

/** Assembles identity, engine, admission, forwarding, metrics and the admin API from a validated policy and starts listening. */
export async function startPortcullis(initial: PolicyConfig, options: StartOptions): Promise<RunningPortcullis> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const wall = options.wall ?? systemWallClock;
  const startedMs = clock.nowMs();
  let config = initial;
  let policy = compilePolicy(config);
  const token = await loadAdminToken(config.admin.token_file);

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const store = new MemoryBucketStore(config.clients.max_tracked);
  const slots = new UpstreamSlots(slotOptions(config));
  let strikes: (rule: string, weight: number) => void = () => {};
  const escalation = await startEscalation(config, {
    clock,
    wall,
    logger,
    metrics: new EscalationMetrics(registry),
    onStrike: (rule, weight) => strikes(rule, weight),
    ...(options.banBackend ? { backend: options.banBackend } : {}),
  });
  const metrics = new ProxyMetrics(registry, {
    upstreamInFlight: () => slots.inFlight,
    upstreamQueued: () => slots.queued,
    trackedClients: () => ({ ...store.sizeByScope(), concurrency: slots.trackedClients }),
    // server is assigned below; gauges are read only on a scrape, after start.
    tarpitHeld: () => server.tarpitHeld,
  }, wall);
  strikes = (rule, weight) => metrics.countStrikes(rule, weight);
  const engine = new DecisionEngine(policy, store, escalation);
  const rates = new DecisionRates();
  const offenders = new RecentOffenders(config.escalation.window);
  const alerts = startAlerts(config.alerts, { ledger: escalation.ledger, clock, wall, logger, registry });
  const observer = new RequestObserver({ metrics, rates, offenders, shadowed: new RecentOffenders(config.escalation.window), logger, refusals: alerts });

  const forwarder = new UndiciForwarder({
    upstream: config.upstream,
    connections: config.concurrency.upstream_max,
    connectTimeoutMs: config.timeouts.upstream_connect,
    headersTimeoutMs: config.timeouts.upstream_headers,
    bodyTimeoutMs: config.timeouts.upstream_body,
    maxBodyBytes: config.request.max_body,
  });
  const websockets = new WebSocketForwarder({ upstream: config.upstream, handshakeTimeoutMs: config.timeouts.upstream_headers }, logger);
  const connections = new ClientConnections();
  const upgraded = new UpgradedConnections(config.connections.upgraded_per_client_max);
  escalation.ledger.onChange((change) => {
    if (change.kind === 'added' && !change.ban.dryRun) connections.closeCovered(change.ban);
  });
  const accessLog = config.access_log === undefined ? null : await openAccessLog(config.access_log, logger, registry);
  const server = new ProxyServer(
    { engine, resolver: createResolver(config, policy, clock, logger), slots, forwarder, websockets, connections, upgraded, observer, connectionMetrics: new ConnectionMetrics(registry, { open: () => connections.size, upgraded: () => upgraded.size }), accessLog, clock, logger },
    serverLimits(config),
  );

  /** Swaps in a reloaded policy; restart-only keys keep their running values. */
  const apply = (next: PolicyConfig): string[] => {
    const restartNeeded = restartOnlyChanges(config, next);
    const effective = keepRestartOnly(config, next);
    const compiled = compilePolicy(effective);
    // Everything is built before anything is swapped, so a throw leaves the old policy whole.
    const resolver = createResolver(effective, compiled, clock, logger);
    engine.setPolicy(compiled);
    server.setResolver(resolver);
    server.setLimits(serverLimits(effective));
    slots.reconfigure(slotOptions(effective));
    upgraded.configure(effective.connections.upgraded_per_client_max);
    escalation.reconfigure(effective);
    alerts.setConfig(effective.alerts);
    config = effective;
    policy = compiled;
    return restartNeeded;
  };
  let loadedEpochMs = wall.epochMs();
  let lastReloadOk = true;
  const onReloaded = (ok: boolean) => {
    metrics.countReload(ok);
    lastReloadOk = ok;
    if (ok) loadedEpochMs = wall.epochMs();
  };
  const reloader = options.policyFile === undefined ? null : new PolicyReloader({ file: options.policyFile, logger, apply, onResult: onReloaded });
  if (options.watchPolicy === true) reloader?.watch();
  const reload = (trigger: string): Promise<ReloadResult> =>
    reloader === null ? Promise.resolve({ ok: false, problems: ['this portcullis was started without a policy file to reload'] }) : reloader.reload(trigger);

  const listen = parseListenAddress(config.listen) as ListenAddress;
  const address = await server.listen(listen.host, listen.port);
  const admin = new AdminServer({
    registry,
    ledger: escalation.ledger,
    escalator: escalation.escalator,
    engine,
    logger,
    token,
    allowedHosts: config.admin.allowed_hosts,
    startedMs,
    rates,
    offenders,
    nowMs: () => clock.nowMs(),
    epochMs: () => wall.epochMs(),
    prefixLengths: () => config.clients.prefix,
    readiness: () => readiness(config, escalation),
    reload: () => reload('admin API'),
    upstream: () => ({ in_flight: slots.inFlight, max: config.concurrency.upstream_max, queued: slots.queued, queue_max: config.concurrency.queue_max }),
    trackedClients: () => ({ ...store.sizeByScope(), concurrency: slots.trackedClients }),
    policy: () => ({ file: options.policyFile ?? '(embedded)', loaded_at: new Date(loadedEpochMs).toISOString(), last_reload_ok: lastReloadOk }),
    firewall: () => escalation.enforcer.health(),
  });
  const adminListen = parseListenAddress(config.admin.listen) as ListenAddress;
  let adminAddress: AddressInfo;
  try {
    adminAddress = await admin.listen(adminListen.host, adminListen.port);
  } catch (error) {
    await server.close(0);
    await accessLog?.close();
    await alerts.close();
    await escalation.close();
    throw error;
  }
  logger.info(
    { listen: `${address.address}:${address.port}`, admin: `${adminAddress.address}:${adminAddress.port}`, upstream: config.upstream, limits: config.limits.length, blocks: config.block.length },
    'portcullis is listening',
  );
  if (token === null) logger.info('admin API changes (bans, reload) are disabled: set admin.token_file or PORTCULLIS_ADMIN_TOKEN to enable them');
  void probeUpstream(config.upstream, config.timeouts.upstream_connect).then((problem) => {
    if (problem !== null) logger.warn({ upstream: config.upstream, error: problem }, 'upstream is not accepting connections: requests will get 502 until it does (is Apache listening there?)');
  });

  let closing: Promise<void> | null = null;
  return {
    address,
    adminAddress,
    engine,
    slots,
    escalation,
    registry,
    get config() {
      return config;
    },
    reload,
    async reopenAccessLog() {
      await accessLog?.reopen().catch((error: unknown) => logger.error({ err: error, path: config.access_log }, 'cannot reopen the access log; still writing to the old file'));
    },
    close(graceMs = 10_000) {
      closing ??= (async () => {
        reloader?.close();
        await admin.close();
        await server.close(graceMs);
        websockets.close();
        await forwarder.close();
        await accessLog?.close();
        await alerts.close();
        await escalation.close();
      })();
      return closing;
    },
  };
}

async function openAccessLog(path: string, logger: Logger, registry: Registry): Promise<AccessLog> {
  try {
    return await AccessLog.open(path, { logger, registry });
  } catch (error) {
    throw new PortcullisError('PC_ERR_ACCESS_LOG', `${(error as Error).message} (access_log in the policy)`, { cause: error });
  }
}

function createResolver(config: PolicyConfig, policy: CompiledPolicy, clock: Clock, logger: Logger): ClientResolver {
  return new ClientResolver({
    trustedProxies: policy.trustedProxies,
    prefix: config.clients.prefix,
    clock,
    onUntrustedForwardedFor: (peerIp) =>
      logger.warn({ peer: peerIp }, 'X-Forwarded-For from a peer not in clients.trusted_proxies was ignored; if this peer is your CDN or load balancer, add it there (logged once per peer per hour)'),
  });
}

function serverLimits(config: PolicyConfig): ProxyServerLimits {
  return {
    headersTimeoutMs: config.timeouts.client_headers,
    requestTimeoutMs: config.timeouts.client_request,
    keepAliveTimeoutMs: config.timeouts.client_keepalive,
    maxBodyBytes: config.request.max_body,
    tarpitMs: config.escalation.tarpit,
    tarpitMax: config.escalation.tarpit_max,
    connectionsPerClientMax: config.connections.per_client_max,
    connectionsMax: config.connections.max,
  };
}

function slotOptions(config: PolicyConfig): UpstreamSlotsOptions {
  return {
    upstreamMax: config.concurrency.upstream_max,
    perClientMax: config.concurrency.per_client_max,
    queueMax: config.concurrency.queue_max,
    perClientQueueMax: config.concurrency.per_client_queue_max,
    queueTimeoutMs: config.concurrency.queue_timeout,
  };
}

/** Ready when the upstream accepts connections and the firewall backend works as configured. */
async function readiness(config: PolicyConfig, escalation: EscalationRuntime): Promise<Readiness> {
  const upstreamProblem = await probeUpstream(config.upstream, Math.min(config.timeouts.upstream_connect, 2_000));
  const firewall = escalation.enforcer.health();
  const checks = {
    upstream: { ok: upstreamProblem === null, detail: upstreamProblem ?? `${config.upstream} accepts connections` },
    firewall: { ok: firewall.ok, detail: firewall.problem ?? `${firewall.active} backend working` },
  };
  return { ready: checks.upstream.ok && checks.firewall.ok, checks };
}
