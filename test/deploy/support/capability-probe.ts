/**
 * Runs what portcullis does with its capabilities, as another user and
 * inside a network namespace of the test's own: bind port 80, then run nft
 * and conntrack as children (execFile, as src/firewall/command-runner.ts
 * does). Used to check the capabilities the systemd unit and the image grant
 * on this kernel, with setpriv standing in for systemd and Docker.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** What the probe saw: `ok` or the error code for the bind, a command's output or `error CODE stderr`. */
export interface ProbeResult {
  readonly bind: string;
  readonly addTable?: string;
  readonly tables?: string;
  readonly conntrack?: string;
  /** The Cap* and NoNewPrivs lines of the process's /proc/self/status. */
  readonly status?: string;
}

export interface RunAs {
  readonly uid: number;
  readonly gid: number;
  /** Capability names without CAP_, lower case (setpriv's spelling). */
  readonly bounding: readonly string[];
  readonly ambient?: readonly string[];
  readonly noNewPrivs?: boolean;
}

/** A network namespace with its loopback up; `close()` deletes it. */
export async function createProbeNamespace(): Promise<{ readonly name: string; close(): Promise<void> }> {
  const name = `pc-test-caps-${randomBytes(3).toString('hex')}`;
  await run('ip', ['netns', 'add', name]);
  try {
    await run('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
  } catch (error) {
    await run('ip', ['netns', 'delete', name]).catch(() => undefined);
    throw error;
  }
  return { name, close: () => run('ip', ['netns', 'delete', name]).then(() => undefined) };
}

/** Runs `command` in namespace `ns` as `as`; never throws. */
export async function runAs(ns: string, as: RunAs, command: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const set = (caps: readonly string[]) => ['-all', ...caps.map((cap) => `+${cap}`)].join(',');
  const ambient = as.ambient ?? [];
  const flags = [`--reuid=${as.uid}`, `--regid=${as.gid}`, '--clear-groups', `--inh-caps=${set(ambient)}`, `--ambient-caps=${set(ambient)}`, `--bounding-set=${set(as.bounding)}`, ...(as.noNewPrivs ? ['--no-new-privs'] : [])];
  try {
    const { stdout, stderr } = await run('ip', ['netns', 'exec', ns, 'setpriv', ...flags, ...command], { timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

/** The probe as a `node -e` script. */
export function probeScript(nft: string, conntrack: string): string {
  return `
    const { execFileSync } = require('node:child_process');
    const server = require('node:net').createServer();
    const tryRun = (file, args) => { try { return execFileSync(file, args, { stdio: 'pipe' }).toString(); } catch (e) { return 'error ' + (e.code ?? e.status) + ' ' + String(e.stderr ?? ''); } };
    const status = () => require('node:fs').readFileSync('/proc/self/status', 'utf8').split('\\n').filter((line) => /^(Cap|NoNewPrivs)/.test(line)).join('\\n');
    server.on('error', (e) => { console.log(JSON.stringify({ bind: e.code, status: status() })); process.exit(0); });
    server.listen(80, '0.0.0.0', () => {
      const result = {
        bind: 'ok',
        addTable: tryRun(${JSON.stringify(nft)}, ['add', 'table', 'inet', 'portcullis_caps_test']),
        tables: tryRun(${JSON.stringify(nft)}, ['list', 'tables']),
        conntrack: tryRun(${JSON.stringify(conntrack)}, ['-L']),
        status: status(),
      };
      server.close(() => console.log(JSON.stringify(result)));
    });`;
}

/** Runs the probe with `node` as `as` in `ns`; rejects when node itself did not run. */
export async function runProbe(ns: string, as: RunAs, binaries: { readonly node: string; readonly nft: string; readonly conntrack: string }): Promise<ProbeResult> {
  const result = await runAs(ns, as, [binaries.node, '-e', probeScript(binaries.nft, binaries.conntrack)]);
  if (result.code !== 0) throw new Error(`the probe did not run (exit ${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout) as ProbeResult;
}
