import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { Agent, request } from 'undici';
import { parse as parseYaml } from 'yaml';
import { ADMIN_TOKEN_ENV, loadAdminToken } from '../admin/admin-token.js';
import { parseListenAddress } from '../config/listen-address.js';
import { DEFAULT_POLICY_FILE, loadPolicyFile, parsePolicy } from '../config/policy-loader.js';
import type { PolicyConfig } from '../config/schema.js';
import { ConfigError, ERROR_CODES, PortcullisError, type ErrorCode } from '../core/errors.js';
import { printable } from './text-table.js';

/**
 * How long one admin call may take, connecting included. The admin API answers
 * from memory in milliseconds; 5 s means "something is wrong", not "busy".
 */
export const ADMIN_TIMEOUT_MS = 5_000;

/** The options every admin command takes, for parseCommandArgs. */
export const ADMIN_OPTIONS = {
  admin: { type: 'string' },
  config: { type: 'string', short: 'c' },
  'token-file': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The help lines of ADMIN_OPTIONS, for each command's help text. */
export const ADMIN_OPTIONS_HELP = `  --admin URL         admin API to call (default: admin.listen of the policy;
                      0.0.0.0 and [::] there mean this machine's loopback)
  -c, --config FILE   policy to take admin.listen and admin.token_file from
                      (default: the embedded config/portcullis.yaml)
  --token-file FILE   file holding the bearer token for changes (default:
                      $${ADMIN_TOKEN_ENV}, else the policy's admin.token_file)
  --json              print the API's JSON as it comes, for scripts
  -h, --help          show this help`;

/** The values of ADMIN_OPTIONS as parseArgs returns them. */
export interface AdminOptionValues {
  readonly admin?: string | undefined;
  readonly config?: string | undefined;
  readonly 'token-file'?: string | undefined;
}

/** An answer of the admin API: its status, its text as sent, and that text parsed. */
export interface AdminAnswer {
  readonly status: number;
  readonly text: string;
  readonly body: unknown;
}

/** Where the CLI finds the admin API and which token it shows it. */
export interface AdminTarget {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:9181`. */
  readonly baseUrl: string;
  /** Where `baseUrl` came from, for error messages (`--admin`, `admin.listen in FILE`). */
  readonly origin: string;
  readonly token: string | null;
  /** Where the token came from; null when there is none. */
  readonly tokenOrigin: string | null;
}

/**
 * Works out the admin API's URL and, when `needsToken`, the bearer token:
 * `--admin`, else the policy's admin.listen; `--token-file`, else
 * PORTCULLIS_ADMIN_TOKEN, else the policy's admin.token_file, else none (the
 * API then refuses changes, and says so). The policy (`--config`, else the
 * embedded default) is read only when one of them is needed from it. Read-only
 * commands never read a token, so they work for users who cannot read it.
 */
export async function resolveAdminTarget(values: AdminOptionValues, needsToken: boolean, env: NodeJS.ProcessEnv = process.env): Promise<AdminTarget> {
  const policyFile = values.config ?? DEFAULT_POLICY_FILE;
  let section: PolicyConfig['admin'] | undefined;
  const policyAdmin = async () => (section ??= await readAdminSection(policyFile));

  let baseUrl: string;
  let origin: string;
  if (values.admin !== undefined) {
    baseUrl = parseAdminUrl(values.admin);
    origin = '--admin';
  } else {
    const listen = (await policyAdmin()).listen;
    baseUrl = adminUrlForListen(listen, policyFile);
    origin = `admin.listen ${listen} in ${policyFile}`;
  }

  if (!needsToken) return { baseUrl, origin, token: null, tokenOrigin: null };
  const tokenFile = values['token-file'];
  if (tokenFile !== undefined) return { baseUrl, origin, token: await loadAdminToken(tokenFile, {}), tokenOrigin: `--token-file ${tokenFile}` };
  const fromEnv = env[ADMIN_TOKEN_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return { baseUrl, origin, token: await loadAdminToken(undefined, env), tokenOrigin: ADMIN_TOKEN_ENV };
  const policyTokenFile = (await policyAdmin()).token_file;
  if (policyTokenFile === undefined) return { baseUrl, origin, token: null, tokenOrigin: null };
  return { baseUrl, origin, token: await loadAdminToken(policyTokenFile, {}), tokenOrigin: `admin.token_file ${policyTokenFile} in ${policyFile}` };
}

/**
 * The policy's `admin` section. When the rest of the policy is invalid but its
 * admin section is fine, that section is still used: the usual reason to run
 * `portcullis reload` is a freshly edited policy, and the running portcullis
 * reports that file's problems better than a refusal to call it would.
 */
export async function readAdminSection(file: string): Promise<PolicyConfig['admin']> {
  try {
    return (await loadPolicyFile(file)).admin;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    try {
      const data: unknown = parseYaml(await readFile(file, 'utf8'));
      const admin = typeof data === 'object' && data !== null ? (data as Record<string, unknown>).admin : undefined;
      // JSON is YAML: the section alone goes through the same schema, defaults included.
      return parsePolicy(JSON.stringify({ admin }), file).admin;
    } catch {
      throw error;
    }
  }
}

/**
 * Turns an admin.listen address into the URL to call it on. A wildcard listen
 * address (0.0.0.0, [::]) accepts connections on every interface, so the
 * loopback of the same family reaches it. Port 0 (a port the kernel picks at
 * start) cannot be known from the policy: `--admin` is then needed.
 */
export function adminUrlForListen(listen: string, policyFile: string): string {
  const address = parseListenAddress(listen);
  if (address === null) throw new PortcullisError('PC_ERR_USAGE', `admin.listen ${JSON.stringify(listen)} in ${policyFile} is not HOST:PORT; pass --admin URL`);
  if (address.port === 0) {
    throw new PortcullisError('PC_ERR_USAGE', `admin.listen in ${policyFile} is port 0 (picked by the kernel at start), so the CLI cannot know it; pass --admin URL`);
  }
  let host = address.host;
  if (host === '0.0.0.0') host = '127.0.0.1';
  else if (net.isIPv6(host) && /^[0:]+$/.test(host)) host = '::1';
  return `http://${net.isIPv6(host) ? `[${host}]` : host}:${address.port}`;
}

/** Validates `--admin`: an http(s) URL, or a bare `HOST:PORT` as in admin.listen. Returns it without a trailing slash. */
export function parseAdminUrl(text: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text) && parseListenAddress(text) !== null) return adminUrlForListen(text, '--admin');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new PortcullisError('PC_ERR_USAGE', `--admin must be a URL like http://127.0.0.1:9181, got ${JSON.stringify(text)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new PortcullisError('PC_ERR_USAGE', `--admin must be an http:// or https:// URL, got ${JSON.stringify(text)}`);
  }
  if (url.search !== '' || url.hash !== '') throw new PortcullisError('PC_ERR_USAGE', `--admin must be a base URL without ?query or #fragment, got ${JSON.stringify(text)}`);
  return url.href.replace(/\/+$/, '');
}

/**
 * A client of the admin API: one HTTP call per method, JSON in and out,
 * bounded by ADMIN_TIMEOUT_MS. A call that gets no answer, or an answer that
 * is not the API's JSON, throws PC_ERR_ADMIN_UNREACHABLE; an answer with an
 * error status is returned as is (see `expectOk`), since some callers print
 * what it holds.
 */
export class AdminClient {
  constructor(
    readonly target: AdminTarget,
    readonly timeoutMs: number = ADMIN_TIMEOUT_MS,
  ) {}

  /** `path` starts with `/`; path arguments must already be percent-encoded. */
  async call(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<AdminAnswer> {
    const { baseUrl, origin, token } = this.target;
    const url = `${baseUrl}${path}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    // undici rather than fetch: fetch refuses the spec's "bad ports" (6000, 6665 ...), and
    // admin.listen may be any port. A dispatcher of its own, closed after the call, leaves
    // no keep-alive socket holding the CLI open.
    const dispatcher = new Agent({ connect: { timeout: this.timeoutMs } });
    let status: number;
    let contentType: string;
    let text: string;
    try {
      const response = await request(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        dispatcher,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      status = response.statusCode;
      contentType = String(response.headers['content-type'] ?? '(no content type)');
      text = await response.body.text();
    } catch (error) {
      const why = (error as Error).name === 'TimeoutError' ? `no answer within ${this.timeoutMs / 1000} s` : describeConnectFailure(error);
      throw new PortcullisError(
        'PC_ERR_ADMIN_UNREACHABLE',
        `cannot reach the admin API at ${baseUrl} (${why}); is portcullis running, and is the URL right? It came from ${origin}; pass --admin URL or --config FILE to change it`,
        { cause: error },
      );
    } finally {
      void dispatcher.destroy().catch(() => undefined);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new PortcullisError(
        'PC_ERR_ADMIN_UNREACHABLE',
        `${method} ${url} answered HTTP ${status} (${contentType}), not the admin API's JSON; does ${origin} point at the admin listener (admin.listen) rather than the proxy or Apache?`,
      );
    }
    return { status, text, body: parsed };
  }
}

/**
 * Throws the API's own error (its message and, when portcullis knows it, its
 * code) unless the answer is a success. A 401 also says where the token came
 * from, or how to give one: that is what the person has to fix.
 */
export function expectOk(answer: AdminAnswer, target: AdminTarget): void {
  if (answer.status >= 200 && answer.status < 300) return;
  const error = (answer.body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const message = typeof error?.message === 'string' ? error.message : `unexpected answer: ${answer.text.trim().slice(0, 200)}`;
  const code = typeof error?.code === 'string' && error.code in ERROR_CODES ? (error.code as ErrorCode) : 'PC_ERR_ADMIN_REQUEST';
  let hint = '';
  if (answer.status === 401) {
    hint =
      target.tokenOrigin === null
        ? `; the CLI sent no token: pass --token-file FILE, set ${ADMIN_TOKEN_ENV}, or give the policy with admin.token_file (--config FILE)`
        : `; the token came from ${target.tokenOrigin}`;
  }
  throw new PortcullisError(code, `admin API: ${printable(message)}${hint} (HTTP ${answer.status})`);
}

/** The innermost reason a connection failed (connect ECONNREFUSED, getaddrinfo ENOTFOUND ...). */
function describeConnectFailure(error: unknown): string {
  let reason = (error as Error).message;
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (current.message !== '') reason = current.message;
    // Happy eyeballs: a failure on every address is an AggregateError with an empty message.
    current = current instanceof AggregateError && current.errors.length > 0 ? current.errors[0] : current.cause;
  }
  return reason;
}
