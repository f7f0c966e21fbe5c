/**
 * The behaviour every kernel ban backend must show, checked with real
 * packets between two network namespaces (see netns.ts). Each backend's test
 * file calls `describeBanBackend` once and adds what is special to it.
 *
 * Timing: a banned source's SYN is dropped, so "blocked" shows as a connect
 * that has not completed after BLOCKED_MS; nothing can make a blocked connect
 * succeed early, so a busy machine cannot turn that into a false pass or a
 * false failure. "Allowed" connects get ALLOWED_MS, several SYN retransmits'
 * worth. Every wait is bounded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BanBackend, BanBackendOptions, KernelBan } from '../../../src/firewall/ban-backend.js';
import type { CommandRunner } from '../../../src/firewall/command-runner.js';
import { FirewallCommandError } from '../../../src/core/errors.js';
import { createTestNetwork, systemTestGate, type ConnectResult, type TestNetwork, type TestServer } from './netns.js';

export const BANNED_PORTS = [8080, 8443] as const;
/** Served too, never banned. */
export const OTHER_PORT = 9090;
const BLOCKED_MS = 1_500;
const ALLOWED_MS = 8_000;

export interface BackendSuiteOptions {
  readonly name: string;
  /** Tools the backend runs, for the skip gate. */
  readonly tools: readonly string[];
  readonly create: (options: BanBackendOptions, runner: CommandRunner) => BanBackend;
  /** Whether bans expire in the kernel by themselves (not iptables). */
  readonly kernelTimeouts: boolean;
  /**
   * A description of the backend's hooks/rules (not its bans), compared
   * before and after a second init(); `expected` is what it must be.
   */
  readonly structure: (runner: CommandRunner) => Promise<unknown>;
  readonly expectedStructure: unknown;
  /**
   * Turns connection tracking on in the server namespace (a kernel tracks a
   * namespace's connections only once some rule there uses conntrack) with a
   * rule accepting established flows, as a stateful host firewall would.
   */
  readonly trackConnections: (runner: CommandRunner) => Promise<void>;
}

/** Addresses of the client namespace (see netns.ts). */
export const CLIENT = {
  a: '198.51.100.10',
  b: '198.51.100.11',
  c: '198.51.100.12',
  other: '203.0.113.10',
  a6: '2001:db8:2::10',
  b6: '2001:db8:2::11',
  c6: '2001:db8:3::10',
} as const;

export function ipBan(target: string, timeoutSec = 600): KernelBan {
  return { target, family: target.includes(':') ? 6 : 4, scope: 'ip', timeoutSec };
}

export function prefixBan(target: string, timeoutSec = 600): KernelBan {
  return { target, family: target.includes(':') ? 6 : 4, scope: 'prefix', timeoutSec };
}

/** Shared state for a backend's own extra tests. */
export interface SuiteContext {
  readonly network: TestNetwork;
  readonly backend: BanBackend;
  readonly serverRunner: CommandRunner;
  connect(localAddress: string, options?: { port?: number; timeoutMs?: number }): Promise<ConnectResult>;
}

export async function describeBanBackend(options: BackendSuiteOptions, extra?: (context: () => SuiteContext) => void): Promise<void> {
  const gate = await systemTestGate({ tools: options.tools });
  const ports = [...BANNED_PORTS];

  describe.skipIf(gate.skip)(`${options.name} backend in a network namespace`, () => {
    let network: TestNetwork | undefined;
    let server: TestServer | undefined;
    let backend: BanBackend;
    let serverRunner: CommandRunner;

    const connect = (localAddress: string, { port = BANNED_PORTS[0] as number, timeoutMs = ALLOWED_MS } = {}): Promise<ConnectResult> => {
      const net = network as TestNetwork;
      return net.connect({ host: localAddress.includes(':') ? net.serverAddress6 : net.serverAddress, port, localAddress, timeoutMs });
    };
    const expectBlocked = async (localAddress: string, port: number = BANNED_PORTS[0]): Promise<void> => {
      expect(await connect(localAddress, { port, timeoutMs: BLOCKED_MS }), `${localAddress} → :${port} should be dropped`).toBe('timeout');
    };
    const expectAllowed = async (localAddress: string, port: number = BANNED_PORTS[0]): Promise<void> => {
      expect(await connect(localAddress, { port }), `${localAddress} → :${port} should connect`).toBe('connected');
    };
    const sorted = async (): Promise<string[]> => (await backend.list()).sort();

    beforeAll(async () => {
      network = await createTestNetwork();
      serverRunner = network.runner(network.serverNs);
      server = await network.startServer([...BANNED_PORTS, OTHER_PORT]);
      await options.trackConnections(serverRunner);
      backend = options.create({ ports, maxBans: 64 }, serverRunner);
      // Every test may run alone (-t): the first one checks that init() is idempotent on top of this.
      await backend.init();
      // Both families reachable before any firewall exists (neighbour discovery done).
      for (const address of [CLIENT.a, CLIENT.a6]) await expectAllowed(address);
    });

    afterAll(async () => {
      await server?.stop();
      await network?.destroy();
    });

    it('init() twice leaves one set of hooks and no bans', async () => {
      await backend.init();
      const first = await options.structure(serverRunner);
      await backend.init();
      expect(await options.structure(serverRunner)).toEqual(first);
      expect(first).toEqual(options.expectedStructure);
      expect(await backend.list()).toEqual([]);
    });

    it('a banned address cannot connect to a listed port; other clients and other ports are unaffected', async () => {
      await backend.replaceAll([]);
      backend.add(ipBan(CLIENT.a));
      await backend.commit();
      expect(await sorted()).toEqual([CLIENT.a]);
      await expectBlocked(CLIENT.a, BANNED_PORTS[0]);
      await expectBlocked(CLIENT.a, BANNED_PORTS[1]);
      await expectAllowed(CLIENT.b);
      await expectAllowed(CLIENT.other);
      await expectAllowed(CLIENT.a, OTHER_PORT);
    });

    it('an established connection from a banned address stops getting answers (every packet dropped)', async () => {
      await backend.replaceAll([]);
      const net = network as TestNetwork;
      const banned = await net.openSession({ host: net.serverAddress, port: BANNED_PORTS[0], localAddress: CLIENT.b, timeoutMs: ALLOWED_MS });
      const control = await net.openSession({ host: net.serverAddress, port: BANNED_PORTS[0], localAddress: CLIENT.c, timeoutMs: ALLOWED_MS });
      try {
        expect([banned.opened, control.opened]).toEqual(['connected', 'connected']);
        expect(await banned.ping(ALLOWED_MS)).toBe('pong');
        expect(await control.ping(ALLOWED_MS)).toBe('pong');
        backend.add(ipBan(CLIENT.b));
        await backend.commit();
        // The ping leaves after the commit returned: the kernel drops it, and every retransmission.
        expect(await banned.ping(2_000)).toBe('timeout');
        expect(await control.ping(ALLOWED_MS)).toBe('pong');
        // forgetConnections clears conntrack for the source (the drop itself does not need it).
        const tracked = async (): Promise<string> => (await serverRunner.run('conntrack', ['-L', '-s', CLIENT.b])).stdout;
        expect(await tracked()).toContain(`src=${CLIENT.b}`);
        await backend.forgetConnections([ipBan(CLIENT.b)]);
        expect(await tracked()).not.toContain(`src=${CLIENT.b}`);
        // Prefixes of both families in one batch, with nothing left to delete.
        await backend.forgetConnections([prefixBan('198.51.100.0/24'), prefixBan('2001:db8:2::/64')]);
      } finally {
        await banned.close();
        await control.close();
      }
    });

    it('a prefix ban blocks every address of the prefix, and no other', async () => {
      await backend.replaceAll([]);
      backend.add(prefixBan('198.51.100.0/24'));
      await backend.commit();
      expect(await sorted()).toEqual(['198.51.100.0/24']);
      await expectBlocked(CLIENT.c);
      await expectAllowed(CLIENT.other);
      await expectAllowed(CLIENT.a6);
    });

    it('bans IPv6 addresses and prefixes', async () => {
      await backend.replaceAll([]);
      backend.add(ipBan(CLIENT.a6));
      backend.add(prefixBan('2001:db8:3::/64'));
      await backend.commit();
      expect(await sorted()).toEqual([CLIENT.a6, '2001:db8:3::/64'].sort());
      await expectBlocked(CLIENT.a6);
      await expectBlocked(CLIENT.c6);
      await expectAllowed(CLIENT.b6);
      await expectAllowed(CLIENT.a);
    });

    it('remove() lifts a ban; lifting targets that are not banned does not fail the batch', async () => {
      await backend.replaceAll([]);
      backend.add(ipBan(CLIENT.a));
      backend.add(prefixBan('203.0.113.0/24'));
      await backend.commit();
      await expectBlocked(CLIENT.a);
      backend.remove(CLIENT.a);
      backend.remove('203.0.113.0/24');
      backend.remove('198.51.100.99');
      backend.remove('2001:db8:9::/64');
      backend.add(ipBan(CLIENT.b));
      await backend.commit();
      expect(await sorted()).toEqual([CLIENT.b]);
      await expectAllowed(CLIENT.a);
      await expectAllowed(CLIENT.other);
    });

    // Not registered at all for a backend without kernel timeouts (a skip would count as one in CI).
    if (options.kernelTimeouts) it('a ban expires in the kernel by itself; lifting it afterwards does not fail the batch', async () => {
      await backend.replaceAll([]);
      const started = Date.now();
      backend.add(ipBan(CLIENT.b, 4));
      backend.add(prefixBan('2001:db8:3::/64', 4));
      await backend.commit();
      const early = await connect(CLIENT.b, { timeoutMs: 1_000 });
      // Only meaningful while the 4 s ban surely ran: true on any machine that is not stalled for seconds.
      if (Date.now() - started < 3_500) expect(early).toBe('timeout');
      // Bounded wait for the expiry: at most ~8 attempts of ≤ 3 s.
      let result: ConnectResult = 'timeout';
      for (let attempt = 0; attempt < 8 && result !== 'connected'; attempt++) {
        result = await connect(CLIENT.b, { timeoutMs: 3_000 });
      }
      expect(result).toBe('connected');
      expect(await connect(CLIENT.c6)).toBe('connected');
      expect(await backend.list()).toEqual([]);
      // What portcullis does when its own clock says the ban is over: the
      // element is gone already (maybe not yet garbage-collected).
      backend.remove(CLIENT.b);
      backend.remove('2001:db8:3::/64');
      backend.add(ipBan(CLIENT.c));
      await backend.commit();
      expect(await backend.list()).toEqual([CLIENT.c]);
    });

    it('add() of a banned target replaces its timeout', async () => {
      await backend.replaceAll([]);
      backend.add(ipBan(CLIENT.a, 3));
      await backend.commit();
      backend.add(ipBan(CLIENT.a, 600));
      await backend.commit();
      if (options.kernelTimeouts) {
        // Well past the first timeout: still banned.
        await new Promise((resolve) => setTimeout(resolve, 4_500));
      }
      expect(await backend.list()).toEqual([CLIENT.a]);
      await expectBlocked(CLIENT.a);
    });

    it('replaceAll() leaves exactly the given bans (strays removed)', async () => {
      await backend.replaceAll([]);
      backend.add(ipBan(CLIENT.a));
      backend.add(prefixBan('2001:db8:3::/64'));
      await backend.commit();
      const bans: KernelBan[] = [];
      for (let i = 1; i <= 20; i++) bans.push(ipBan(`198.51.100.${100 + i}`));
      for (let i = 1; i <= 5; i++) bans.push(ipBan(`2001:db8:5::${i.toString(16)}`));
      bans.push(prefixBan('203.0.113.0/24'), prefixBan('2001:db8:2::/64'), ipBan(CLIENT.b));
      await backend.replaceAll(bans);
      expect(await sorted()).toEqual(bans.map((ban) => ban.target).sort());
      await expectAllowed(CLIENT.a);
      await expectBlocked(CLIENT.b);
      await expectBlocked(CLIENT.other);
      await expectBlocked(CLIENT.a6);
      await expectAllowed(CLIENT.c6);
    });

    it('a restarted portcullis keeps the bans: init() does not lose them', async () => {
      await backend.replaceAll([ipBan(CLIENT.a), prefixBan('2001:db8:2::/64')]);
      const restarted = options.create({ ports: [...BANNED_PORTS, 8888], maxBans: 64 }, serverRunner);
      await restarted.init();
      expect((await restarted.list()).sort()).toEqual([CLIENT.a, '2001:db8:2::/64'].sort());
      await expectBlocked(CLIENT.a);
      await expectBlocked(CLIENT.b6);
      // Back to the suite's ports.
      await backend.init();
    });

    it('a full set is an error on commit; lifts still work on a full set; replaceAll beyond the cap changes nothing', async () => {
      await backend.replaceAll([ipBan(CLIENT.a), ipBan(CLIENT.b)]);
      // A restart with a smaller cap keeps what fits.
      const small = options.create({ ports, maxBans: 4 }, serverRunner);
      await small.init();
      expect((await small.list()).sort()).toEqual([CLIENT.a, CLIENT.b]);
      small.add(ipBan('198.51.100.201'));
      small.add(ipBan('198.51.100.202'));
      await small.commit();
      const full = [CLIENT.a, CLIENT.b, '198.51.100.201', '198.51.100.202'].sort();
      expect((await small.list()).sort()).toEqual(full);

      small.add(ipBan('198.51.100.203'));
      const error = await small.commit().then(
        () => null,
        (reason: unknown) => reason,
      );
      expect(error).toBeInstanceOf(FirewallCommandError);
      expect((await small.list()).sort()).toEqual(full);

      // A lift of a present and of an absent target, and a ban, on a full set.
      small.remove(CLIENT.a);
      small.remove('198.51.100.99');
      small.add(ipBan('198.51.100.204'));
      await small.commit();
      const after = [CLIENT.b, '198.51.100.201', '198.51.100.202', '198.51.100.204'].sort();
      expect((await small.list()).sort()).toEqual(after);

      const five = ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4', '198.51.100.5'].map((target) => ipBan(target));
      await expect(small.replaceAll(five)).rejects.toBeInstanceOf(FirewallCommandError);
      expect((await small.list()).sort()).toEqual(after);

      // The suite's cap again; the bans survive the change.
      await backend.init();
      expect((await backend.list()).sort()).toEqual(after);
      await backend.replaceAll([]);
    });

    // Issue 9: a manual wide ban while a narrower one inside it is in force (an
    // escalated /24 and a manual /16). The test network holds documentation
    // addresses only, so the pair is a /30 inside a /24 (IPv4) and a /64
    // inside a /32 (IPv6): CLIENT.a sits in both, CLIENT.c in the outer one only.
    it('nested prefixes: the inner banned, then the outer; both drop; lifting either leaves the other in force', async () => {
      const inner = [prefixBan('198.51.100.8/30'), prefixBan('2001:db8:2::/64')];
      const outer = [prefixBan('198.51.100.0/24'), prefixBan('2001:db8::/32')];
      const targets = (bans: readonly KernelBan[]): string[] => bans.map((ban) => ban.target);
      await backend.replaceAll([]);
      for (const ban of inner) backend.add(ban);
      await backend.commit();
      await expectAllowed(CLIENT.c);
      for (const ban of outer) backend.add(ban);
      await backend.commit();
      expect(await sorted()).toEqual(targets([...inner, ...outer]).sort());
      for (const address of [CLIENT.a, CLIENT.c, CLIENT.a6, CLIENT.c6]) await expectBlocked(address);

      // Lifting the outer one leaves the inner one in force.
      for (const ban of outer) backend.remove(ban.target);
      await backend.commit();
      expect(await sorted()).toEqual(targets(inner).sort());
      await expectBlocked(CLIENT.a);
      await expectBlocked(CLIENT.a6);
      await expectAllowed(CLIENT.c);
      await expectAllowed(CLIENT.c6);

      // The outer one again, then the inner one lifted: the outer one still drops both.
      for (const ban of outer) backend.add(ban);
      await backend.commit();
      for (const ban of inner) backend.remove(ban.target);
      await backend.commit();
      expect(await sorted()).toEqual(targets(outer).sort());
      for (const address of [CLIENT.a, CLIENT.c, CLIENT.a6, CLIENT.c6]) await expectBlocked(address);

      // The inner one banned while the outer one is in force, and both at once from replaceAll().
      for (const ban of inner) backend.add(ban);
      await backend.commit();
      expect(await sorted()).toEqual(targets([...inner, ...outer]).sort());
      await backend.replaceAll([...outer, ...inner]);
      expect(await sorted()).toEqual(targets([...inner, ...outer]).sort());
      for (const ban of outer) backend.remove(ban.target);
      await backend.commit();
      await expectBlocked(CLIENT.a);
      await expectAllowed(CLIENT.c);
      await backend.replaceAll([]);
    });

    // Issue 9: a refused element must not take the rest of its batch with it.
    // The refusal is the realistic one every backend has: a full set (the
    // kernel's for nftables and ipset, the backend's own cap for iptables).
    it('a batch with one element the kernel refuses (a full set) still applies the others, and commit() names the refused one', async () => {
      await backend.replaceAll([]);
      const small = options.create({ ports, maxBans: 2 }, serverRunner);
      await small.init();
      small.add(ipBan(CLIENT.a));
      small.add(ipBan(CLIENT.b));
      await small.commit();
      // Queued first, so it is the first line of the batch (ipset restore stops there).
      small.add(ipBan(CLIENT.c));
      small.add(ipBan(CLIENT.a6));
      small.add(prefixBan('203.0.113.0/24'));
      small.add(prefixBan('2001:db8:3::/64'));
      const error = await small.commit().then(
        () => null,
        (reason: unknown) => reason,
      );
      expect((await small.list()).sort()).toEqual([CLIENT.a, CLIENT.b, CLIENT.a6, '203.0.113.0/24', '2001:db8:3::/64'].sort());
      expect(error).toBeInstanceOf(FirewallCommandError);
      expect((error as Error).message).toContain(CLIENT.c);
      expect((error as { refused?: Array<{ target: string }> }).refused?.map((refusal) => refusal.target)).toEqual([CLIENT.c]);
      await expectBlocked(CLIENT.a6);
      await expectBlocked(CLIENT.other);
      await expectBlocked(CLIENT.c6);
      await expectAllowed(CLIENT.c);

      // The suite's cap again.
      await backend.init();
      await backend.replaceAll([]);
    });

    extra?.(() => ({ network: network as TestNetwork, backend, serverRunner, connect }));
  });
}
