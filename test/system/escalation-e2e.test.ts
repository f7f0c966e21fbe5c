/**
 * The incident portcullis exists for, replayed for real: Apache and portcullis
 * in one network namespace, clients in another. A client flooding POST
 * /xmlrpc.php over keep-alive is banned; the kernel then drops its packets
 * while another client is served; a second address of the same /24 gets the
 * /24 banned, so a third cannot even connect; bans expire by themselves; and
 * a kill -9 loses none of them. Run for the nftables and ipset backends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandRunner } from '../../src/firewall/command-runner.js';
import { FLOOD_SCRIPT } from './support/flood-client.js';
import { createTestNetwork, probeConnect, systemTestGate, type TestNetwork } from './support/netns.js';

const ROOT = join(import.meta.dirname, '../..');
const PORT = 8000;
const BAN_SECONDS = 5;
const CLIENT = { a: '198.51.100.10', b: '198.51.100.11', c: '198.51.100.12', other: '203.0.113.10' } as const;

const gate = await systemTestGate({ tools: ['nft', 'ipset', 'iptables', 'apache2'] });

/** A process started in a namespace, with its stdout lines. */
interface NsProcess {
  readonly child: ChildProcess;
  readonly lines: string[];
  /** Resolves with the first stdout line matching `pattern` (bounded). */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

function startInNs(ns: string, args: string[], options: { stdin?: 'pipe' | 'ignore' } = {}): NsProcess {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', ...args], { cwd: ROOT, stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const waiter of waiters.filter((w) => w.pattern.test(line))) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(line);
    }
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return {
    child,
    lines,
    waitForLine(pattern, timeoutMs = 20_000) {
      const seen = lines.find((line) => pattern.test(line));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; stdout:\n${lines.join('\n')}\nstderr:\n${stderr}`)), timeoutMs);
        waiters.push({ pattern, resolve: (line) => (clearTimeout(timer), resolve(line)) });
      });
    },
  };
}

async function stop(proc: NsProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.child.once('exit', resolve));
  proc.child.kill(signal);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

for (const backend of ['nftables', 'ipset'] as const) {
  describe.skipIf(gate.skip)(`the xmlrpc.php flood, end to end, with the ${backend} backend`, () => {
    let network: TestNetwork;
    let apache: NsProcess;
    let portcullis: NsProcess | undefined;
    let dir: string;
    let policyFile: string;
    let client: CommandRunner;

    /** Runs the flood client script in the client namespace. */
    async function http(mode: 'flood' | 'get', from: string, path: string, max = 1): Promise<(number | string)[]> {
      const { stdout } = await client.run(process.execPath, ['-e', FLOOD_SCRIPT, mode, network.serverAddress, String(PORT), from, path, String(max), '15000'], { timeoutMs: 30_000 });
      return (JSON.parse(stdout) as { statuses: (number | string)[] }).statuses;
    }

    const connect = (from: string, timeoutMs: number) => probeConnect(network.clientNs, { host: network.serverAddress, port: PORT, localAddress: from, timeoutMs });

    /** Polls until `from` can connect again (bounded), returning how long it took. */
    async function waitUntilConnects(from: string, withinMs: number): Promise<number> {
      const started = Date.now();
      while (Date.now() - started < withinMs) {
        if ((await connect(from, 1_000)) === 'connected') return Date.now() - started;
      }
      throw new Error(`${from} still cannot connect after ${withinMs} ms`);
    }

    async function startPortcullis(): Promise<NsProcess> {
      const proc = startInNs(network.serverNs, ['src/cli/main.ts', 'serve', '--config', policyFile]);
      await proc.waitForLine(/"msg":"portcullis is listening"/);
      return proc;
    }

    beforeAll(async () => {
      network = await createTestNetwork();
      client = network.runner(network.clientNs);
      dir = await mkdtemp(join(tmpdir(), `portcullis-e2e-${backend}-`));
      apache = startInNs(network.serverNs, ['test/system/support/apache-in-netns.ts'], { stdin: 'pipe' });
      const { port: apachePort } = JSON.parse(await apache.waitForLine(/^\{"port"/)) as { port: number };
      policyFile = join(dir, 'policy.yaml');
      await writeFile(
        policyFile,
        [
          `listen: "0.0.0.0:${PORT}"`,
          `upstream: "http://127.0.0.1:${apachePort}"`,
          `state_dir: "${join(dir, 'state')}"`,
          'block:',
          '  - path: /xmlrpc.php',
          '    strikes: 5',
          `escalation: { strikes: 30, window: 60s, ban: ${BAN_SECONDS}s, factor: 2, prefix_after: 2, backend: ${backend}, ports: [${PORT}] }`,
          '',
        ].join('\n'),
      );
      portcullis = await startPortcullis();
    }, 60_000);

    afterAll(async () => {
      await stop(portcullis);
      apache?.child.stdin?.end();
      await stop(apache);
      await network?.destroy();
      await rm(dir, { recursive: true, force: true });
    }, 60_000);

    it('bans the flooder in the kernel while another client is served, then the /24 when a neighbour takes over', async () => {
      const flood = await http('flood', CLIENT.a, '/xmlrpc.php', 200);
      // The sixth blocked request (5 strikes each) earns the ban: its keep-alive connection is cut at once.
      expect(flood).toEqual([403, 403, 403, 403, 403, expect.stringMatching(/^error /)]);
      // The kernel now drops its packets: a new connection never completes.
      expect(await connect(CLIENT.a, 1_500)).toBe('timeout');
      expect(await http('get', CLIENT.other, '/index.html')).toEqual([200]);

      // A neighbour of the same /24 takes over, and gets the /24 banned.
      await http('flood', CLIENT.b, '/xmlrpc.php', 200);
      expect(await connect(CLIENT.c, 1_500)).toBe('timeout');
      expect(await http('get', CLIENT.other, '/index.html')).toEqual([200]);

      const banned = portcullis!.lines.filter((line) => line.includes('"msg":"banned"')).map((line) => JSON.parse(line) as { target: string; backend: string });
      expect(banned.map((line) => line.target)).toEqual([CLIENT.a, CLIENT.b, '198.51.100.0/24']);
      expect(banned.every((line) => line.backend === backend)).toBe(true);
    }, 120_000);

    it('lets bans expire in the kernel on time', async () => {
      // Ban length is 5 s; allow generous slack for a busy machine, but not a second ban length.
      const waited = await waitUntilConnects(CLIENT.c, 3 * BAN_SECONDS * 1_000);
      expect(waited).toBeLessThan(3 * BAN_SECONDS * 1_000);
      expect(await waitUntilConnects(CLIENT.a, 3 * BAN_SECONDS * 1_000)).toBeLessThan(3 * BAN_SECONDS * 1_000);
      expect(await http('get', CLIENT.a, '/index.html')).toEqual([200]);
    }, 120_000);

    // Restart behaviour is the engine's, not the backend's: once is enough.
    if (backend === 'nftables') it('loses no ban to kill -9: the kernel keeps dropping, the restart restores and still expires on time', async () => {
      // A second offence: twice the first ban.
      await http('flood', CLIENT.a, '/xmlrpc.php', 200);
      expect(await connect(CLIENT.a, 1_500)).toBe('timeout');
      await stop(portcullis, 'SIGKILL');
      expect(await connect(CLIENT.a, 1_500)).toBe('timeout');

      portcullis = await startPortcullis();
      await portcullis.waitForLine(/restored active bans from the state file/);
      const state = JSON.parse(await readFile(join(dir, 'state', 'bans.json'), 'utf8')) as { bans: { target: string; nth: number }[] };
      expect(state.bans.find((ban) => ban.target === CLIENT.a)?.nth).toBe(2);
      expect(await connect(CLIENT.a, 1_500)).toBe('timeout');
      expect(await http('get', CLIENT.other, '/index.html')).toEqual([200]);
      expect(await waitUntilConnects(CLIENT.a, 4 * BAN_SECONDS * 1_000)).toBeLessThan(4 * BAN_SECONDS * 1_000);
    }, 120_000);
  });
}
