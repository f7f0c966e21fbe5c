import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApache, type ApacheHandle } from '../support/apache.js';
import { request } from '../support/http-client.js';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '../..');
const SNIPPET = join(REPO, 'deploy/logrotate/portcullis');
const CLI = join(REPO, 'src/cli/main.ts');
const RELOAD = 'systemctl reload portcullis.service >/dev/null 2>&1 || true';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * deploy/logrotate/portcullis run by the real logrotate (-f, twice) on the
 * access log of a real `portcullis serve` process in front of a real Apache.
 * Two things are rewritten in a copy, as the test cannot use them: the log
 * directory (a temp dir) and the postrotate command (`systemctl reload`,
 * whose ExecReload is `kill -HUP $MAINPID`, becomes that kill).
 */
describe('deploy/logrotate/portcullis', () => {
  let dir: string;
  let apache: ApacheHandle;
  let child: ChildProcess;
  let proxyUrl: string;
  let config: string;
  let stderr = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portcullis-logrotate-'));
    apache = await startApache();
    const [port, adminPort] = [await freePort(), await freePort()];
    proxyUrl = `http://127.0.0.1:${port}`;
    const policy = join(dir, 'policy.yaml');
    await writeFile(policy, `listen: "127.0.0.1:${port}"\nupstream: "${apache.url}"\nstate_dir: "${join(dir, 'state')}"\naccess_log: "${join(dir, 'logs', 'access.log')}"\nadmin:\n  listen: "127.0.0.1:${adminPort}"\n`);
    await run('mkdir', ['-m', '0755', join(dir, 'logs')]);
    child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '--config', policy], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    for (let attempt = 0; ; attempt++) {
      const up = await request(proxyUrl, { path: '/index.html?warmup' }).then(() => true, () => false);
      if (up) break;
      if (attempt > 200 || child.exitCode !== null) throw new Error(`portcullis serve did not start:\n${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const snippet = await readFile(SNIPPET, 'utf8');
    expect(snippet).toContain('/var/log/portcullis/*.log {');
    expect(snippet).toContain(RELOAD);
    config = join(dir, 'logrotate.conf');
    // logrotate refuses a config file others may write: mode 0644 like /etc/logrotate.d/*.
    await writeFile(config, snippet.replace('/var/log/portcullis/', `${join(dir, 'logs')}/`).replace(RELOAD, `kill -HUP ${child.pid}`), { mode: 0o644 });
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await apache?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Sends one request through portcullis and waits for its line in the current access log. */
  async function logged(tag: string): Promise<void> {
    expect((await request(proxyUrl, { path: `/index.html?${tag}` })).status).toBe(200);
    for (let attempt = 0; attempt < 200; attempt++) {
      if ((await readFile(join(dir, 'logs', 'access.log'), 'utf8').catch(() => '')).includes(`?${tag} `)) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`no access log line for ${tag}; files: ${(await readdir(join(dir, 'logs'))).join(', ')}\n${stderr}`);
  }

  const logrotate = () => run('logrotate', ['-f', '-s', join(dir, 'logrotate.state'), config]);
  const text = (name: string) => readFile(join(dir, 'logs', name), 'utf8');

  it('moves the log away, and portcullis writes the next lines to a new file of its own', async () => {
    await logged('before-first');
    await logrotate();
    await logged('after-first');
    expect(await text('access.log.1')).toContain('?before-first ');
    expect(await text('access.log.1')).not.toContain('?after-first ');
    expect(await text('access.log')).toContain('?after-first ');
    expect(await text('access.log')).not.toContain('?before-first ');
  });

  it('compresses a rotation only one rotation later (delaycompress), losing no line', async () => {
    await logrotate();
    await logged('after-second');
    expect((await readdir(join(dir, 'logs'))).sort()).toEqual(['access.log', 'access.log.1', 'access.log.2.gz']);
    expect(gunzipSync(await readFile(join(dir, 'logs', 'access.log.2.gz'))).toString()).toContain('?before-first ');
    expect(await text('access.log.1')).toContain('?after-first ');
    expect(await text('access.log')).toContain('?after-second ');
    expect(child.exitCode).toBeNull();
  });
});
