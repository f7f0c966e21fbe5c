import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../../src/config/policy-loader.js';
import { findUnreachableRules } from '../../../src/policy/unreachable-rules.js';

/** The findings for a policy written as YAML: path and message of each. */
function unreachable(yaml: string): { path: string; message: string }[] {
  return findUnreachableRules(parsePolicy(yaml, 'policy.yaml')).map((finding) => ({ path: finding.path.join('.'), message: finding.message }));
}

/** Only an HTTPS listener: no ACME challenge arrives, so none skips the blocks. */
const TLS_ONLY = 'listen:\n  - address: 127.0.0.1:8443\n    tls: true\ntls:\n  certificates:\n    - { cert: /etc/x.pem, key: /etc/x.key }\n';

const XMLRPC_LIMIT = `
  - name: xmlrpc
    methods: [POST]
    paths: [/xmlrpc.php]
    per_ip: { rate: 5/min, burst: 5 }
`;

describe('rules that can never match', () => {
  it('a limit whose every request an earlier block refuses is reported at its name', () => {
    expect(unreachable(`block:\n  - path: /xmlrpc.php\nlimits:${XMLRPC_LIMIT}`)).toEqual([
      { path: 'limits.0.name', message: 'limits[0]: rule xmlrpc can never match: block /xmlrpc.php (block[0]) refuses every POST /xmlrpc.php first' },
    ]);
  });

  it('a block for other methods, a shadow block, or a narrower path leaves the limit reachable', () => {
    expect(unreachable(`block:\n  - path: /xmlrpc.php\n    methods: [GET]\nlimits:${XMLRPC_LIMIT}`)).toEqual([]);
    expect(unreachable(`block:\n  - path: /xmlrpc.php\n    mode: shadow\nlimits:${XMLRPC_LIMIT}`)).toEqual([]);
    expect(unreachable(`block:\n  - path: /xmlrpc.php/x\nlimits:${XMLRPC_LIMIT}`)).toEqual([]);
  });

  it('a prefix block covers the exact path, its PATH_INFO and its MultiViews name only when the prefix is shorter than all of them', () => {
    expect(unreachable(`block:\n  - path_prefix: /xml\nlimits:${XMLRPC_LIMIT}`)).toHaveLength(1);
    // Exact /xmlrpc.php also matches /xmlrpc (MultiViews), which /xmlrpc.php as a prefix does not.
    expect(unreachable(`block:\n  - path_prefix: /xmlrpc.php\nlimits:${XMLRPC_LIMIT}`)).toEqual([]);
  });

  it('case: a case-sensitive block does not cover a case-insensitive rule, the other way round it does', () => {
    expect(unreachable(`block:\n  - path: /xmlrpc.php\n    case_sensitive: true\nlimits:${XMLRPC_LIMIT}`)).toEqual([]);
    expect(unreachable(`block:\n  - path: /XMLRPC.php\nlimits:${XMLRPC_LIMIT.replace('per_ip', 'case_sensitive: true\n    per_ip')}`)).toHaveLength(1);
  });

  it('a later block an earlier one covers is reported; a regex is only covered by the same regex or by everything', () => {
    expect(unreachable(`block:\n  - path_prefix: /wp-content/uploads/\n  - path: /wp-content/uploads/x.php\n`)).toEqual([
      {
        path: 'block.1.path',
        message: 'block[1]: rule /wp-content/uploads/x.php can never match: block /wp-content/uploads/ (block[0]) refuses every request for it first',
      },
    ]);
    expect(unreachable(`block:\n  - path_regex: "\\\\.php$"\n  - path: /x.php\n`)).toEqual([]);
    expect(unreachable(`${TLS_ONLY}block:\n  - path_prefix: /\n  - name: php\n    path_regex: "\\\\.php$"\n`)).toHaveLength(1);
  });

  it('a limit on every path is covered only by a block on every path, and only without a plain listener (ACME challenges skip blocks)', () => {
    const everything = `limits:\n  - name: all\n    methods: [GET]\n    per_ip: { rate: 5/s, burst: 5 }\n`;
    expect(unreachable(`block:\n  - path_prefix: /wp-\n${everything}`)).toEqual([]);
    expect(unreachable(`block:\n  - path_prefix: /\n${everything}`)).toEqual([]);
    expect(unreachable(`${TLS_ONLY}block:\n  - path_prefix: /\n${everything}`)).toHaveLength(1);
  });

  it('several paths and methods: every pair must be refused, by one block or several', () => {
    const two = `limits:\n  - name: login\n    methods: [GET, POST]\n    paths: [/wp-login.php, /xmlrpc.php]\n    per_ip: { rate: 5/s, burst: 5 }\n`;
    expect(unreachable(`block:\n  - path: /xmlrpc.php\n  - path: /wp-login.php\n    methods: [POST]\n${two}`)).toEqual([]);
    expect(unreachable(`block:\n  - path: /xmlrpc.php\n  - path: /wp-login.php\n${two}`)).toEqual([
      {
        path: 'limits.0.name',
        message: 'limits[0]: rule login can never match: block /xmlrpc.php (block[0]), block /wp-login.php (block[1]) refuse every GET, POST /wp-login.php, /xmlrpc.php first',
      },
    ]);
  });

  it('OTHER and * in a limit are covered only by a block on every method', () => {
    const other = `limits:\n  - name: odd\n    methods: [OTHER]\n    paths: [/xmlrpc.php]\n    per_ip: { rate: 5/s, burst: 5 }\n`;
    expect(unreachable(`block:\n  - path: /xmlrpc.php\n    methods: [OTHER]\n${other}`)).toEqual([]);
    expect(unreachable(`block:\n  - path: /xmlrpc.php\n${other}`)).toHaveLength(1);
  });

  it('a path under the ACME challenge prefix is never covered while a plain listener takes challenges: they skip blocks', () => {
    const acme = `limits:\n  - name: acme\n    methods: [GET]\n    paths: ["/.well-known/acme-challenge/*"]\n    per_ip: { rate: 5/s, burst: 5 }\n`;
    expect(unreachable(`block:\n  - path_prefix: /.well-known/\n${acme}`)).toEqual([]);
    expect(unreachable(`${TLS_ONLY}block:\n  - path_prefix: /.well-known/\n${acme}`)).toHaveLength(1);
  });

  it('per site: a global limit a site block refuses is fine while another site (or the default) still reaches it', () => {
    const policy = `block:\n  - path: /xmlrpc.php\n    name: no-xmlrpc\n    methods: [GET]\nlimits:${XMLRPC_LIMIT}sites:\n  - name: blog\n    hosts: [blog.test]\n    block:\n      - path: /xmlrpc.php\n`;
    expect(unreachable(policy)).toEqual([]);
  });

  it('per site: a site rule its own site refuses first is reported at its position in the site', () => {
    const policy = `sites:\n  - name: blog\n    hosts: [blog.test]\n    block:\n      - path_prefix: /\n    limits:${XMLRPC_LIMIT.replace(/\n  /g, '\n      ')}`;
    expect(unreachable(policy)).toEqual([
      { path: 'sites.0.limits.0.name', message: 'sites[0].limits[0]: rule xmlrpc can never match on site blog: block / (sites[0].block[0]) refuses every POST /xmlrpc.php first' },
    ]);
  });

  it('a global rule every site refuses first, with a site as the default, is reported once with every site', () => {
    const policy = `block:\n  - path_prefix: /\n    name: everything\n    mode: shadow\nlimits:${XMLRPC_LIMIT}sites:\n  - name: a\n    hosts: [a.test]\n    default: true\n    block:\n      - path: /xmlrpc.php\n  - name: b\n    hosts: [b.test]\n    block:\n      - path_prefix: /xml\n`;
    expect(unreachable(policy)).toEqual([
      {
        path: 'limits.0.name',
        message: 'limits[0]: rule xmlrpc can never match: on site a, block /xmlrpc.php (sites[0].block[0]) refuses every POST /xmlrpc.php first; on site b, block /xml (sites[1].block[0]) does',
      },
    ]);
  });

  it('a global rule that every site disables or replaces, with a site as the default, applies nowhere', () => {
    const policy = `limits:${XMLRPC_LIMIT}sites:\n  - name: a\n    hosts: [a.test]\n    default: true\n    disable: [xmlrpc]\n  - name: b\n    hosts: [b.test]\n    block:\n      - name: xmlrpc\n        path: /xmlrpc.php\n`;
    expect(unreachable(policy)).toEqual([
      {
        path: 'limits.0.name',
        message: 'limits[0]: rule xmlrpc can never match: every site disables or replaces it, and site a is the default, so the top-level policy serves no host',
      },
    ]);
    // Without a default site the top-level policy serves the hosts no site names, so the rule still applies there.
    expect(unreachable(policy.replace('    default: true\n', ''))).toEqual([]);
  });

  it('the shipped example policy has no rule that can never match', async () => {
    const { readFile } = await import('node:fs/promises');
    expect(findUnreachableRules(parsePolicy(await readFile('config/portcullis.yaml', 'utf8'), 'config/portcullis.yaml'))).toEqual([]);
  });
});
