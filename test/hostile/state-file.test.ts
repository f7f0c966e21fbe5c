import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INDEX_MARKER, startApache, type ApacheHandle } from '../support/apache.js';
import { request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

/**
 * Issue 9, item 9: a state file that is valid JSON but holds one bad entry
 * made every start exit 1, a crash loop that kept the site down. Now each bad
 * entry is skipped and logged on its own, and the good bans around it are
 * restored and enforced, through the real start-up path.
 */
describe('a state file with bad entries among good ones', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy;
  let stateDir: string;

  beforeAll(async () => {
    apache = await startApache();
    stateDir = await mkdtemp(join(tmpdir(), 'portcullis-hostile-state-'));
    await mkdir(stateDir, { recursive: true });
    // The file outlives the process that wrote it, so its times are wall-clock times.
    const now = Date.now();
    const ban = { source: 'strikes', reason: 'from an earlier run', startedAt: now - 60_000, expiresAt: now + 3_600_000, nth: 1, dryRun: false };
    const bans = [
      { ...ban, target: '127.0.5.9', scope: 'ip', family: 4, prefix: '127.0.5.0/24' },
      { ...ban, target: 'not-an-ip/24', scope: 'prefix', family: 4, prefix: null },
      { ...ban, target: '127.0.6.0/24', scope: 'prefix', family: 4, prefix: null, source: 'prefix' },
      { ...ban, target: '127.0.8.0/24', scope: 'ip', family: 4, prefix: null },
      { ...ban, target: '127.0.9.9', scope: 'ip', family: 4, prefix: null, nth: -1 },
    ];
    const history = [
      { target: '127.0.5.9', bans: 1, lastEndAt: now + 3_600_000 },
      { target: '127.0.5.0/33', bans: 1, lastEndAt: now },
    ];
    await writeFile(join(stateDir, 'bans.json'), JSON.stringify({ version: 1, savedAt: now - 1_000, bans, history }));
    proxy = await startTestProxy(apache.url, 'escalation: { tarpit: 0s }\n', { stateDir });
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
    await rm(stateDir, { recursive: true, force: true });
  });

  it('starts, and enforces the good bans', async () => {
    expect((await request(proxy.url, { path: '/', localAddress: '127.0.5.9' })).status).toBe(403);
    expect((await request(proxy.url, { path: '/', localAddress: '127.0.6.77' })).status).toBe(403);
    const free = await request(proxy.url, { path: '/', localAddress: '127.0.7.1' });
    expect(free.status).toBe(200);
    expect(free.body).toContain(INDEX_MARKER);
    // The skipped entries enforce nothing: not the /24 stored as an address, not the bad nth.
    expect((await request(proxy.url, { path: '/', localAddress: '127.0.8.1' })).status).toBe(200);
    expect((await request(proxy.url, { path: '/', localAddress: '127.0.9.9' })).status).toBe(200);
  });

  it('logs each skipped entry with its index, target and why, and keeps a copy of the file', async () => {
    const skipped = proxy.logs.filter((line) => line['code'] === 'PC_ERR_STATE_ENTRY' && line['index'] !== undefined);
    expect(skipped.map((line) => [line['list'], line['index'], line['target']])).toEqual([
      ['bans', 1, 'not-an-ip/24'],
      ['bans', 3, '127.0.8.0/24'],
      ['bans', 4, '127.0.9.9'],
      ['history', 1, '127.0.5.0/33'],
    ]);
    expect(String(skipped[0]!['msg'])).toMatch(/skipped bans\[1\] \(target "not-an-ip\/24"\) of .*bans\.json: .*not a canonical IP address/);
    expect(String(skipped[1]!['why'])).toContain("scope 'ip'");
    expect(String(skipped[2]!['why'])).toContain('nth');
    expect(String(skipped[3]!['why'])).toContain('prefix length');
    expect(proxy.logs.some((line) => line['msg'] === 'restored active bans from the state file' && line['bans'] === 2)).toBe(true);
    const names = await readdir(stateDir);
    expect(names.some((name) => name.startsWith('bans.json.skipped-'))).toBe(true);
    expect(names.some((name) => name.startsWith('bans.json.corrupt-'))).toBe(false);
  });

  it('starts with the very file of the issue: one bad target among entries that are otherwise well formed', async () => {
    // Every field has the right type, so only the target is wrong: this one made every start exit 1.
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-hostile-state-'));
    const now = Date.now();
    const ban = { scope: 'prefix', family: 4, prefix: null, source: 'manual', reason: 'by hand', startedAt: now, expiresAt: now + 3_600_000, nth: 1, dryRun: false };
    const bans = [
      { ...ban, target: 'not-an-ip/24' },
      { ...ban, target: '127.0.10.0/24' },
    ];
    await writeFile(join(dir, 'bans.json'), JSON.stringify({ version: 1, savedAt: now, bans, history: [] }));
    const second = await startTestProxy(apache.url, 'escalation: { tarpit: 0s }\n', { stateDir: dir });
    try {
      expect((await request(second.url, { path: '/', localAddress: '127.0.10.3' })).status).toBe(403);
      expect(second.logs.filter((line) => line['code'] === 'PC_ERR_STATE_ENTRY' && line['index'] === 0 && line['target'] === 'not-an-ip/24')).toHaveLength(1);
    } finally {
      await second.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
