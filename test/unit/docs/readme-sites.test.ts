import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../../src/config/policy-loader.js';
import { assembleEngine } from '../../../src/engine/engine-assembly.js';
import { makeClientKey, parseClientAddress } from '../../../src/identity/client-key.js';

const README = readFileSync(join(import.meta.dirname, '../../../README.md'), 'utf8');

describe('README, Several sites', () => {
  const start = README.indexOf('\n## Several sites\n');
  const section = README.slice(start, README.indexOf('\n## ', start + 1));
  const policy = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] ?? '';

  it('has a worked policy that is valid', () => {
    expect(start).toBeGreaterThan(0);
    const config = parsePolicy(policy, 'README.md');
    expect(config.sites.map((site) => site.name)).toEqual(['blog', 'shop', 'phabricator']);
    expect(config.sites[2]?.upstream).toBe('http://127.0.0.1:8081');
  });

  it('means what the README says: xmlrpc.php blocked on the second WordPress, a few a minute on the Jetpack site', () => {
    const { engine, policy: compiled } = assembleEngine(parsePolicy(policy, 'README.md'));
    const client = makeClientKey(parseClientAddress('203.0.113.5')!, { ipv4: 24, ipv6: 64 });
    const xmlrpc = (host: string, atMs: number) => engine.decide({ client, method: 'POST', target: '/xmlrpc.php', site: compiled.selectSite(host) }, atMs).action;
    expect(xmlrpc('shop.example.org', 0)).toBe('block');
    const jetpack = Array.from({ length: 7 }, (_, i) => xmlrpc('blog.example.org', 1_000 + i));
    expect(jetpack).toEqual(['allow', 'allow', 'allow', 'allow', 'allow', 'allow', 'limit']);
    expect(compiled.selectSite('phab.example.org')?.name).toBe('phabricator');
    expect(compiled.selectSite('example.net')?.name).toBe('_default_');
  });
});
