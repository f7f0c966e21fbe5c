import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { AdminServer } from '../admin/admin-server.js';
import { loadAdminToken } from '../admin/admin-token.js';
import { startAlerts } from '../alerts/alert-runtime.js';
import { parseListenAddress, type ListenAddress } from '../config/listen-address.js';
import { PolicyReloader, type ReloadResult } from '../config/policy-reloader.js';
import type { PolicyConfig } from '../config/schema.js';
import { systemClock, systemWallClock, type Clock, type WallClock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import { systemTimers } from '../core/timers.js';
import type { DecisionEngine } from '../engine/decision-engine.js';
import { assembleEngine } from '../engine/engine-assembly.js';
import type { BanLedger } from '../escalation/ban-ledger.js';
import type { BanBackend } from '../firewall/ban-backend.js';
import { ConnectionMetrics } from '../metrics/connection-metrics.js';
import { DecisionRates } from '../metrics/decision-rates.js';
import { EscalationMetrics } from '../metrics/escalation-metrics.js';
import { ProxyMetrics } from '../metrics/proxy-metrics.js';
import { RecentOffenders } from '../metrics/recent-offenders.js';
import { SiteMetrics } from '../metrics/site-metrics.js';
import { SiteDecisionRates } from '../metrics/site-decision-rates.js';
import { TlsMetrics } from '../metrics/tls-metrics.js';
import { CertificateStore } from '../tls/certificate-store.js';
import { AccessLog } from '../proxy/access-log.js';
import { ClientConnections } from '../proxy/client-connections.js';
import { ProxyServer, type TlsSetup } from '../proxy/proxy-server.js';
import { RequestObserver } from '../proxy/request-observer.js';
import { probeUpstream } from '../proxy/upstream-probe.js';
import { UpgradedConnections } from '../proxy/upgraded-connections.js';
import { UpstreamSlots } from '../proxy/upstream-slots.js';
import { applyReload } from './apply-reload.js';
import { bufferingSettings, startBuffering } from './start-buffering.js';
import { CloserStack } from './closer-stack.js';
import { createResolver, listenerSpec, serverLimits, slotOptions } from './component-options.js';
import { startEscalation, type EscalationRuntime } from './escalation-runtime.js';
import { checkReadiness } from './readiness.js';
import { SiteUpstreams } from './site-upstreams.js';
import type { RunningCluster } from './start-cluster.js';
import { resolveUpstreamAddresses } from './upstream-addresses.js';
import { UpstreamRoutes } from './upstream-routes.js';

/** A running proxy. */
export interface RunningPortcullis {
  /** Where the first listener actually listens (the real port when the policy said 0). */
  readonly address: AddressInfo;
  /** Where every listener listens, in the policy's order. */
  readonly addresses: readonly AddressInfo[];
  /** Where the admin API listens. */
  readonly adminAddress: AddressInfo;
  readonly engine: DecisionEngine;
  /** The bans in force. */
  readonly ledger: BanLedger;
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
  /** Certificates and TLS settings for `tls: true` listeners. */
  readonly tls?: TlsSetup;
}

/**
 * The composition root: the only place that knows every part. Builds them in
 * order from a validated policy and starts listening; every resource started
 * goes on one stack of closers, so a failure at any step unwinds all the steps
 * before it (no listener, watcher, timer or child left behind) and rethrows.
 */
export async function startPortcullis(initial: PolicyConfig, options: StartOptions): Promise<RunningPortcullis> {
  const closers = new CloserStack();
  try {
    return await start(initial, options, closers);
  } catch (error) {
    await closers.close(0, (name, closeError) => options.logger.error({ err: closeError, part: name }, 'could not stop a part while unwinding a failed start'));
    throw error;
  }
}

/** How often the event-loop delay metric samples; see collectDefaultMetrics above. */
const IDLE_FRIENDLY_LOOP_SAMPLE_MS = 1_000;

async function start(initial: PolicyConfig, options: StartOptions, closers: CloserStack): Promise<RunningPortcullis> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const wall = options.wall ?? systemWallClock;
  const startedMs = clock.nowMs();
  let config = initial;
  const token = await loadAdminToken(config.admin.token_file);

  const registry = new Registry();
  // prom-client samples event-loop delay every 10 ms by default: 100 wake-ups a second of an idle proxy
  // (about 1 % of a core on their own). Once a second still shows a blocked loop.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: IDLE_FRIENDLY_LOOP_SAMPLE_MS });
  let countStrike: (rule: string, weight: number) => void = () => {};
  let cluster: RunningCluster | null = null;
  const assembled = assembleEngine(config, {
    // Every upstream's own requests through the proxy (WordPress loopback and cron calls) come from its address.
    alsoNeverBan: (await Promise.all([...new Set([config.upstream, ...config.sites.flatMap((site) => site.upstream ?? [])])].map((upstream) => resolveUpstreamAddresses(upstream, logger)))).flat(),
    // Each node counts and shares only its own strikes; those heard from others count toward bans here too.
    onStrike: (rule, weight, client, site, origin) => {
      if (origin !== 'local') return;
      countStrike(rule, weight);
      cluster?.strike(client, weight, rule, site);
    },
    sharedLimits: config.store.type === 'redis',
  });
  const { engine, store, ledger, escalator } = assembled;
  const escalation = await startEscalation(config, ledger, {
    clock,
    wall,
    logger,
    metrics: new EscalationMetrics(registry),
    ...(options.banBackend ? { backend: options.banBackend } : {}),
  });
  closers.push('escalation', escalation, () => escalation.close());
  if (config.store.type === 'redis') {
    // Loaded only here: a single node never holds the Redis client's code (about 250 KB of source).
    const { startCluster } = await import('./start-cluster.js');
    const running = await startCluster(config, { ledger, escalator, clock, wall, timers: systemTimers, logger, registry });
    closers.push('cluster', running, () => running.close());
    cluster = running;
  }

  const slots = new UpstreamSlots(slotOptions(config));
  const metrics = new ProxyMetrics(registry, {
    upstreamInFlight: () => slots.inFlight,
    upstreamQueued: () => slots.queued,
    trackedClients: () => ({ ...store.sizeByScope(), concurrency: slots.trackedClients }),
    // server is assigned below; gauges are read only on a scrape, after start.
    tarpitHeld: () => server.tarpitHeld,
  }, wall);
  countStrike = (rule, weight) => metrics.countStrikes(rule, weight);
  const rates = new DecisionRates();
  const offenders = new RecentOffenders(config.escalation.window);
  const alerts = startAlerts(config.alerts, { ledger, clock, wall, logger, registry });
  closers.push('alerts', alerts, () => alerts.close());
  const siteMetrics = new SiteMetrics(registry);
  siteMetrics.declare(assembled.policy.sites.map((site) => site.name));
  const siteRates = config.sites.length === 0 ? undefined : new SiteDecisionRates();
  const observer = new RequestObserver({ metrics, rates, offenders, shadowed: new RecentOffenders(config.escalation.window), logger, refusals: alerts, sites: siteMetrics, ...(siteRates ? { siteRates } : {}) });

  // Pushed before the listeners' closer, so forwarders (also those a reload adds) close only after the listeners drained.
  const routes = new UpstreamRoutes(() => config, logger);
  closers.push('forwarders', routes, () => routes.close());
  const siteUpstreams = new SiteUpstreams({ defaultSlots: slots, routeTo: (upstream, connections) => routes.routeTo(upstream, connections) }, config);
  const listeners = config.listen.map((listener) => listenerSpec(listener, routes.routeTo(listener.upstream ?? config.upstream)));
  const certificates = options.tls === undefined && listeners.some((spec) => spec.tls) ? await openCertificates(config, logger, registry, wall) : null;
  if (certificates !== null) closers.push('certificates', certificates, () => certificates.close());
  const tlsSetup: TlsSetup | undefined =
    options.tls ??
    (certificates === null
      ? undefined
      : { secure: certificates.serverOptions(), handshakeTimeoutMs: config.timeouts.tls_handshake, attach: (tlsServer) => certificates.attach(tlsServer) });
  const accessLog = config.access_log === undefined ? null : await openAccessLog(config.access_log, config, logger, registry);
  if (accessLog !== null) closers.push('access log', accessLog, () => accessLog.close());

  const buffering = await startBuffering(config, { logger, registry, clock });
  const connections = new ClientConnections();
  const upgraded = new UpgradedConnections(config.connections.upgraded_per_client_max);
  ledger.onChange((change) => {
    if (change.kind === 'added' && !change.ban.dryRun) connections.closeCovered(change.ban);
  });
  const connectionMetrics = new ConnectionMetrics(registry, { open: () => connections.size, upgraded: () => upgraded.size });
  const server = new ProxyServer(
    { engine, resolver: createResolver(config, assembled.policy, clock, logger), slots, sites: siteUpstreams, ...(cluster === null ? {} : { sharedStore: cluster.store }), buffering, connections, upgraded, observer, connectionMetrics, accessLog, clock, wall, timers: systemTimers, logger },
    serverLimits(config),
  );

  let loadedEpochMs = wall.epochMs();
  let lastReloadOk = true;
  const reloader =
    options.policyFile === undefined
      ? null
      : new PolicyReloader({
          file: options.policyFile,
          logger,
          apply: (next) => {
            const applied = applyReload({ assembled, server, slots, upgraded, alerts, clock, logger }, config, next);
            config = applied.config;
            siteUpstreams.configure(config);
            siteMetrics.declare(assembled.policy.sites.map((site) => site.name));
            buffering.configure(bufferingSettings(config.buffering));
            // A bad certificate file is logged and counted, never a failed reload: the old one stays.
            void certificates?.reload('policy reload', config.tls);
            return applied.restartNeeded;
          },
          onResult: (ok) => {
            metrics.countReload(ok);
            lastReloadOk = ok;
            if (ok) loadedEpochMs = wall.epochMs();
          },
        });
  if (reloader !== null) closers.push('policy reloader', reloader, () => reloader.close());
  if (options.watchPolicy === true) reloader?.watch();
  const reload = (trigger: string): Promise<ReloadResult> =>
    reloader === null ? Promise.resolve({ ok: false, problems: ['this portcullis was started without a policy file to reload'] }) : reloader.reload(trigger);

  // Pushed before the first listen, so a second listener that fails closes the first.
  closers.push('proxy listeners', server, (graceMs) => server.close(graceMs));
  const addresses: AddressInfo[] = [];
  for (const spec of listeners) addresses.push(await server.listen(spec, spec.tls ? tlsSetup : undefined));
  certificates?.watch();
  const address = addresses[0] as AddressInfo;
  const admin = new AdminServer({
    registry,
    ledger,
    escalator,
    engine,
    logger,
    token,
    allowedHosts: config.admin.allowed_hosts,
    startedMs,
    rates,
    siteRates,
    offenders,
    nowMs: () => clock.nowMs(),
    epochMs: () => wall.epochMs(),
    prefixLengths: () => config.clients.prefix,
    readiness: () => checkReadiness(config, escalation.enforcer, siteUpstreams.upstreams, cluster?.health()),
    reload: () => reload('admin API'),
    upstream: () => ({ in_flight: slots.inFlight, max: config.concurrency.upstream_max, queued: slots.queued, queue_max: config.concurrency.queue_max }),
    trackedClients: () => ({ ...store.sizeByScope(), concurrency: slots.trackedClients }),
    policy: () => ({ file: options.policyFile ?? '(embedded)', loaded_at: new Date(loadedEpochMs).toISOString(), last_reload_ok: lastReloadOk }),
    firewall: () => escalation.enforcer.health(),
  });
  const adminListen = parseListenAddress(config.admin.listen) as ListenAddress;
  const adminAddress = await admin.listen(adminListen.host, adminListen.port);
  closers.push('admin listener', admin, () => admin.close());

  logger.info(
    { listen: `${address.address}:${address.port}`, listeners: addresses.map((bound, index) => `${listeners[index]?.tls ? 'https' : 'http'}://${bound.address}:${bound.port}`), admin: `${adminAddress.address}:${adminAddress.port}`, upstream: config.upstream, limits: config.limits.length, blocks: config.block.length },
    'portcullis is listening',
  );
  if (token === null) logger.info('admin API changes (bans, reload) are disabled: set admin.token_file or PORTCULLIS_ADMIN_TOKEN to enable them');
  void probeUpstream(config.upstream, config.timeouts.upstream_connect).then((problem) => {
    if (problem !== null) logger.warn({ upstream: config.upstream, error: problem }, 'upstream is not accepting connections: requests will get 502 until it does (is Apache listening there?)');
  });

  return {
    address,
    addresses,
    adminAddress,
    engine,
    ledger,
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
      return closers.close(graceMs, (name, error) => logger.error({ err: error, part: name }, 'error while stopping'));
    },
  };
}

/** The certificates for the TLS listeners; fails start-up only when none at all can be served. */
async function openCertificates(config: PolicyConfig, logger: Logger, registry: Registry, wall: WallClock): Promise<CertificateStore> {
  const { store, result } = await CertificateStore.open({ config: config.tls, logger, metrics: new TlsMetrics(registry), wallClock: wall });
  logger.info({ certificates: result.served, problems: result.problems.length }, 'TLS certificates loaded');
  return store;
}

async function openAccessLog(path: string, config: PolicyConfig, logger: Logger, registry: Registry): Promise<AccessLog> {
  try {
    return await AccessLog.open(path, { logger, registry, format: config.access_log_format, refusals: config.access_log_refused });
  } catch (error) {
    throw new PortcullisError('PC_ERR_ACCESS_LOG', `${(error as Error).message} (access_log in the policy)`, { cause: error });
  }
}
