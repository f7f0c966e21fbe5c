import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY_FILE, parsePolicy } from '../../../src/config/policy-loader.js';
import { ConfigError, type ConfigProblem } from '../../../src/core/errors.js';
import { RESTART_ONLY_KEYS } from '../../../src/config/restart-only-keys.js';

function problemsOf(source: string): string[] {
  try {
    parsePolicy(source, 'p.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems.map((problem: ConfigProblem) => `${problem.line}:${problem.col}: ${problem.message}`);
  }
  throw new Error('expected the policy to be rejected');
}

describe('the policy\'s tls key', () => {
  it('defaults to no certificates', () => {
    expect(parsePolicy('', 'p.yaml').tls).toEqual({ certificates: [] });
  });

  it('takes the issue\'s shape: pairs, a certbot live directory and a default', () => {
    const policy = parsePolicy('tls:\n  certificates:\n    - { cert: /etc/ssl/a/fullchain.pem, key: /etc/ssl/a/privkey.pem }\n  certbot_live: /etc/letsencrypt/live\n  default: example.org\n', 'p.yaml');
    expect(policy.tls).toEqual({ certificates: [{ cert: '/etc/ssl/a/fullchain.pem', key: '/etc/ssl/a/privkey.pem' }], certbot_live: '/etc/letsencrypt/live', default: 'example.org' });
  });

  it('reports a misspelt key, a pair without its key, a pair listed twice and a default with nothing to pick from', () => {
    expect(problemsOf('tls:\n  certbot_lvie: /etc/letsencrypt/live\n')).toEqual(['2:3: tls.certbot_lvie: unknown key "certbot_lvie"; did you mean "certbot_live"?']);
    expect(problemsOf('tls:\n  certificates:\n    - { cert: /a.pem }\n')).toEqual([expect.stringMatching(/^3:7: tls\.certificates\[0\]\.key/)]);
    expect(problemsOf('tls:\n  certificates:\n    - { cert: /a.pem, key: /a.key }\n    - { cert: /a.pem, key: /b.key }\n')).toEqual([expect.stringContaining('tls.certificates[1].cert: /a.pem is listed twice')]);
    expect(problemsOf('tls:\n  default: example.org\n')).toEqual([expect.stringContaining('tls.default: names a default certificate, but neither tls.certificates nor tls.certbot_live gives any')]);
  });

  it('reloads whole: no tls key waits for a restart', () => {
    expect(RESTART_ONLY_KEYS.filter((key: string) => key === 'tls' || key.startsWith('tls.'))).toEqual([]);
  });

  it('is documented in the shipped policy by commented-out lines that are valid once uncommented', () => {
    const lines = readFileSync(DEFAULT_POLICY_FILE, 'utf8').split('\n');
    const start = lines.indexOf('# tls:');
    expect(start).toBeGreaterThan(0);
    const block: string[] = [];
    for (const line of lines.slice(start)) {
      if (!line.startsWith('# ')) break;
      block.push(line.slice(2).replace(/\s+#.*$/, ''));
    }
    // A certbot_live alone is a valid policy; the default is checked against the certificates at load, not here.
    expect(parsePolicy(`${block.join('\n')}\n`, 'shipped.yaml').tls).toEqual({ certificates: [], certbot_live: '/etc/letsencrypt/live', default: 'example.org' });
  });
});
