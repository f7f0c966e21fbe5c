import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY_FILE, loadPolicyFile, parsePolicy } from '../../../src/config/policy-loader.js';
import { ConfigError, PortcullisError, type ConfigProblem } from '../../../src/core/errors.js';

/** Parses `source` and returns the problems it must have. */
function problemsOf(source: string): ConfigProblem[] {
  try {
    parsePolicy(source, 'policy.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('PC_ERR_CONFIG_INVALID');
    return [...(error as ConfigError).problems];
  }
  throw new Error('expected the policy to be rejected');
}

const RULE = (perIp: string) => `limits:
  - name: read
    methods: [GET]
    per_ip: ${perIp}
`;

describe('parsePolicy', () => {
  it('accepts the shipped default policy', async () => {
    const config = await loadPolicyFile(DEFAULT_POLICY_FILE);
    expect(config.listen).toEqual([{ address: '0.0.0.0:8000', tls: false, redirect_https: false }]);
    expect(config.upstream).toBe('http://127.0.0.1:8080');
    expect(config.limits.map((rule) => rule.name)).toEqual(['read', 'write', 'other', 'login']);
    expect(config.block[0]?.path).toBe('/xmlrpc.php');
    expect(config.concurrency.queue_timeout).toBe(5000);
  });

  it('gives every documented default to an empty file', () => {
    const config = parsePolicy('', 'empty.yaml');
    expect(config.clients).toEqual({ trusted_proxies: [], allow: [], prefix: { ipv4: 24, ipv6: 64 }, max_tracked: 1_000_000 });
    expect(config.limits).toEqual([]);
    expect(config.request.max_body).toBe(64 * 1024 * 1024);
  });

  it('converts rates, durations and sizes', () => {
    const config = parsePolicy(`${RULE('{ rate: 20/s, burst: 100 }')}concurrency: { queue_timeout: 1500ms }\nrequest: { max_body: 1MiB }\n`, 'p.yaml');
    expect(config.limits[0]?.per_ip?.rate.perMs).toBeCloseTo(0.02, 12);
    expect(config.limits[0]?.cost).toBe(1);
    expect(config.limits[0]?.status).toBe(429);
    expect(config.concurrency.queue_timeout).toBe(1500);
    expect(config.request.max_body).toBe(1_048_576);
  });

  it('reports an unknown key at the key with a did-you-mean', () => {
    const problems = problemsOf(RULE('{ rate: 20/s, brust: 100 }'));
    expect(problems).toContainEqual({
      file: 'policy.yaml',
      line: 4,
      col: 27,
      message: 'limits[0].per_ip.brust: unknown key "brust"; did you mean "burst"?',
    });
  });

  it('lists the allowed keys when nothing is close (fail2ban\'s maxretry)', () => {
    const [problem] = problemsOf('maxretry: 5\n');
    expect(problem?.line).toBe(1);
    expect(problem?.col).toBe(1);
    expect(problem?.message).toMatch(/^maxretry: unknown key "maxretry"; expected one of: listen, upstream, clients, limits/);
  });

  it('treats an inline # comment as a comment, not as part of the value', () => {
    const config = parsePolicy(`${RULE('{ rate: 20/s, burst: 100 }  # a comment')}    cost: 2 # tokens per request\n`, 'p.yaml');
    expect(config.limits[0]?.per_ip?.burst).toBe(100);
    expect(config.limits[0]?.cost).toBe(2);
  });

  it('rejects an unparsable rate with its position', () => {
    const problems = problemsOf(RULE('{ rate: 20 per second, burst: 100 }'));
    expect(problems).toEqual([
      {
        file: 'policy.yaml',
        line: 4,
        col: 21,
        message: 'limits[0].per_ip.rate: must be a rate like 20/s, 300/min or 5/h, got "20 per second"',
      },
    ]);
  });

  it('rejects a negative burst and a wrong type', () => {
    const problems = problemsOf(`${RULE('{ rate: 20/s, burst: -10 }')}concurrency: { upstream_max: "lots" }\n`);
    expect(problems.map((problem) => `${problem.line}:${problem.col} ${problem.message}`)).toEqual([
      '4:34 limits[0].per_ip.burst: must be a positive whole number, got -10',
      '5:30 concurrency.upstream_max: must be a positive whole number, got "lots"',
    ]);
  });

  it('rejects a duration without a unit', () => {
    const [problem] = problemsOf('concurrency:\n  queue_timeout: 2\n');
    expect(problem).toMatchObject({ line: 2, col: 18 });
    expect(problem?.message).toContain('concurrency.queue_timeout: must be a duration like 2s');
  });

  it('takes 0s for the tarpit (answer at once) but not a negative, unitless or overlong one', () => {
    expect(parsePolicy('escalation: { tarpit: 0s }', 'policy.yaml').escalation.tarpit).toBe(0);
    expect(parsePolicy('escalation: { tarpit: 1500ms }', 'policy.yaml').escalation.tarpit).toBe(1500);
    expect(problemsOf('escalation: { tarpit: 6m }')[0]?.message).toContain('escalation.tarpit: must be at most 5m');
    for (const bad of ['-1s', '5']) {
      const [problem] = problemsOf(`escalation: { tarpit: ${bad} }`);
      expect(problem?.message).toContain('escalation.tarpit: must be a duration like 5s or 0s');
    }
  });

  it('rejects an invalid CIDR', () => {
    const [problem] = problemsOf('clients:\n  allow: ["10.0.0.0/8", "10.0.0.0/33"]\n');
    expect(problem).toMatchObject({ line: 2, col: 25 });
    expect(problem?.message).toContain('clients.allow[1]: must be an IP address or CIDR');
  });

  it('suggests a method for a typo', () => {
    const [problem] = problemsOf('limits:\n  - name: r\n    methods: [GTE]\n    per_ip: { rate: 1/s, burst: 1 }\n');
    expect(problem).toMatchObject({ line: 3, col: 15 });
    expect(problem?.message).toMatch(/limits\[0\]\.methods\[0\]: .*got "GTE"; did you mean "GET"\?/);
  });

  it('requires a name and a bucket on every rule', () => {
    expect(problemsOf('limits:\n  - methods: [GET]\n    per_ip: { rate: 1/s, burst: 1 }\n')).toEqual([
      { file: 'policy.yaml', line: 2, col: 5, message: 'limits[0].name: is required' },
    ]);
    const [problem] = problemsOf('limits:\n  - name: r\n    methods: [GET]\n');
    expect(problem?.message).toContain('needs per_ip and/or per_prefix');
  });

  it('rejects a cost no bucket can ever pay', () => {
    const [problem] = problemsOf(`${RULE('{ rate: 1/s, burst: 2 }')}    cost: 3\n`);
    expect(problem?.message).toContain('cost 3 is larger than per_ip.burst 2');
    expect(problem?.line).toBe(5);
  });

  it('rejects duplicate rule names', () => {
    const problems = problemsOf(`${RULE('{ rate: 1/s, burst: 2 }')}  - name: read\n    methods: [POST]\n    per_ip: { rate: 1/s, burst: 2 }\n`);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ line: 5, col: 11 });
    expect(problems[0]?.message).toContain('used twice');
  });

  it('needs exactly one path kind on a block', () => {
    expect(problemsOf('block:\n  - path: /a\n    path_prefix: /b\n')[0]?.message).toContain('has path and path_prefix: give exactly one');
    expect(problemsOf('block:\n  - status: 403\n')[0]?.message).toContain('needs one of path, path_prefix or path_regex');
    expect(problemsOf('block:\n  - path_regex: "(["\n')[0]?.message).toContain('is not a valid JavaScript regular expression');
    expect(problemsOf('block:\n  - path: xmlrpc.php\n')[0]?.message).toContain('must start with "/"');
    expect(problemsOf('block:\n  - path: /a/../xmlrpc.php\n')[0]?.message).toMatch(/block\[0\]\.path: .*xmlrpc/);
  });

  it('rejects an upstream with a path, and YAML errors such as duplicate keys', () => {
    expect(problemsOf('upstream: http://127.0.0.1:8080/blog\n')[0]?.message).toContain('must not have a path');
    const [duplicate] = problemsOf('listen: "0.0.0.0:80"\nlisten: "0.0.0.0:81"\n');
    expect(duplicate?.line).toBe(2);
    expect(duplicate?.message).toMatch(/unique/i);
  });

  it('reports every problem, sorted by position', () => {
    const problems = problemsOf('listen: 80\nupstream: ftp://x\nclients: { max_trakced: 5 }\n');
    expect(problems.map((problem) => problem.line)).toEqual([1, 2, 3]);
    expect(problems[2]?.message).toContain('did you mean "max_tracked"?');
  });

  it('caps clients.max_tracked where the bucket table can number its rows', () => {
    expect(problemsOf('clients: { max_tracked: 3000000000 }\n')[0]?.message).toBe('clients.max_tracked: must be at most 2147483647 (the bucket table numbers its rows in 32 bits; a million clients take about 200 MB), got 3000000000');
    expect(parsePolicy('clients: { max_tracked: 2147483647 }\n', 'policy.yaml').clients.max_tracked).toBe(2_147_483_647);
  });

  it('names the schemes a webhook or Redis URL may use', () => {
    expect(problemsOf('alerts: { webhooks: [{ url: "ftp://hooks.example.com/x" }] }\n')[0]?.message).toBe('alerts.webhooks[0].url: must be an http:// or https:// URL, got "ftp://hooks.example.com/x"');
    expect(problemsOf('store: { type: redis, url: "http://127.0.0.1:6379" }\n')[0]?.message).toBe('store.url: must be a redis:// or rediss:// URL, got "http://127.0.0.1:6379"');
    expect(problemsOf('store: { type: redis, url: "not a url" }\n')[0]?.message).toBe('store.url: must be a redis:// or rediss:// URL, got "not a url"');
    for (const url of ['redis://127.0.0.1:6379', 'rediss://redis.example.org:6380']) expect(parsePolicy(`store: { type: redis, url: "${url}" }\n`, 'policy.yaml').store.url).toBe(url);
    for (const url of ['http://hooks.example.com/a', 'https://hooks.example.com/a']) expect(parsePolicy(`alerts: { webhooks: [{ url: "${url}" }] }\n`, 'policy.yaml').alerts.webhooks[0]?.url).toBe(url);
  });

  it('says clearly when the file cannot be read', async () => {
    await expect(loadPolicyFile('/nonexistent/policy.yaml')).rejects.toMatchObject({ code: 'PC_ERR_CONFIG_READ' });
    await expect(loadPolicyFile('/nonexistent/policy.yaml')).rejects.toBeInstanceOf(PortcullisError);
  });
});

describe('messages in the policy\'s own terms', () => {
  it('names the expected shape and what was found', () => {
    expect(problemsOf('limits: 5\n')[0]?.message).toBe('limits: must be a list, got 5');
    expect(problemsOf('clients: { prefix: { ipv4: 40 } }\n')[0]?.message).toBe('clients.prefix.ipv4: must be a prefix length 8–32, got 40');
    expect(problemsOf('clients: []\n')[0]?.message).toBe('clients: must be a mapping, got a list');
  });
});

describe('a misspelt required key', () => {
  it('is reported once, as the misspelling, not also as a missing key', () => {
    expect(problemsOf(RULE('{ rate: 20/s, brust: 100 }')).map((problem) => problem.message)).toEqual([
      'limits[0].per_ip.brust: unknown key "brust"; did you mean "burst"?',
    ]);
  });
});

describe('CIDR problems', () => {
  it('say what is wrong with the entry', () => {
    const [problem] = problemsOf('clients:\n  trusted_proxies: ["10.1.2.3/8"]\n');
    expect(problem?.message).toMatch(/clients\.trusted_proxies\[0\]: must be an IP address or CIDR .*host bits set/);
  });
});

describe('listen', () => {
  it('takes one HOST:PORT or a list of plain and TLS listeners', () => {
    const config = parsePolicy('listen:\n  - "0.0.0.0:80"\n  - { address: "[::]:443", tls: true, upstream: "http://127.0.0.1:8443" }\ntls:\n  certificates: [{ cert: /c.pem, key: /k.pem }]\n', 'l.yaml');
    expect(config.listen).toEqual([
      { address: '0.0.0.0:80', tls: false, redirect_https: false },
      { address: '[::]:443', tls: true, redirect_https: false, upstream: 'http://127.0.0.1:8443' },
    ]);
  });

  it('refuses a TLS listener without certificates, a redirecting TLS listener, a listener twice and unknown keys', () => {
    expect(problemsOf('listen:\n  - { address: "0.0.0.0:443", tls: true }\n')[0]?.message).toContain('no certificate to serve');
    expect(problemsOf('listen:\n  - { address: "0.0.0.0:80", tls: true, redirect_https: true }\ntls: { certbot_live: /etc/letsencrypt/live }\n')[0]?.message).toContain('cannot also redirect');
    expect(problemsOf('listen: ["0.0.0.0:80", "0.0.0.0:80"]\n')[0]?.message).toContain('listed twice');
    expect(problemsOf('listen:\n  - { adress: "0.0.0.0:80" }\n').map((problem) => problem.message).join('\n')).toContain('did you mean "address"?');
  });
});
