import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY_FILE, parsePolicy } from '../../../src/config/policy-loader.js';
import { assembleEngine } from '../../../src/engine/engine-assembly.js';
import { makeClientKey, parseClientAddress } from '../../../src/identity/client-key.js';

describe('the shipped policy\'s sites example', () => {
  it('is commented-out lines that are valid once uncommented, and mean what their comments say', () => {
    const source = readFileSync(DEFAULT_POLICY_FILE, 'utf8');
    const lines = source.split('\n');
    const start = lines.indexOf('# sites:');
    expect(start).toBeGreaterThan(0);
    const block: string[] = [];
    for (const line of lines.slice(start)) {
      if (!line.startsWith('# ')) break;
      block.push(line.slice(2));
    }
    const config = parsePolicy(`${source}\n${block.join('\n')}\n`, 'shipped.yaml');
    expect(config.sites.map((site) => site.name)).toEqual(['jetpack', 'shop', 'phabricator']);

    const { engine, policy } = assembleEngine(config);
    const client = makeClientKey(parseClientAddress('203.0.113.5')!, config.clients.prefix);
    const post = (host: string, atMs: number) => engine.decide({ client, method: 'POST', target: '/xmlrpc.php', site: policy.selectSite(host) }, atMs).action;
    expect(post('shop.example.org', 0)).toBe('block');
    expect(post('blog.example.org', 1)).toBe('allow');
    expect(post('elsewhere.example.org', 2)).toBe('block');
  });
});
