import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemTestGate } from '../system/support/netns.js';
import { createProbeNamespace, runAs, runProbe, type RunAs } from './support/capability-probe.js';

const run = promisify(execFile);
const DOCKERFILE = join(import.meta.dirname, '../../Dockerfile');

/**
 * Docker's default capability set for a container (moby, oci/caps/defaults.go):
 * the bounding set of every process in it unless --cap-add/--cap-drop change it.
 * A non-root user gets none of them as permitted or ambient capabilities.
 */
const DOCKER_DEFAULT_CAPS = ['chown', 'dac_override', 'fowner', 'fsetid', 'kill', 'setgid', 'setuid', 'setpcap', 'net_bind_service', 'net_raw', 'sys_chroot', 'mknod', 'audit_write', 'setfcap'];
/** The node user of the official Node images. */
const IMAGE_UID = 1000;
/** Where the image's binaries are, and the ones on this machine that stand in for them. */
const STAND_INS: Readonly<Record<string, string>> = {
  '/usr/local/bin/node': process.execPath,
  '/usr/sbin/nft': '/usr/sbin/nft',
  '/usr/sbin/conntrack': '/usr/sbin/conntrack',
};

const gate = await systemTestGate({ tools: ['setcap', 'setpriv', 'nft', 'conntrack'] });

/**
 * What the image's `setcap` lines do, checked on this kernel without a
 * Docker engine: they are read from the Dockerfile and applied to copies of
 * the same binaries, which then run as the image's non-root user with
 * Docker's bounding set (with and without --cap-add NET_ADMIN) in a network
 * namespace of their own, as a container's processes do. Needs root (setcap,
 * namespaces), like the system tests.
 */
describe.skipIf(gate.skip)("the image's file capabilities under Docker's capability rules", () => {
  let dir: string;
  let ns: string;
  let namespace: { readonly name: string; close(): Promise<void> } | undefined;
  /** Image path → the capped copy. */
  const copies = new Map<string, string>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portcullis-caps-'));
    await chmod(dir, 0o755);
    const instructions = (await readFile(DOCKERFILE, 'utf8')).split('\n').filter((line) => !line.trim().startsWith('#')).join('\n');
    const grants = [...instructions.matchAll(/setcap (\S+) (\S+)/g)].map((m) => ({ caps: m[1] as string, path: m[2] as string }));
    expect(grants.map((grant) => grant.path).sort()).toEqual(Object.keys(STAND_INS).sort());
    for (const { caps, path } of grants) {
      const copy = join(dir, basename(path));
      await copyFile(STAND_INS[path] as string, copy);
      await chmod(copy, 0o755);
      await run('setcap', [caps, copy]);
      copies.set(path, copy);
    }
    namespace = await createProbeNamespace();
    ns = namespace.name;
  });

  afterAll(async () => {
    await namespace?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const container = (capAdd: readonly string[]): RunAs => ({ uid: IMAGE_UID, gid: IMAGE_UID, bounding: [...DOCKER_DEFAULT_CAPS, ...capAdd] });
  const probe = (capAdd: readonly string[], node = copies.get('/usr/local/bin/node') as string) =>
    runProbe(ns, container(capAdd), { node, nft: copies.get('/usr/sbin/nft') as string, conntrack: copies.get('/usr/sbin/conntrack') as string });

  it('without --cap-add NET_ADMIN: node binds port 80, nft and conntrack cannot run (EPERM), node keeps running', async () => {
    const result = await probe([]);
    expect(result.bind).toBe('ok');
    expect(result.addTable).toMatch(/^error EPERM/);
    expect(result.conntrack).toMatch(/^error EPERM/);
  });

  it('with --cap-add NET_ADMIN: the nft and conntrack node runs as children work', async () => {
    const result = await probe(['net_admin']);
    expect(result.bind).toBe('ok');
    expect(result.addTable).toBe('');
    expect(result.tables).toContain('table inet portcullis_caps_test');
    expect(result.conntrack).not.toMatch(/^error/);
  });

  it('the same node without the file capability cannot bind port 80 (so the grant is what does it)', async () => {
    expect((await probe(['net_admin'], process.execPath)).bind).toBe('EACCES');
  });

  it('node with cap_net_admin as well would not even start without --cap-add NET_ADMIN: why the image does not give it', async () => {
    const both = join(dir, 'node-with-both');
    await copyFile(process.execPath, both);
    await chmod(both, 0o755);
    await run('setcap', ['cap_net_admin,cap_net_bind_service=ep', both]);
    const result = await runAs(ns, container([]), [both, '-e', 'console.log("started")']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('Operation not permitted');
    expect((await runAs(ns, container(['net_admin']), [both, '-e', 'console.log("started")'])).stdout).toBe('started\n');
  });
});
