/**
 * A real Apache 2.4 for tests: a fresh ServerRoot in a temp dir, a free port on
 * 127.0.0.1, started in the foreground and stopped (and its dir removed) by
 * `stop()`. Every process this harness starts, it stops: `stop()` waits for
 * the parent to exit, and a process 'exit' hook kills it if a test run dies
 * before calling `stop()`.
 *
 * Usage:
 *   const apache = await startApache();
 *   try { ... fetch(`${apache.url}/index.html`) ... } finally { await apache.stop(); }
 *
 * The config is deliberately minimal (see `renderConfig`), with
 * `AcceptPathInfo On` on the docroot so the static `xmlrpc.php` stand-in
 * behaves like a PHP script for `/xmlrpc.php/extra`. `directoryConfig` is
 * inserted inside the docroot's `<Directory>` block and `extraConfig` at
 * server level, after everything else; both may use `${DOCROOT}` and
 * `${SERVER_DIR}` (Apache `Define`s) to refer to the temp paths, and `${PORT}`
 * to its port. `virtualHosts` adds name-based `<VirtualHost>`s on that port
 * (the first serves names none of them has, as in any Apache); every access
 * log line names the vhost that served it (`%v`, `vhost`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { findFreePort } from './free-port.js';

export const APACHE_BIN = '/usr/sbin/apache2';
export const APACHE_MODULES_DIR = '/usr/lib/apache2/modules';

/** The body of the default `xmlrpc.php` stand-in; a response containing it came from that file. */
export const XMLRPC_MARKER = 'PORTCULLIS-TEST-XMLRPC-MARKER-7f3a9c';
/** The body of the default `index.html`. */
export const INDEX_MARKER = 'PORTCULLIS-TEST-INDEX-MARKER-2b81e4';

/** Files every docroot starts with; `files` may override or add to them. */
export const DEFAULT_DOCROOT_FILES: Readonly<Record<string, string>> = {
  'index.html': `<!doctype html><title>index</title>${INDEX_MARKER}\n`,
  'xmlrpc.php': `${XMLRPC_MARKER}\n`,
};

/**
 * Modules loaded in every instance (those compiled into Debian's apache2,
 * such as log_config and unixd, need no LoadModule).
 */
const BASE_MODULES = ['mpm_event', 'authz_core', 'dir', 'mime'] as const;
/** Compiled into Debian's apache2 (`apache2 -l`): LoadModule would fail, so they are skipped. */
const BUILT_IN_MODULES = new Set(['so', 'watchdog', 'log_config', 'logio', 'version', 'unixd']);

export interface StartApacheOptions {
  /** Docroot files, path relative to the docroot → content. Merged over DEFAULT_DOCROOT_FILES. */
  files?: Record<string, string>;
  /** Extra modules to load by short name, e.g. `['negotiation', 'speling', 'rewrite']`. */
  modules?: readonly string[];
  /** Directives inserted inside `<Directory "${DOCROOT}">`. */
  directoryConfig?: string;
  /** Server-level directives appended at the end of the config. */
  extraConfig?: string;
  /** Name-based virtual hosts on the instance's port, in order; each serves the same docroot. */
  virtualHosts?: readonly VirtualHostSpec[];
  /** How long to wait for the port to accept connections. @default 10_000 */
  startTimeoutMs?: number;
}

/** A name-based `<VirtualHost>`: its ServerName and ServerAlias names (exact or wildcards like `*.example.org`). */
export interface VirtualHostSpec {
  readonly serverName: string;
  readonly aliases?: readonly string[];
  /** Directives inside the block. */
  readonly config?: string;
}

/** One access-log line. Apache escapes control characters, `"` and `\` in these fields. */
export interface AccessLogEntry {
  /** `%a`: the client IP address of the connection. */
  remoteAddr: string;
  /** `%m`: the request method. */
  method: string;
  /** `%r`: the first line of the request, as received (escaped). */
  requestLine: string;
  /** `%U`: the URL path requested, after Apache's decoding and normalisation. */
  urlPath: string;
  /** `%>s`: the final status. */
  status: number;
  /** `%f`: the file Apache mapped the request to (`-` when none). */
  filename: string;
  /** `%D`: time taken to serve the request, in microseconds. */
  durationUs: number;
  /** `%v`: the ServerName of the (virtual) host that served the request. */
  vhost: string;
}

export interface ApacheHandle {
  /** The port Apache listens on (127.0.0.1). */
  readonly port: number;
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  readonly url: string;
  /** Absolute path of the docroot. */
  readonly root: string;
  /** Absolute path of the ServerRoot temp dir (config, logs, pid). */
  readonly serverDir: string;
  /** Apache's parent pid. */
  readonly pid: number;
  /**
   * Parses the access log as it is now. Apache writes a request's line after
   * the response's last byte is handed to the socket and before it closes a
   * `Connection: close` socket: after such a response has ended (EOF) the
   * entry is there. On a keep-alive connection (e.g. through the proxy) the
   * client may see the response a moment before the line is written: use
   * {@link ApacheHandle.waitForAccessLog} there.
   */
  accessLog(): Promise<AccessLogEntry[]>;
  /**
   * Re-reads the access log until `predicate(entries)` is true, then returns
   * the entries; rejects after `timeoutMs` (default 5000) with the last read.
   */
  waitForAccessLog(predicate: (entries: AccessLogEntry[]) => boolean, timeoutMs?: number): Promise<AccessLogEntry[]>;
  /** The error log's content, for diagnostics. */
  errorLog(): Promise<string>;
  /** Stops Apache (SIGTERM, then SIGKILL after a bound), waits for it to exit, removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

const LOG_FORMAT = '%a\\t%m\\t%r\\t%U\\t%>s\\t%f\\t%D\\t%v';
const STOP_TIMEOUT_MS = 10_000;
const PORT_ATTEMPTS = 3;

/** Starts an Apache on a free port; rejects with the error log if it does not come up. */
export async function startApache(opts: StartApacheOptions = {}): Promise<ApacheHandle> {
  let lastError: unknown;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    try {
      return await startOnce(opts, await findFreePort());
    } catch (err) {
      lastError = err;
      // Another process may have taken the port between our probe and Apache's bind: retry on a new one.
      if (!(err instanceof ApacheStartError && err.addressInUse)) throw err;
    }
  }
  throw lastError;
}

class ApacheStartError extends Error {
  constructor(
    message: string,
    readonly addressInUse: boolean,
  ) {
    super(message);
    this.name = 'ApacheStartError';
  }
}

async function startOnce(opts: StartApacheOptions, port: number): Promise<ApacheHandle> {
  const serverDir = await mkdtemp(join(tmpdir(), 'portcullis-apache-'));
  // mkdtemp makes 0700: Apache's workers run as www-data and need to traverse it.
  await chmod(serverDir, 0o755);
  const root = join(serverDir, 'htdocs');
  const runDir = join(serverDir, 'run');
  const logDir = join(serverDir, 'logs');
  for (const dir of [root, runDir, logDir]) {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await chmod(dir, 0o755);
  }
  const files = { ...DEFAULT_DOCROOT_FILES, ...opts.files };
  for (const [rel, content] of Object.entries(files)) {
    const file = join(root, rel);
    await mkdir(dirname(file), { recursive: true, mode: 0o755 });
    await writeFile(file, content, { mode: 0o644 });
  }
  const mimeTypes = join(serverDir, 'mime.types');
  await writeFile(mimeTypes, 'text/html html htm\ntext/plain txt\ntext/css css\napplication/javascript js\n');
  const confFile = join(serverDir, 'httpd.conf');
  const errorLogFile = join(logDir, 'error.log');
  const accessLogFile = join(logDir, 'access.log');
  await writeFile(
    confFile,
    renderConfig({ serverDir, root, runDir, errorLogFile, accessLogFile, mimeTypes, port, opts }),
  );

  const child = spawn(APACHE_BIN, ['-f', confFile, '-DFOREGROUND'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    if (stderr.length < 64_000) stderr += chunk;
  });
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    // A spawn failure (e.g. apache2 not installed) emits 'error' and no 'exit'.
    child.once('error', (err) => {
      spawnError = err;
      resolve();
    });
  });
  const killOnExit = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await terminate(child, exited);
    process.removeListener('exit', killOnExit);
    await rm(serverDir, { recursive: true, force: true });
  };

  try {
    await waitForPort(port, child, opts.startTimeoutMs ?? 10_000, () => spawnError);
  } catch (err) {
    const errorLog = await readFile(errorLogFile, 'utf8').catch(() => '');
    await stop();
    const detail = `${(err as Error).message}\n--- apache stderr ---\n${stderr}\n--- error log ---\n${errorLog}`;
    throw new ApacheStartError(`Apache did not start on 127.0.0.1:${port}: ${detail}`, /Address already in use/.test(detail));
  }

  const accessLog = async (): Promise<AccessLogEntry[]> =>
    parseAccessLog(await readFile(accessLogFile, 'latin1').catch(() => ''));
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    root,
    serverDir,
    pid: child.pid ?? -1,
    accessLog,
    waitForAccessLog: async (predicate, timeoutMs = 5_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const entries = await accessLog();
        if (predicate(entries)) return entries;
        if (Date.now() > deadline) {
          throw new Error(`access log did not satisfy the predicate within ${timeoutMs} ms; it has ${entries.length} entries:\n${JSON.stringify(entries.slice(-20), null, 1)}`);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    errorLog: () => readFile(errorLogFile, 'utf8').catch(() => ''),
    stop,
  };
}

interface ConfigContext {
  serverDir: string;
  root: string;
  runDir: string;
  errorLogFile: string;
  accessLogFile: string;
  mimeTypes: string;
  port: number;
  opts: StartApacheOptions;
}

function renderConfig(c: ConfigContext): string {
  const modules = [...new Set<string>([...BASE_MODULES, ...(c.opts.modules ?? [])])].filter((m) => !BUILT_IN_MODULES.has(m));
  for (const m of modules) {
    if (!/^[a-z0-9_]+$/.test(m)) throw new Error(`startApache: invalid module name ${JSON.stringify(m)}`);
  }
  return [
    `Define SERVER_DIR "${c.serverDir}"`,
    `Define DOCROOT "${c.root}"`,
    `Define PORT ${c.port}`,
    `ServerRoot "${c.serverDir}"`,
    `ServerName 127.0.0.1`,
    `Listen 127.0.0.1:${c.port}`,
    `PidFile "${join(c.runDir, 'httpd.pid')}"`,
    `DefaultRuntimeDir "${c.runDir}"`,
    `Mutex file:${c.runDir} default`,
    ...modules.map((m) => `LoadModule ${m}_module ${APACHE_MODULES_DIR}/mod_${m}.so`),
    // Apache refuses to run its workers as root.
    `User www-data`,
    `Group www-data`,
    // Few processes: a 2-core test machine; tests that need more can override in extraConfig.
    `StartServers 1`,
    `ServerLimit 4`,
    `ThreadsPerChild 25`,
    `MaxRequestWorkers 100`,
    // A file, not /dev/stderr: that fails under vitest workers.
    `ErrorLog "${c.errorLogFile}"`,
    `LogLevel warn`,
    `LogFormat "${LOG_FORMAT}" portcullis_test`,
    `CustomLog "${c.accessLogFile}" portcullis_test`,
    `TypesConfig "${c.mimeTypes}"`,
    `DocumentRoot "${c.root}"`,
    `DirectoryIndex index.html`,
    `<Directory />`,
    `  AllowOverride None`,
    `  Require all denied`,
    `</Directory>`,
    `<Directory "${c.root}">`,
    `  Options None`,
    `  AllowOverride None`,
    `  Require all granted`,
    // Static files refuse PATH_INFO by default; PHP handlers accept it. Make the stand-in behave like PHP.
    `  AcceptPathInfo On`,
    c.opts.directoryConfig ?? '',
    `</Directory>`,
    c.opts.extraConfig ?? '',
    ...(c.opts.virtualHosts ?? []).map((vhost) => renderVirtualHost(vhost, c.port)),
    '',
  ].join('\n');
}

function renderVirtualHost(vhost: VirtualHostSpec, port: number): string {
  for (const name of [vhost.serverName, ...(vhost.aliases ?? [])]) {
    if (!/^[A-Za-z0-9*.-]+$/.test(name)) throw new Error(`startApache: invalid virtual host name ${JSON.stringify(name)}`);
  }
  const aliases = vhost.aliases === undefined || vhost.aliases.length === 0 ? [] : [`  ServerAlias ${vhost.aliases.join(' ')}`];
  return [`<VirtualHost 127.0.0.1:${port}>`, `  ServerName ${vhost.serverName}`, ...aliases, vhost.config ?? '', `</VirtualHost>`].join('\n');
}

/** Parses the tab-separated lines written with LOG_FORMAT. */
export function parseAccessLog(text: string): AccessLogEntry[] {
  const entries: AccessLogEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const f = line.split('\t');
    if (f.length !== 8) throw new Error(`unparseable access log line: ${JSON.stringify(line)}`);
    entries.push({
      remoteAddr: f[0]!,
      method: f[1]!,
      requestLine: f[2]!,
      urlPath: f[3]!,
      status: Number(f[4]),
      filename: f[5]!,
      durationUs: Number(f[6]),
      vhost: f[7]!,
    });
  }
  return entries;
}

/** Polls until the port accepts a connection, the child exits, or the bound passes. */
async function waitForPort(
  port: number,
  child: ChildProcess,
  timeoutMs: number,
  spawnFailure: () => Error | undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const spawnError = spawnFailure();
    if (spawnError) throw new Error(`cannot run ${APACHE_BIN}: ${spawnError.message}`);
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`apache2 exited early (code ${child.exitCode}, signal ${child.signalCode})`);
    }
    if (await canConnect(port)) return;
    if (Date.now() > deadline) throw new Error(`port ${port} not accepting connections after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function terminate(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  // SIGTERM makes the Apache parent stop its workers and exit.
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((r) => {
      timer = setTimeout(() => r(true), STOP_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timer);
  if (timedOut) {
    child.kill('SIGKILL');
    await exited;
  }
}
