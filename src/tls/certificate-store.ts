import { basename, dirname } from 'node:path';
import type { SecureContext, Server as TlsServer, TlsOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { TlsConfig } from '../config/schema.js';
import { systemWallClock, type WallClock } from '../core/clock.js';
import { TlsCertificateError } from '../core/errors.js';
import { systemTimers, type Timers } from '../core/timers.js';
import type { TlsMetrics } from '../metrics/tls-metrics.js';
import type { LoadedCertificate } from './certificate-pair.js';
import { formatCertificateProblem, type CertificateProblem } from './certificate-problem.js';
import { loadSlots, type Slot } from './certificate-slots.js';
import { DirectoryWatcher, type WatchedDirectories } from './directory-watcher.js';
import { HostNameIndex } from './host-name-index.js';
import { TicketKeyRotation } from './ticket-key-rotation.js';
import { TLS_ALPN_PROTOCOLS, TLS_CONTEXT_SETTINGS } from './tls-settings.js';

export interface CertificateStoreOptions {
  /** The policy's `tls`. */
  readonly config: TlsConfig;
  readonly logger: Logger;
  readonly metrics: TlsMetrics;
  /** What "expired" and "not yet valid" are judged against. @default systemWallClock */
  readonly wallClock?: WallClock;
  /** For the watch debounce and the ticket-key rotation. @default systemTimers */
  readonly timers?: Timers;
  /** Quiet time after the last change in a watched directory before reloading. @default 300 */
  readonly debounceMs?: number;
  /** @default TICKET_KEY_ROTATION_MS (12 h) */
  readonly ticketKeyRotationMs?: number;
}

/** What one load or reload found. */
export interface CertificateReloadResult {
  /** Names of the certificates served now, in policy order. */
  readonly served: readonly string[];
  /** Names whose certificate this reload added or replaced (new connections get the new one). */
  readonly changed: readonly string[];
  /** Names no longer served: their pair left the policy or their certbot folder is gone. */
  readonly removed: readonly string[];
  /** Every file not served as read this time (a failed renewal keeps the previous certificate) and every problem of `tls.default`. */
  readonly problems: readonly CertificateProblem[];
}

/** A certificate being served, as `portcullis check` and status reports show it. */
export interface ServedCertificate {
  readonly name: string;
  readonly hostNames: readonly string[];
  readonly certFile: string;
  readonly keyFile: string;
  readonly notAfterMs: number;
  readonly fingerprint256: string;
}

/** The served set: swapped whole, so a handshake never sees half a reload. */
interface Served {
  readonly certificates: readonly LoadedCertificate[];
  readonly index: HostNameIndex<LoadedCertificate>;
  readonly fallback: LoadedCertificate;
}

/**
 * The certificates of the TLS listeners, picked per connection by SNI.
 *
 * Loads every `tls.certificates` pair and every certbot-style
 * `certbot_live/NAME/{fullchain,privkey}.pem`, checks each (parses, key
 * matches, valid now, names a host) and builds one SecureContext per
 * certificate. `contextFor` picks by the client's server name: the exact name,
 * else the wildcard one label up (RFC 6125), else the default certificate.
 *
 * Reloads when a watched directory changes and when asked (SIGHUP,
 * `portcullis reload`). A new file that fails a check keeps the certificate
 * served before under it, with a log line naming the file and the reason, and
 * a count in `portcullis_tls_certificate_reload_failures_total`. A good one is
 * served to new connections; open connections keep the context they started
 * with, as TLS sessions do.
 *
 * The listener: `tls.createServer({ ...store.serverOptions(), ... })` (or
 * `http2.createSecureServer`), then `store.attach(server)`, which keeps the
 * server's own context (clients without SNI) and its ticket key current.
 */
export class CertificateStore {
  readonly #options: CertificateStoreOptions;
  readonly #wallClock: WallClock;
  readonly #timers: Timers;
  readonly #tickets: TicketKeyRotation;
  readonly #servers = new Set<TlsServer>();
  #config: TlsConfig;
  #slots = new Map<string, Slot>();
  #served: Served;
  #watcher: DirectoryWatcher | null = null;
  /** The last reload queued: each new one runs after it, so the last change on disk always wins. */
  #queue: Promise<unknown> = Promise.resolve();

  /** For an SNICallback: answers at once with `contextFor(servername)`. */
  readonly SNICallback = (servername: string, callback: (error: Error | null, context?: SecureContext) => void): void => {
    callback(null, this.contextFor(servername));
  };

  private constructor(options: CertificateStoreOptions, served: Served, slots: Map<string, Slot>, tickets: TicketKeyRotation) {
    this.#options = options;
    this.#wallClock = options.wallClock ?? systemWallClock;
    this.#timers = options.timers ?? systemTimers;
    this.#config = options.config;
    this.#served = served;
    this.#slots = slots;
    this.#tickets = tickets;
  }

  /**
   * Loads every certificate of `options.config`. Files that fail a check are
   * logged, counted and left out; throws TlsCertificateError (every problem,
   * each naming its file) only when not one certificate can be served.
   * Returns the store and what the load found (for `portcullis check`).
   */
  static async open(options: CertificateStoreOptions): Promise<{ store: CertificateStore; result: CertificateReloadResult }> {
    const wallClock = options.wallClock ?? systemWallClock;
    const slots = new Map<string, Slot>();
    const loaded = await loadSlots(options.config, slots, wallClock.epochMs(), options, 'start');
    const served = arrange(loaded.certificates, options.config.default);
    const problems = [...loaded.problems, ...served.problems];
    if (served.served === null) {
      throw new TlsCertificateError(
        problems.length > 0 ? problems : [{ file: 'tls', message: 'lists no certificate: a TLS listener needs tls.certificates or tls.certbot_live' }],
        'no TLS certificate can be served; fix these and start again',
      );
    }
    const tickets = new TicketKeyRotation({ timers: options.timers ?? systemTimers, ...(options.ticketKeyRotationMs === undefined ? {} : { intervalMs: options.ticketKeyRotationMs }) });
    const store = new CertificateStore(options, served.served, loaded.slots, tickets);
    for (const problem of served.problems) options.logger.warn({ file: problem.file }, formatCertificateProblem(problem));
    for (const certificate of served.served.certificates) options.metrics.setExpiry(certificate.name, certificate.notAfterMs);
    const names = served.served.certificates.map((certificate) => certificate.name);
    options.logger.info({ certificates: names, default: served.served.fallback.name, problems: problems.length }, 'TLS certificates loaded');
    return { store, result: { served: names, changed: names, removed: [], problems } };
  }

  /** The context for a client that asked for `servername` (SNI); none or an unknown name gets the default certificate. */
  contextFor(servername: string | undefined): SecureContext {
    return this.#certificateFor(servername).context;
  }

  /** The name of the certificate `contextFor(servername)` serves. */
  nameFor(servername: string | undefined): string {
    return this.#certificateFor(servername).name;
  }

  /** The certificates served now, in policy order. */
  get certificates(): readonly ServedCertificate[] {
    return this.#served.certificates.map((certificate) => ({
      name: certificate.name,
      hostNames: certificate.hostNames,
      certFile: certificate.source.certFile,
      keyFile: certificate.source.keyFile,
      notAfterMs: certificate.notAfterMs,
      fingerprint256: certificate.fingerprint256,
    }));
  }

  /**
   * Options for `tls.createServer` / `http2.createSecureServer`: TLS 1.2 and
   * 1.3 with Mozilla's intermediate ciphers, ALPN h2 then http/1.1 (http2's
   * server sets its own ALPN list from `allowHTTP1`), the SNICallback, the
   * current ticket key, and the default certificate for clients without SNI
   * (Node never calls the SNICallback for them). Call `attach` on the server
   * built from these so reloads and key rotations reach it.
   */
  serverOptions(): TlsOptions {
    return { ...this.#defaultContextOptions(), ALPNProtocols: [...TLS_ALPN_PROTOCOLS], SNICallback: this.SNICallback };
  }

  /**
   * Keeps `server` current: its own context (what clients without SNI get)
   * follows the default certificate across reloads, and its ticket key
   * follows the rotation. Let go when the server closes.
   */
  attach(server: TlsServer): void {
    if (this.#servers.has(server)) return;
    this.#servers.add(server);
    server.setSecureContext(this.#defaultContextOptions());
    this.#tickets.add(server);
    server.once('close', () => {
      this.#servers.delete(server);
      this.#tickets.remove(server);
    });
  }

  /**
   * Reloads every certificate (after any reload in progress); with `config`,
   * from the new policy's `tls` (the policy reload path passes it). Never
   * throws for a bad file: see the result's `problems`.
   */
  reload(trigger: string, config?: TlsConfig): Promise<CertificateReloadResult> {
    const result = this.#queue.then(() => this.#reloadOnce(trigger, config ?? this.#config));
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /** Watches the directories of every certificate file, and certbot_live itself for new and removed folders; reloads on a change. */
  watch(): void {
    if (this.#watcher !== null) return;
    this.#watcher = new DirectoryWatcher({
      logger: this.#options.logger,
      timers: this.#timers,
      debounceMs: this.#options.debounceMs ?? 300,
      onChange: () => void this.reload('files changed'),
    });
    this.#watcher.update(this.#watchedDirectories());
  }

  /** Stops watching and rotating ticket keys; servers keep the contexts they have. */
  close(): void {
    this.#watcher?.close();
    this.#watcher = null;
    this.#tickets.close();
    this.#servers.clear();
  }

  #certificateFor(servername: string | undefined): LoadedCertificate {
    const served = this.#served;
    return (servername ? served.index.lookup(servername) : undefined) ?? served.fallback;
  }

  #defaultContextOptions(): TlsOptions {
    const { files } = this.#served.fallback;
    return { ...TLS_CONTEXT_SETTINGS, cert: files.cert, key: files.key, ticketKeys: this.#tickets.current };
  }

  async #reloadOnce(trigger: string, config: TlsConfig): Promise<CertificateReloadResult> {
    const { logger, metrics } = this.#options;
    const before = this.#served;
    const loaded = await loadSlots(config, this.#slots, this.#wallClock.epochMs(), this.#options, trigger);
    const arranged = arrange(loaded.certificates, config.default);
    const problems = [...loaded.problems, ...arranged.problems];
    if (arranged.served === null) {
      // Nothing left to serve (every folder gone, or a policy without certificates): a TLS listener without a certificate serves nobody, so the previous set stays.
      const problem = { file: 'tls', message: 'no certificate could be served after this reload; the previous certificates stay until one can' };
      logger.error({ trigger, problems: problems.map(formatCertificateProblem) }, formatCertificateProblem(problem));
      return { served: before.certificates.map((certificate) => certificate.name), changed: [], removed: [], problems: [...problems, problem] };
    }
    this.#config = config;
    this.#slots = loaded.slots;
    this.#served = arranged.served;
    const beforeByName = new Map(before.certificates.map((certificate) => [certificate.name, certificate]));
    const nowNames = new Set(arranged.served.certificates.map((certificate) => certificate.name));
    const changed = arranged.served.certificates.filter((certificate) => beforeByName.get(certificate.name) !== certificate).map((certificate) => certificate.name);
    const removed = [...beforeByName.keys()].filter((name) => !nowNames.has(name));
    for (const name of removed) metrics.forget(name);
    for (const certificate of arranged.served.certificates) metrics.setExpiry(certificate.name, certificate.notAfterMs);
    if (arranged.served.fallback !== before.fallback) {
      for (const server of this.#servers) server.setSecureContext(this.#defaultContextOptions());
    }
    for (const problem of arranged.problems) logger.warn({ file: problem.file, trigger }, formatCertificateProblem(problem));
    if (changed.length > 0 || removed.length > 0) logger.info({ trigger, changed, removed, default: arranged.served.fallback.name }, 'TLS certificates reloaded');
    this.#watcher?.update(this.#watchedDirectories());
    return { served: [...nowNames], changed, removed, problems };
  }

  /**
   * Each certificate file's directory (for certbot's symlink swaps and
   * editors' renames), with the names that matter in it, and certbot_live
   * itself with any name (a folder added or removed).
   */
  #watchedDirectories(): WatchedDirectories {
    const dirs = new Map<string, Set<string> | null>();
    const add = (file: string): void => {
      const dir = dirname(file);
      const names = dirs.get(dir);
      if (names === null) return;
      if (names === undefined) dirs.set(dir, new Set([basename(file)]));
      else names.add(basename(file));
    };
    for (const slot of this.#slots.values()) {
      add(slot.source.certFile);
      add(slot.source.keyFile);
    }
    if (this.#config.certbot_live !== undefined) dirs.set(this.#config.certbot_live, null);
    return dirs;
  }
}

/**
 * The served set from what was loaded (names already unique): the host-name
 * index, and the fallback `tls.default` picks. `served` is null when there is
 * nothing to serve.
 */
function arrange(loaded: readonly LoadedCertificate[], defaultName: string | undefined): { served: Served | null; problems: CertificateProblem[] } {
  const first = loaded[0];
  if (first === undefined) return { served: null, problems: [] };
  const index = new HostNameIndex<LoadedCertificate>();
  for (const certificate of loaded) index.add(certificate.hostNames, certificate);
  if (defaultName === undefined) return { served: { certificates: loaded, index, fallback: first }, problems: [] };
  const named = loaded.find((certificate) => certificate.name === defaultName) ?? index.lookup(defaultName);
  if (named !== undefined) return { served: { certificates: loaded, index, fallback: named }, problems: [] };
  const problem: CertificateProblem = {
    file: 'tls.default',
    message: `names ${JSON.stringify(defaultName)}, but no certificate served has that name or covers that host (served: ${loaded.map((certificate) => certificate.name).join(', ')}); clients without SNI get the first, ${first.name}`,
  };
  return { served: { certificates: loaded, index, fallback: first }, problems: [problem] };
}
