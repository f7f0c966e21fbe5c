import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../../src/config/policy-loader.js';
import { ConfigError, type ConfigProblem } from '../../../src/core/errors.js';

/** Parses `source` and returns the problems it must have, as `LINE:COL message`. */
function problemsOf(source: string): string[] {
  try {
    parsePolicy(source, 'policy.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems.map((problem: ConfigProblem) => `${problem.line}:${problem.col} ${problem.message}`);
  }
  throw new Error('expected the policy to be rejected');
}

const GLOBAL = `limits:
  - name: write
    methods: [POST]
    per_ip: { rate: 1/s, burst: 20 }
block:
  - path: /xmlrpc.php
    strikes: 5
`;

describe('sites: in the policy', () => {
  it('takes every key a site has, with its defaults', () => {
    const config = parsePolicy(
      `${GLOBAL}sites:
  - name: jetpack
    hosts: [Blog.Example.ORG, "*.blog.example.org", bücher.example., my_blog.example]
    limits:
      - name: xmlrpc
        methods: [POST]
        paths: [/xmlrpc.php]
        per_ip: { rate: 5/min, burst: 5 }
    block:
      - path_prefix: /wp-content/uploads/
        name: uploads
    clients: { allow: [192.0.2.0/24] }
    concurrency: { upstream_max: 8 }
    upstream: http://127.0.0.1:8081
    escalation: { status: 429 }
    disable: [/xmlrpc.php]
  - name: shop
    hosts: [shop.example.org]
    default: true
`,
      'policy.yaml',
    );
    expect(config.sites).toHaveLength(2);
    const [jetpack, shop] = config.sites;
    expect(jetpack).toMatchObject({
      name: 'jetpack',
      hosts: ['blog.example.org', '*.blog.example.org', 'xn--bcher-kva.example', 'my_blog.example'],
      default: false,
      clients: { allow: ['192.0.2.0/24'] },
      concurrency: { upstream_max: 8 },
      upstream: 'http://127.0.0.1:8081',
      escalation: { status: 429 },
      disable: ['/xmlrpc.php'],
    });
    expect(jetpack?.limits[0]?.per_ip?.burst).toBe(5);
    expect(jetpack?.block[0]?.status).toBe(403);
    expect(shop).toEqual({ name: 'shop', hosts: ['shop.example.org'], default: true, limits: [], block: [], clients: { allow: [] }, escalation: {}, disable: [] });
    expect(parsePolicy('', 'empty.yaml').sites).toEqual([]);
  });

  it('rejects host patterns that no Host could ever match, at the pattern', () => {
    expect(problemsOf('sites:\n  - name: a\n    hosts: ["example.org:8080", "*", "a.*.org", "[::1]", ".a.example", "exa mple"]\n')).toEqual([
      '3:13 sites[0].hosts[0]: must be a host name like example.org or *.example.org (a site is chosen by name, without port), got "example.org:8080"',
      '3:33 sites[0].hosts[1]: must be a host name like example.org or *.example.org (`*` only as the first label; for every other name use default: true), got "*"',
      '3:38 sites[0].hosts[2]: must be a host name like example.org or *.example.org (`*` only as the first label; for every other name use default: true), got "a.*.org"',
      '3:49 sites[0].hosts[3]: must be a host name like example.org or *.example.org (IPv6 literals are not supported), got "[::1]"',
      '3:58 sites[0].hosts[4]: must be a host name like example.org or *.example.org, got ".a.example"',
      '3:72 sites[0].hosts[5]: must be a host name like example.org or *.example.org, got "exa mple"',
    ]);
  });

  it('requires a name and at least one host; rejects unknown keys with a did-you-mean', () => {
    expect(problemsOf('sites:\n  - hosts: []\n    upstrem: http://127.0.0.1:8081\n')).toEqual([
      '2:5 sites[0].name: is required',
      '2:12 sites[0].hosts: must list at least one host name',
      '3:5 sites[0].upstrem: unknown key "upstrem"; did you mean "upstream"?',
    ]);
  });

  it('keeps one namespace of rule names across limits and block, with a nameless block named after its path', () => {
    expect(problemsOf(`${GLOBAL}  - path: /xmlrpc.php\n    methods: [GET]\n`)).toEqual([
      '8:11 block[1].path: rule name "/xmlrpc.php" is used twice: names label metrics and logs, so they must be unique (a block without a name is named after its path)',
    ]);
    expect(problemsOf(`${GLOBAL}  - path: /wp-login.php\n    name: write\n`)).toEqual([
      '9:11 block[1].name: rule name "write" is used twice: names label metrics and logs, so they must be unique',
    ]);
    expect(
      problemsOf(`sites:
  - name: a
    hosts: [a.example]
    limits:
      - { name: xmlrpc, methods: [POST], per_ip: { rate: 1/s, burst: 1 } }
    block:
      - { path: /x, name: xmlrpc }
`),
    ).toEqual(['7:27 sites[0].block[0].name: rule name "xmlrpc" is used twice in site a: names label metrics and logs, so they must be unique']);
  });

  it('lets disable name global rules only (a nameless block by its path), and not one the site also redefines', () => {
    const config = parsePolicy(`${GLOBAL}sites:\n  - name: a\n    hosts: [a.example]\n    disable: [/xmlrpc.php, write]\n`, 'policy.yaml');
    expect(config.sites[0]?.disable).toEqual(['/xmlrpc.php', 'write']);
    expect(
      problemsOf(`${GLOBAL}sites:
  - name: a
    hosts: [a.example]
    limits:
      - { name: write, methods: [POST], per_ip: { rate: 9/s, burst: 9 } }
    disable: [wrtie, write]
`),
    ).toEqual([
      '13:15 sites[0].disable[0]: no global rule is named "wrtie"; did you mean "write"? (global rules: write, /xmlrpc.php)',
      '13:22 sites[0].disable[1]: site a both disables and redefines "write": a site rule of the same name already replaces the global one',
    ]);
  });

  it('rejects two sites of one name, a host in two sites, and two default sites', () => {
    expect(
      problemsOf(`sites:
  - { name: a, hosts: [a.example, "*.a.example"], default: true }
  - { name: a, hosts: [A.Example.], default: true }
`),
    ).toEqual([
      '3:13 sites[1].name: site name "a" is used twice',
      '3:24 sites[1].hosts[0]: host a.example is already a host of site a (sites[0].hosts[0]): it could never choose this site',
      '3:46 sites[1].default: only one site can be the default, and a is already',
    ]);
  });

  it('checks a site concurrency: a sub-cap fits inside the default upstream cap, its own upstream need not', () => {
    expect(problemsOf('concurrency: { upstream_max: 32 }\nsites:\n  - { name: a, hosts: [a.example], concurrency: { upstream_max: 40 } }\n')).toEqual([
      '3:65 sites[0].concurrency.upstream_max: a site without its own upstream shares concurrency.upstream_max 32: its cap 40 must not be larger',
    ]);
    const own = parsePolicy('sites:\n  - { name: a, hosts: [a.example], upstream: "http://127.0.0.1:8081", concurrency: { upstream_max: 64, per_client_max: 8 } }\n', 'p.yaml');
    expect(own.sites[0]?.concurrency).toEqual({ upstream_max: 64, per_client_max: 8 });
    expect(problemsOf('sites:\n  - { name: a, hosts: [a.example], concurrency: { upstream_max: 4, per_client_max: 8 } }\n')).toEqual([
      '2:84 sites[0].concurrency.per_client_max: must not be larger than the site\'s upstream_max 4',
    ]);
  });
});
