/**
 * Network namespaces for system tests: a server namespace and a client
 * namespace joined by a veth pair, with documentation addresses only, so
 * firewall backends can be exercised for real without touching the host's
 * firewall. Every nft/ipset/iptables command a test runs goes through
 * `network.runner(ns)`, which only accepts the two namespaces created here.
 *
 * Usage:
 *   const gate = await systemTestGate({ tools: ['nft'] });
 *   describe.skipIf(gate.skip)('...', () => {
 *     let network: TestNetwork;
 *     beforeAll(async () => { network = await createTestNetwork(); });
 *     afterAll(async () => { await network?.destroy(); });
 *   });
 *
 * Topology (server side 192.0.2.1/24 and 2001:db8:1::1/64):
 *
 *   [server ns] pcsXXXXXX <—veth—> pccXXXXXX [client ns]
 *                                  198.51.100.10–12/32, 203.0.113.10/32,
 *                                  2001:db8:2::10–11/128, 2001:db8:3::10/128
 *
 * Clients pick their source with `localAddress`. The servers and clients
 * here are tiny node scripts run with `ip netns exec NS node -e ...`: nothing
 * to install. Each child exits when its stdin closes, so none outlives the
 * test process, and destroy() kills whatever still runs in the namespaces.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { CommandRunner, runCommand } from '../../../src/firewall/command-runner.js';

export const SERVER_ADDRESS = '192.0.2.1';
export const SERVER_ADDRESS6 = '2001:db8:1::1';
export const DEFAULT_CLIENT_ADDRESSES = [
  '198.51.100.10',
  '198.51.100.11',
  '198.51.100.12',
  '203.0.113.10',
  '2001:db8:2::10',
  '2001:db8:2::11',
  '2001:db8:3::10',
] as const;

/** Every `ip` command of the harness is bounded by this. */
const IP_TIMEOUT_MS = 10_000;

export interface TestNetwork {
  readonly serverNs: string;
  readonly clientNs: string;
  /** 192.0.2.1 */
  readonly serverAddress: string;
  /** 2001:db8:1::1 */
  readonly serverAddress6: string;
  readonly clientAddresses: readonly string[];
  /** A CommandRunner bound to one of this network's namespaces (any other name throws). */
  runner(ns: string): CommandRunner;
  /** Starts a TCP echo server on `ports` (all addresses, both families) in the server namespace. */
  startServer(ports: readonly number[]): Promise<TestServer>;
  /** Opens a TCP connection from the client namespace; see `probeConnect`. */
  connect(options: ConnectOptions): Promise<ConnectResult>;
  /** Opens a long-lived connection from the client namespace; see `Session`. */
  openSession(options: ConnectOptions): Promise<Session>;
  /** Stops every process this network started and deletes both namespaces. Safe to call twice. */
  destroy(): Promise<void>;
}

export interface ConnectOptions {
  readonly host: string;
  readonly port: number;
  /** Source address, one of the client addresses. */
  readonly localAddress: string;
  /** Give up after this long. A banned source's SYN is dropped, so this is how long "blocked" takes to show. */
  readonly timeoutMs: number;
}

export type ConnectResult = 'connected' | 'timeout' | `error ${string}`;

export interface TestServer {
  stop(): Promise<void>;
}

/** An established connection that sends `N\n` and waits for `pong N`. */
export interface Session {
  /** 'connected', 'timeout' or 'error CODE' for the initial connect. */
  readonly opened: ConnectResult;
  /** Sends one ping; 'pong' if the answer came within `timeoutMs`, else 'timeout' (or 'closed'). */
  ping(timeoutMs: number): Promise<'pong' | 'timeout' | 'closed'>;
  close(): Promise<void>;
}

export interface CreateTestNetworkOptions {
  /** Addresses of the client namespace. @default DEFAULT_CLIENT_ADDRESSES */
  readonly clientAddresses?: readonly string[];
}

/**
 * Creates the two namespaces, the veth pair, addresses and routes. On any
 * failure half way, deletes what it created and rethrows.
 */
export async function createTestNetwork(options: CreateTestNetworkOptions = {}): Promise<TestNetwork> {
  const clientAddresses = options.clientAddresses ?? DEFAULT_CLIENT_ADDRESSES;
  for (const address of clientAddresses) {
    if (!/^(198\.51\.100\.|203\.0\.113\.|192\.0\.2\.|2001:db8:)/.test(address)) {
      throw new RangeError(`client address ${address} is not a documentation address (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32)`);
    }
  }
  const suffix = randomBytes(3).toString('hex');
  const serverNs = `pc-test-${suffix}-srv`;
  const clientNs = `pc-test-${suffix}-cli`;
  // Interface names hold at most 15 characters.
  const serverIf = `pcs${suffix}`;
  const clientIf = `pcc${suffix}`;
  const children = new Set<ChildProcess>();
  const created: string[] = [];
  let destroyed = false;

  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    for (const child of children) await stopChild(child);
    const problems: string[] = [];
    for (const ns of created) {
      // Anything still running in our namespace was started by this test.
      const pids = await runCommand('ip', ['netns', 'pids', ns], { timeoutMs: IP_TIMEOUT_MS }).catch(() => ({ stdout: '' }));
      for (const pid of pids.stdout.split('\n').filter((line) => /^[0-9]+$/.test(line))) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      await runCommand('ip', ['netns', 'delete', ns], { timeoutMs: IP_TIMEOUT_MS }).catch((error: unknown) => problems.push(`${ns}: ${(error as Error).message}`));
    }
    if (problems.length > 0) throw new Error(`could not delete test namespaces: ${problems.join('; ')}`);
  };

  const ip = (args: readonly string[]): Promise<unknown> => runCommand('ip', args, { timeoutMs: IP_TIMEOUT_MS });
  const inNs = (ns: string, file: string, args: readonly string[]): Promise<unknown> =>
    runCommand('ip', ['netns', 'exec', ns, file, ...args], { timeoutMs: IP_TIMEOUT_MS });

  try {
    for (const ns of [serverNs, clientNs]) {
      await ip(['netns', 'add', ns]);
      created.push(ns);
      // No duplicate address detection: addresses are usable at once, not after ~1 s.
      await inNs(ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.accept_dad=0']);
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    await ip(['-n', serverNs, 'link', 'add', serverIf, 'type', 'veth', 'peer', 'name', clientIf, 'netns', clientNs]);
    await ip(['-n', serverNs, 'addr', 'add', `${SERVER_ADDRESS}/24`, 'dev', serverIf]);
    await ip(['-n', serverNs, '-6', 'addr', 'add', `${SERVER_ADDRESS6}/64`, 'dev', serverIf, 'nodad']);
    for (const address of clientAddresses) {
      const v6 = address.includes(':');
      await ip(['-n', clientNs, ...(v6 ? ['-6'] : []), 'addr', 'add', `${address}/${v6 ? 128 : 32}`, 'dev', clientIf, ...(v6 ? ['nodad'] : [])]);
    }
    await ip(['-n', serverNs, 'link', 'set', serverIf, 'up']);
    await ip(['-n', clientNs, 'link', 'set', clientIf, 'up']);
    await ip(['-n', clientNs, 'route', 'add', '192.0.2.0/24', 'dev', clientIf]);
    await ip(['-n', clientNs, '-6', 'route', 'add', '2001:db8:1::/64', 'dev', clientIf]);
    for (const address of clientAddresses) {
      const v6 = address.includes(':');
      await ip(['-n', serverNs, ...(v6 ? ['-6'] : []), 'route', 'add', `${address}/${v6 ? 128 : 32}`, 'dev', serverIf]);
    }
  } catch (error) {
    await destroy().catch(() => {});
    throw error;
  }

  const ours = new Set([serverNs, clientNs]);
  const track = (child: ChildProcess): void => {
    children.add(child);
    child.once('exit', () => children.delete(child));
  };

  return {
    serverNs,
    clientNs,
    serverAddress: SERVER_ADDRESS,
    serverAddress6: SERVER_ADDRESS6,
    clientAddresses,
    runner(ns: string): CommandRunner {
      if (!ours.has(ns)) throw new Error(`namespace ${ns} was not created by this test network`);
      if (destroyed) throw new Error('the test network was destroyed');
      return new CommandRunner({ netns: ns });
    },
    async startServer(ports) {
      const child = spawnInNs(serverNs, ECHO_SERVER_SCRIPT, ports.map(String));
      track(child);
      try {
        await waitForLine(child, (line) => line === 'ready', 10_000, 'echo server ready');
      } catch (error) {
        await stopChild(child);
        throw error;
      }
      return { stop: () => stopChild(child) };
    },
    connect(connectOptions) {
      return probeConnect(clientNs, connectOptions);
    },
    async openSession(connectOptions) {
      const child = spawnInNs(clientNs, SESSION_SCRIPT, [connectOptions.host, String(connectOptions.port), connectOptions.localAddress, String(connectOptions.timeoutMs)]);
      track(child);
      const lines = lineReader(child);
      const opened = (await lines.next(connectOptions.timeoutMs + 10_000)) as ConnectResult | null;
      let sequence = 0;
      return {
        opened: opened ?? 'error NO_ANSWER',
        async ping(timeoutMs) {
          sequence += 1;
          if (child.exitCode !== null || child.stdin === null || child.stdin.destroyed) return 'closed';
          child.stdin.write(`${sequence} ${timeoutMs}\n`);
          // The script itself answers within timeoutMs; the margin covers a slow node start only.
          const line = await lines.next(timeoutMs + 10_000);
          if (line === `pong ${sequence}`) return 'pong';
          if (line === `timeout ${sequence}`) return 'timeout';
          return 'closed';
        },
        close: () => stopChild(child),
      };
    },
    destroy,
  };
}

/**
 * Connects from namespace `ns` to host:port from `localAddress`, giving up
 * after `timeoutMs`: 'connected', 'timeout' (a dropped SYN) or 'error CODE'
 * (e.g. `error ECONNREFUSED`). Bounded by `timeoutMs` plus 10 s for node to start.
 */
export async function probeConnect(ns: string, options: ConnectOptions): Promise<ConnectResult> {
  const { stdout } = await new CommandRunner({ netns: ns }).run(
    process.execPath,
    ['-e', PROBE_SCRIPT, options.host, String(options.port), options.localAddress, String(options.timeoutMs)],
    { timeoutMs: options.timeoutMs + 10_000 },
  );
  return stdout.trim() as ConnectResult;
}

/**
 * Why namespaces cannot be used here, or null when they can: not root, no
 * `ip`, or `ip netns add` refused (e.g. an unprivileged container).
 */
export async function canCreateNetns(): Promise<string | null> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'system tests need root (network namespaces, nftables, ipset)';
  if (!(await findOnPath('ip'))) return 'the ip command (iproute2) is not installed';
  const probe = `pc-test-probe-${randomBytes(3).toString('hex')}`;
  try {
    await runCommand('ip', ['netns', 'add', probe], { timeoutMs: IP_TIMEOUT_MS });
  } catch (error) {
    return `ip netns add failed: ${(error as Error).message}`;
  }
  await runCommand('ip', ['netns', 'delete', probe], { timeoutMs: IP_TIMEOUT_MS });
  return null;
}

/**
 * Decides whether a system test file runs. Skips (with a console.warn saying
 * why) when namespaces cannot be created or a tool is missing; but with
 * CI=true a skip is a failure: it throws instead.
 */
export async function systemTestGate(options: { tools?: readonly string[] } = {}): Promise<{ skip: boolean; reason: string }> {
  let reason = await canCreateNetns();
  for (const tool of options.tools ?? []) {
    if (reason !== null) break;
    if (!(await findOnPath(tool))) reason = `${tool} is not installed`;
  }
  if (reason === null) return { skip: false, reason: '' };
  if (process.env.CI === 'true') throw new Error(`system test cannot run in CI: ${reason}`);
  console.warn(`skipping system test: ${reason}`);
  return { skip: true, reason };
}

async function findOnPath(tool: string): Promise<boolean> {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    try {
      await access(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      // Not here.
    }
  }
  return false;
}

function spawnInNs(ns: string, script: string, args: readonly string[]): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin?.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
  await exited;
  clearTimeout(timer);
}

/** Reads a child's stdout line by line; `next` resolves null at exit or after `timeoutMs`. */
function lineReader(child: ChildProcess): { next(timeoutMs: number): Promise<string | null> } {
  const lines: string[] = [];
  const waiters: Array<(line: string | null) => void> = [];
  let buffer = '';
  let ended = false;
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      const waiter = waiters.shift();
      if (waiter) waiter(line);
      else lines.push(line);
    }
  });
  child.stderr?.resume();
  child.once('exit', () => {
    ended = true;
    for (const waiter of waiters.splice(0)) waiter(null);
  });
  return {
    next(timeoutMs) {
      const line = lines.shift();
      if (line !== undefined) return Promise.resolve(line);
      if (ended) return Promise.resolve(null);
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          const index = waiters.indexOf(done);
          if (index !== -1) waiters.splice(index, 1);
          resolve(null);
        }, timeoutMs);
        const done = (value: string | null): void => {
          clearTimeout(timer);
          resolve(value);
        };
        waiters.push(done);
      });
    },
  };
}

async function waitForLine(child: ChildProcess, test: (line: string) => boolean, timeoutMs: number, what: string): Promise<void> {
  const lines = lineReader(child);
  const deadline = Date.now() + timeoutMs;
  for (let left = timeoutMs; left > 0; left = deadline - Date.now()) {
    const line = await lines.next(left);
    if (line === null) break;
    if (test(line)) return;
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** `node -e ECHO_SERVER_SCRIPT PORT...`: answers each line N with `pong N`; prints `ready` once listening; exits when stdin closes. */
const ECHO_SERVER_SCRIPT = `
const net = require('node:net');
const ports = process.argv.slice(1).map(Number);
let listening = 0;
for (const port of ports) {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => {});
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf('\\n')) !== -1) {
        socket.write('pong ' + buffer.slice(0, newline) + '\\n');
        buffer = buffer.slice(newline + 1);
      }
    });
  });
  server.listen({ port, host: '::', ipv6Only: false }, () => {
    if (++listening === ports.length) console.log('ready');
  });
}
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
`;

/** `node -e PROBE_SCRIPT HOST PORT LOCAL TIMEOUT_MS`: prints connected, timeout or error CODE. */
const PROBE_SCRIPT = `
const net = require('node:net');
const [host, port, localAddress, timeoutMs] = process.argv.slice(1);
const socket = net.connect({ host, port: Number(port), localAddress });
const timer = setTimeout(() => { console.log('timeout'); process.exit(0); }, Number(timeoutMs));
socket.on('connect', () => { clearTimeout(timer); console.log('connected'); socket.destroy(); process.exit(0); });
socket.on('error', (error) => { clearTimeout(timer); console.log('error ' + (error.code || error.message)); process.exit(0); });
`;

/**
 * \`node -e SESSION_SCRIPT HOST PORT LOCAL TIMEOUT_MS\`: connects (prints
 * connected / timeout / error CODE), then for each stdin line "N T" sends N
 * and prints "pong N" when the answer comes within T ms, else "timeout N".
 */
const SESSION_SCRIPT = `
const net = require('node:net');
const readline = require('node:readline');
const [host, port, localAddress, timeoutMs] = process.argv.slice(1);
const socket = net.connect({ host, port: Number(port), localAddress });
socket.setNoDelay(true);
const timer = setTimeout(() => { console.log('timeout'); process.exit(0); }, Number(timeoutMs));
const waiting = new Map();
let buffer = '';
socket.on('data', (chunk) => {
  buffer += chunk;
  let newline;
  while ((newline = buffer.indexOf('\\n')) !== -1) {
    const line = buffer.slice(0, newline);
    buffer = buffer.slice(newline + 1);
    const n = line.split(' ')[1];
    const pending = waiting.get(n);
    if (pending) { clearTimeout(pending); waiting.delete(n); console.log('pong ' + n); }
  }
});
socket.on('error', (error) => { console.log('error ' + (error.code || error.message)); process.exit(0); });
socket.on('connect', () => {
  clearTimeout(timer);
  console.log('connected');
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    const [n, t] = line.split(' ');
    waiting.set(n, setTimeout(() => { waiting.delete(n); console.log('timeout ' + n); }, Number(t)));
    socket.write(n + '\\n');
  }).on('close', () => process.exit(0));
});
`;
