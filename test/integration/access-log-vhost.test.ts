import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAccessLogLine } from '../../src/replay/access-log-line.js';
import type { ApacheHandle } from '../support/apache.js';
import { startApache } from '../support/apache.js';
import { request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

/** access_log_format: vhost_combined, read back by replay's parser, so a log portcullis writes replays per site. */
describe('the access log as vhost_combined', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy;
  let dir: string;
  let path: string;

  beforeAll(async () => {
    apache = await startApache();
    dir = await mkdtemp(join(tmpdir(), 'portcullis-vhost-log-'));
    path = join(dir, 'access.log');
    proxy = await startTestProxy(apache.url, `access_log: "${path}"\naccess_log_format: vhost_combined\nsites:\n  - name: shop\n    hosts: ["*.shop.test", "shop.test"]\n`);
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('puts the site\'s host (or the request\'s own) and the port first, as Apache\'s %v:%p', async () => {
    await request(proxy.url, { path: '/index.html', headers: { host: 'WWW.Shop.Test:8080' } });
    await request(proxy.url, { path: '/index.html', headers: { host: 'blog.test' } });
    let lines: string[] = [];
    for (let i = 0; i < 100 && lines.length < 2; i++) {
      lines = (await readFile(path, 'utf8').catch(() => '')).split('\n').filter((line) => line !== '');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(lines[0]).toMatch(new RegExp(`^shop\\.test:${proxy.port} 127\\.0\\.0\\.1 - - \\[`));
    expect(lines[1]).toMatch(new RegExp(`^blog\\.test:${proxy.port} 127\\.0\\.0\\.1 - - \\[`));
    expect(lines.map((line) => parseAccessLogLine(line)?.vhost)).toEqual(['shop.test', 'blog.test']);
  });
});
