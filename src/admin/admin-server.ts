import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ReloadResult } from '../config/policy-reloader.js';
import { AdminHostError, AdminRequestError, PortcullisError, type ErrorCode } from '../core/errors.js';
import { banByHand } from '../escalation/manual-ban.js';
import type { ManualBanRequest } from '../escalation/manual-ban.js';
import type { Ban } from '../escalation/ban.js';
import type { BanLedger } from '../escalation/ban-ledger.js';
import type { Escalator } from '../escalation/escalator.js';
import type { DecisionEngine } from '../engine/decision-engine.js';
import { makeClientKey, parseClientAddress, type PrefixLengths } from '../identity/client-key.js';
import { banToJson } from './ban-json.js';
import { parseBanRequest, parseBanTarget } from './ban-request.js';
import { bearerMatches } from './admin-token.js';
import { explainToJson } from './explain-report.js';
import { AdminHostCheck } from './host-check.js';
import { buildStatusReport, type StatusSources } from './status-report.js';

/** Largest request body the admin API reads: a ban request is a few hundred bytes. */
const MAX_BODY_BYTES = 64 * 1024;

/** `GET /readyz`: can portcullis do its job right now? */
export interface Readiness {
  readonly ready: boolean;
  readonly checks: Record<string, { readonly ok: boolean; readonly detail: string }>;
}


/** What the admin API reads and acts on; assembled by startPortcullis. */
export interface AdminContext extends StatusSources {
  readonly registry: Registry;
  readonly ledger: BanLedger;
  readonly escalator: Escalator;
  readonly engine: DecisionEngine;
  readonly logger: Logger;
  nowMs(): number;
  epochMs(): number;
  prefixLengths(): PrefixLengths;
  readiness(): Promise<Readiness>;
  reload(): Promise<ReloadResult>;
  /** The bearer token state-changing calls need; null: they are refused. */
  readonly token: string | null;
  /** `admin.allowed_hosts`: Host names answered besides the API's own address and localhost (see AdminHostCheck). */
  readonly allowedHosts: readonly string[];
}

type Handler = (req: IncomingMessage, res: ServerResponse, arg: string) => Promise<void> | void;

interface Route {
  readonly method: string;
  readonly pattern: RegExp;
  readonly mutates: boolean;
  readonly handler: Handler;
}

/**
 * The admin API: health, metrics, bans, status, explain and reload, as JSON
 * over HTTP. Reading is open to whoever can reach the listener (loopback by
 * default) with a Host that names the API (AdminHostCheck: no DNS
 * rebinding); anything that changes state needs the bearer token. Every bad
 * input is a 4xx JSON error `{"error": {"code", "message"}}`, never a crash.
 */
export class AdminServer {
  readonly #server: http.Server;
  readonly #context: AdminContext;
  readonly #routes: Route[];
  /** Built by listen(), which knows the listen address; until then every request is refused. */
  #hostCheck: AdminHostCheck | null = null;

  constructor(context: AdminContext) {
    this.#context = context;
    this.#routes = [
      { method: 'GET', pattern: /^\/healthz$/, mutates: false, handler: (_req, res) => sendJson(res, 200, { status: 'ok' }) },
      { method: 'GET', pattern: /^\/readyz$/, mutates: false, handler: (_req, res) => this.#readyz(res) },
      { method: 'GET', pattern: /^\/metrics$/, mutates: false, handler: (_req, res) => this.#metrics(res) },
      { method: 'GET', pattern: /^\/bans$/, mutates: false, handler: (_req, res) => this.#listBans(res) },
      { method: 'POST', pattern: /^\/bans$/, mutates: true, handler: (req, res) => this.#addBan(req, res) },
      { method: 'DELETE', pattern: /^\/bans\/(.+)$/, mutates: true, handler: (req, res, target) => this.#removeBan(req, res, target) },
      { method: 'GET', pattern: /^\/status$/, mutates: false, handler: (_req, res) => this.#status(res) },
      { method: 'GET', pattern: /^\/explain\/(.+)$/, mutates: false, handler: (_req, res, ip) => this.#explain(res, ip) },
      { method: 'POST', pattern: /^\/reload$/, mutates: true, handler: (_req, res) => this.#reload(res) },
    ];
    this.#server = http.createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => void this.#handle(req, res));
  }

  /**
   * Starts listening; resolves with the bound address. `host` is admin.listen's
   * host (IPv6 without brackets). A bound address other than loopback is
   * logged as a warning: the API shows client addresses to whoever reaches it.
   */
  listen(host: string, port: number): Promise<AddressInfo> {
    this.#hostCheck = new AdminHostCheck(host, this.#context.allowedHosts);
    return new Promise((resolve, reject) => {
      const onError = (error: Error) =>
        reject(new PortcullisError('PC_ERR_LISTEN', `cannot listen for the admin API on ${host}:${port}: ${error.message}; change admin.listen or stop what uses the port`, { cause: error }));
      this.#server.once('error', onError);
      this.#server.listen(port, host, () => {
        this.#server.off('error', onError);
        const address = this.#server.address() as AddressInfo;
        if (parseClientAddress(address.address)?.range() !== 'loopback') {
          const bound = address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
          this.#context.logger.warn(
            { listen: bound },
            `the admin API listens on ${bound}, beyond loopback: whoever reaches that port can read client addresses, bans and metrics (changes still need the token). ` +
              'Firewall the port, or set admin.listen to 127.0.0.1:PORT; names it is reached by other than its own address need admin.allowed_hosts',
          );
        }
        resolve(address);
      });
    });
  }

  /** Stops at once: admin calls are short and safe to cut. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      // First of all, before the route is even looked up: a rebinding page must learn nothing, not even a 404.
      const verdict = this.#hostCheck?.check(req.headersDistinct.host, req.socket.localAddress, req.socket.localPort) ?? { ok: false, why: 'the admin API is not listening yet' };
      if (!verdict.ok) throw new AdminHostError(verdict.why);
      const path = new URL(req.url ?? '/', 'http://admin').pathname;
      const matching = this.#routes.filter((route) => route.pattern.test(path));
      if (matching.length === 0) throw new AdminRequestError(404, `no such endpoint ${path}; see the README's admin API section`);
      const route = matching.find((candidate) => candidate.method === req.method);
      if (route === undefined) {
        res.setHeader('allow', matching.map((candidate) => candidate.method).join(', '));
        throw new AdminRequestError(405, `${req.method} is not allowed on ${path}; use ${matching.map((candidate) => candidate.method).join(' or ')}`);
      }
      if (route.mutates) this.#authorize(req, res);
      const arg = route.pattern.exec(path)?.[1] ?? '';
      await route.handler(req, res, decodeArg(arg));
    } catch (error) {
      if (error instanceof AdminRequestError) {
        if (error.status === 413) res.shouldKeepAlive = false;
        sendJson(res, error.status, { error: { code: error.code, message: error.message } });
        return;
      }
      this.#context.logger.error({ err: error, method: req.method, url: req.url }, 'admin API request failed');
      sendJson(res, 500, { error: { code: 'PC_ERR_INTERNAL' satisfies ErrorCode, message: 'internal error; see the portcullis log' } });
    }
  }

  #authorize(req: IncomingMessage, res: ServerResponse): void {
    const token = this.#context.token;
    if (token === null) {
      throw new AdminRequestError(403, 'changes through the admin API are disabled: set admin.token_file in the policy (or PORTCULLIS_ADMIN_TOKEN) and restart');
    }
    if (!bearerMatches(req.headers.authorization, token)) {
      res.setHeader('www-authenticate', 'Bearer realm="portcullis"');
      throw new AdminRequestError(401, req.headers.authorization === undefined ? 'this call needs "Authorization: Bearer <token>"' : 'the bearer token is wrong');
    }
  }

  async #readyz(res: ServerResponse): Promise<void> {
    const readiness = await this.#context.readiness();
    sendJson(res, readiness.ready ? 200 : 503, readiness);
  }

  async #metrics(res: ServerResponse): Promise<void> {
    const { registry } = this.#context;
    const text = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  #listBans(res: ServerResponse): void {
    const { ledger } = this.#context;
    const nowMs = this.#context.nowMs();
    const bans = ledger.active().filter((ban) => ban.expiresMs > nowMs).sort((a, b) => a.expiresMs - b.expiresMs);
    sendJson(res, 200, { bans: bans.map((ban) => this.#json(ban, nowMs)) });
  }

  async #addBan(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const request: ManualBanRequest = parseBanRequest(await readJson(req));
    const { ledger, escalator, logger } = this.#context;
    const nowMs = this.#context.nowMs();
    const outcome = banByHand(request, { ledger, escalator, prefix: this.#context.prefixLengths() }, nowMs);
    if (!outcome.ok) {
      throw outcome.why === 'protected'
        ? new AdminRequestError(409, `${request.target} is (or covers) an allowlisted address, a trusted proxy or the upstream, which are never banned`)
        : new AdminRequestError(507, 'escalation.max_bans bans are already active; lift some or raise the limit');
    }
    logger.warn({ target: outcome.ban.target, by: req.socket.remoteAddress, reason: request.reason }, 'ban added through the admin API');
    sendJson(res, 201, { ban: this.#json(outcome.ban, nowMs) });
  }

  #removeBan(req: IncomingMessage, res: ServerResponse, text: string): void {
    const { target } = parseBanTarget(text);
    const lifted = this.#context.ledger.lift(target);
    if (lifted === null) throw new AdminRequestError(404, `${target} is not banned (GET /bans lists the active bans)`);
    this.#context.logger.warn({ target, by: req.socket.remoteAddress }, 'ban lifted through the admin API');
    sendJson(res, 200, { lifted: this.#json(lifted, this.#context.nowMs()) });
  }

  #status(res: ServerResponse): void {
    sendJson(res, 200, buildStatusReport(this.#context, this.#context.nowMs(), this.#context.epochMs()));
  }

  #explain(res: ServerResponse, text: string): void {
    const addr = parseClientAddress(text);
    if (addr === null) throw new AdminRequestError(400, `${JSON.stringify(text)} is not an IP address (explain takes one address, e.g. 192.0.2.7)`);
    const client = makeClientKey(addr, this.#context.prefixLengths());
    sendJson(res, 200, explainToJson(this.#context.engine.explain(client, this.#context.nowMs()), this.#context.epochMs()));
  }

  async #reload(res: ServerResponse): Promise<void> {
    const result = await this.#context.reload();
    if (result.ok) sendJson(res, 200, { reloaded: true, restart_needed_for: result.restartNeeded });
    else sendJson(res, 422, { error: { code: 'PC_ERR_CONFIG_INVALID', message: 'the policy file is invalid; the previous policy stays in force', problems: result.problems } });
  }

  #json(ban: Ban, nowMs: number) {
    return banToJson(ban, nowMs, this.#context.epochMs());
  }
}

/** Route arguments are percent-decoded, so `/bans/192.0.2.0%2F24` and `/bans/192.0.2.0/24` both work. */
function decodeArg(arg: string): string {
  try {
    return decodeURIComponent(arg);
  } catch {
    throw new AdminRequestError(400, `bad percent-encoding in ${JSON.stringify(arg)}`);
  }
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        // Stop reading but keep the socket, so the 413 can still be sent (the connection then closes).
        req.pause();
        req.removeAllListeners('data');
        reject(new AdminRequestError(413, `the body is larger than ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(text.trim() === '' ? undefined : JSON.parse(text));
      } catch (error) {
        reject(new AdminRequestError(400, `the body is not valid JSON: ${(error as Error).message}`));
      }
    });
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

