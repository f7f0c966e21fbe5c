import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/config/policy-loader.js';
import { SERVE_HELP } from '../../src/cli/serve-command.js';
import { systemTestGate } from '../system/support/netns.js';
import { createProbeNamespace, runProbe, type RunAs } from './support/capability-probe.js';

const run = promisify(execFile);
const UNIT_FILE = join(import.meta.dirname, '../../deploy/portcullis.service');
const README = join(import.meta.dirname, '../../README.md');
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
/** The unit runs the system's Node; the test points it at the Node running the test, which exists here. */
const UNIT_NODE = '/usr/bin/node';
/** `systemd-analyze security` rates exposure 0.0 (locked down) to 10.0 (unprotected); the unit scores 1.7. */
const MAX_EXPOSURE = 2.0;

/** `[Service]`-style directives of a unit file: key → every value given, in order. */
function directives(text: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('[')) continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    found.set(key, [...(found.get(key) ?? []), line.slice(eq + 1)]);
  }
  return found;
}

/**
 * deploy/portcullis.service checked by the real systemd tools: `verify`
 * (syntax, known keys, an executable ExecStart) and the `security` score,
 * plus the directives issue 15 asks for, so a loosened unit fails here.
 */
describe('deploy/portcullis.service', () => {
  let text: string;
  let unit: Map<string, string[]>;
  let dir: string;
  let testUnit: string;

  beforeAll(async () => {
    text = await readFile(UNIT_FILE, 'utf8');
    unit = directives(text);
    dir = await mkdtemp(join(tmpdir(), 'portcullis-unit-'));
    testUnit = join(dir, 'portcullis.service');
    // verify wants ExecStart's binary to exist: the one difference from the shipped file.
    expect(text).toContain(`ExecStart=${UNIT_NODE} `);
    await writeFile(testUnit, text.replaceAll(`${UNIT_NODE} `, `${process.execPath} `));
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('passes systemd-analyze verify without a warning', async () => {
    const { stdout, stderr } = await run(SYSTEMD_ANALYZE, ['verify', testUnit]);
    // Unknown keys and bad values are only warnings (exit 0): any output is a failure.
    expect(stderr).toBe('');
    expect(stdout).toBe('');
  });

  it(`scores at most ${MAX_EXPOSURE} in systemd-analyze security, the score the README quotes`, async () => {
    const { stdout } = await run(SYSTEMD_ANALYZE, ['security', '--offline=true', '--no-pager', testUnit]);
    const score = Number(/Overall exposure level for portcullis\.service: (\d+\.\d)/.exec(stdout)?.[1]);
    expect(score, stdout).toBeLessThanOrEqual(MAX_EXPOSURE);
    const quoted = `\`systemd-analyze security\` rates it **${score.toFixed(1)}**`;
    expect((await readFile(README, 'utf8')).includes(quoted), `README says: ${quoted}`).toBe(true);
  });

  it('runs `portcullis serve --config` as its own user and reloads with SIGHUP', () => {
    expect(unit.get('User')).toEqual(['portcullis']);
    expect(unit.get('Group')).toEqual(['portcullis']);
    expect(unit.get('ExecStart')).toEqual(['/usr/bin/node /opt/portcullis/dist/cli/main.js serve --config /etc/portcullis/portcullis.yaml']);
    expect(SERVE_HELP).toContain('-c, --config FILE');
    expect(SERVE_HELP).toContain('SIGHUP');
    expect(unit.get('ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
    expect(unit.get('Restart')).toEqual(['on-failure']);
  });

  it('keeps exactly CAP_NET_ADMIN and CAP_NET_BIND_SERVICE, and no way to gain more', () => {
    expect(unit.get('AmbientCapabilities')).toEqual(['CAP_NET_ADMIN CAP_NET_BIND_SERVICE']);
    expect(unit.get('CapabilityBoundingSet')).toEqual(['CAP_NET_ADMIN CAP_NET_BIND_SERVICE']);
    expect(unit.get('NoNewPrivileges')).toEqual(['yes']);
  });

  it('writes only to its state and log directories; state_dir is the StateDirectory', () => {
    expect(unit.get('ProtectSystem')).toEqual(['strict']);
    expect(unit.get('ProtectHome')).toEqual(['yes']);
    expect(unit.get('PrivateTmp')).toEqual(['yes']);
    expect(unit.get('ReadWritePaths')).toBeUndefined();
    expect(unit.get('StateDirectory')).toEqual(['portcullis']);
    expect(unit.get('LogsDirectory')).toEqual(['portcullis']);
    expect(parsePolicy('', 'defaults.yaml').state_dir).toBe('/var/lib/portcullis');
  });

  it('allows inet, inet6, unix and netlink sockets and the @system-service calls only', () => {
    expect(unit.get('RestrictAddressFamilies')).toEqual(['AF_INET AF_INET6 AF_UNIX AF_NETLINK']);
    expect(unit.get('SystemCallFilter')?.[0]).toBe('@system-service');
    expect(unit.get('SystemCallFilter')?.slice(1).every((value) => value.startsWith('~'))).toBe(true);
  });
});

const gate = await systemTestGate({ tools: ['setpriv', 'nft', 'conntrack'] });

/**
 * What the unit's capability lines give the process and its children, on
 * this kernel: setpriv stands in for systemd (there is no running systemd
 * here) and applies the unit's AmbientCapabilities, CapabilityBoundingSet
 * and NoNewPrivileges to a node running as an unprivileged user in a network
 * namespace of its own. Needs root, like the system tests.
 */
describe.skipIf(gate.skip)('deploy/portcullis.service capabilities, applied with setpriv', () => {
  let namespace: { readonly name: string; close(): Promise<void> } | undefined;
  let unit: Map<string, string[]>;
  const binaries = { node: process.execPath, nft: '/usr/sbin/nft', conntrack: '/usr/sbin/conntrack' };
  /** setpriv's spelling of a unit's capability list: `CAP_NET_ADMIN` → `net_admin`. */
  const caps = (key: string): string[] => (unit.get(key)?.[0] ?? '').split(/\s+/).filter(Boolean).map((cap) => cap.replace(/^CAP_/, '').toLowerCase());
  /** nobody: an unprivileged user standing in for portcullis. */
  const asUnit = (ambient: readonly string[]): RunAs => ({ uid: 65534, gid: 65534, bounding: caps('CapabilityBoundingSet'), ambient, noNewPrivs: unit.get('NoNewPrivileges')?.[0] === 'yes' });

  beforeAll(async () => {
    unit = directives(await readFile(UNIT_FILE, 'utf8'));
    namespace = await createProbeNamespace();
  });

  afterAll(async () => {
    await namespace?.close();
  });

  it('lets portcullis bind port 80 and its nft and conntrack children work, with nothing more', async () => {
    const result = await runProbe((namespace as { name: string }).name, asUnit(caps('AmbientCapabilities')), binaries);
    expect(result.bind).toBe('ok');
    expect(result.addTable).toBe('');
    expect(result.tables).toContain('table inet portcullis_caps_test');
    expect(result.conntrack).not.toMatch(/^error/);
    // CAP_NET_BIND_SERVICE is bit 10, CAP_NET_ADMIN bit 12: 0x1400, in every set.
    for (const set of ['CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(result.status).toContain(`${set}:\t0000000000001400`);
    expect(result.status).toContain('NoNewPrivs:\t1');
  });

  it('without the ambient capabilities it cannot even bind port 80 (so they are what does it)', async () => {
    const result = await runProbe((namespace as { name: string }).name, asUnit([]), binaries);
    expect(result.bind).toBe('EACCES');
  });
});
