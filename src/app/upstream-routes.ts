import type { Logger } from 'pino';
import type { PolicyConfig } from '../config/schema.js';
import type { UpstreamRoute } from '../proxy/listeners/listener-spec.js';
import { UndiciForwarder } from '../proxy/undici-forwarder.js';
import { WebSocketForwarder } from '../proxy/websocket-forwarder.js';
import { forwarderOptions } from './component-options.js';

/**
 * One pair of forwarders (requests and WebSockets) per upstream that the
 * listeners and sites name, usually one, made when first named. A reload
 * that adds a site upstream adds its pair here, so one close() ends them all.
 */
export class UpstreamRoutes {
  readonly #routes = new Map<string, UpstreamRoute & { readonly forwarder: UndiciForwarder }>();
  readonly #config: () => PolicyConfig;
  readonly #logger: Logger;

  /** @param config the policy in force, read when a route is made (reloads change it) */
  constructor(config: () => PolicyConfig, logger: Logger) {
    this.#config = config;
    this.#logger = logger;
  }

  /**
   * The route to `upstream`, made on first use. A site upstream's pool follows
   * its cap (`connections`) at each reload; the default one's cap is restart-only.
   */
  routeTo(upstream: string, connections?: number): UpstreamRoute {
    let route = this.#routes.get(upstream);
    if (route === undefined) {
      const config = this.#config();
      const forwarder = new UndiciForwarder({ ...forwarderOptions(config, upstream), ...(connections === undefined ? {} : { connections }) });
      const websockets = new WebSocketForwarder({ upstream, handshakeTimeoutMs: config.timeouts.upstream_headers }, this.#logger);
      route = { upstream, forwarder, websockets };
      this.#routes.set(upstream, route);
    } else if (connections !== undefined) {
      route.forwarder.resize(connections);
    }
    return route;
  }

  /** Closes every forwarder; rejects with the first failure once all have settled. */
  async close(): Promise<void> {
    const results = await Promise.allSettled([...this.#routes.values()].flatMap((route) => [route.forwarder.close(), route.websockets.close()]));
    const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }
}
