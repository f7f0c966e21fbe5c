import { z } from 'zod';
import { parseCidr } from '../identity/cidr-set.js';
import { parseHostPattern, type HostPatternProblem } from '../policy/host-pattern.js';
import { compilePathPattern, type PathPatternSpec } from '../policy/path-pattern.js';
import { parseByteSize, SIZE_PATTERN } from './byte-size.js';
import { DURATION_PATTERN, parseDurationMs } from './duration.js';
import { parseHostAuthority } from './host-authority.js';
import { parseListenAddress } from './listen-address.js';
import { parseRate, RATE_PATTERN } from './rate.js';
import { checkRulesAndSites } from './site-checks.js';

/*
 * The policy schema: the single source of the policy's shape, its types and its
 * defaults. Every object is strict (an unknown key is an error, with a
 * did-you-mean), every default is written once, here, with its unit and reason.
 * The README's policy reference and config/portcullis.yaml document these keys;
 * a test parses the shipped file so it cannot go stale.
 */

/** Methods a rule may name. `OTHER` stands for every method no rule names, `*` for all. */
export const KNOWN_METHODS = [
  'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT',
  // WebDAV, served by mod_dav and by PHP scripts alike.
  'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK',
  'OTHER', '*',
] as const;

const text = (what: string) => z.string({ error: (issue) => expected(what, issue.input) });

function expected(what: string, input: unknown): string {
  return input === undefined ? 'is required' : `must be ${what}, got ${describe(input)}`;
}

/** Renders a value as the user wrote it, for "got …" in messages. */
export function describe(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a mapping';
  return JSON.stringify(input);
}

/**
 * Marks a schema that also takes a plain string (a preprocess turns it into
 * the object form): the JSON Schema for editors says so (policy-json-schema.ts).
 */
export const ALSO_A_STRING = 'x-portcullis-also-a-string';

/** A duration in milliseconds; positive, or 0 too when `zero` says what 0 means. */
const durationMs = (example: string, zero?: string) =>
  text(zero ? `a duration like ${example} or 0s` : `a duration like ${example}`).meta({ pattern: DURATION_PATTERN, description: `a duration like ${example} (units: ms, s, m, h, d, w)`, examples: [example] }).transform((value, ctx) => {
    const ms = parseDurationMs(value);
    if (ms === null || (ms === 0 && !zero)) {
      const shape = zero ? `a duration like ${example} or 0s for ${zero}` : `a positive duration like ${example}`;
      ctx.issues.push({ code: 'custom', input: value, message: `must be ${shape} (units: ms, s, m, h, d, w), got ${describe(value)}` });
      return z.NEVER;
    }
    return ms;
  });

const rate = text('a rate like 20/s').meta({ pattern: RATE_PATTERN, description: 'a rate like 20/s, 300/min or 5/h', examples: ['20/s', '300/min'] }).transform((value, ctx) => {
  const parsed = parseRate(value);
  if (parsed === null) {
    ctx.issues.push({ code: 'custom', input: value, message: `must be a rate like 20/s, 300/min or 5/h, got ${describe(value)}` });
    return z.NEVER;
  }
  return parsed;
});

const byteSize = text('a size like 64MiB').meta({ pattern: SIZE_PATTERN, description: 'a size like 64MiB or 10MB', examples: ['64MiB'] }).transform((value, ctx) => {
  const bytes = parseByteSize(value);
  if (bytes === null || bytes <= 0) {
    ctx.issues.push({ code: 'custom', input: value, message: `must be a size like 64MiB or 10MB (units: B, KB, MB, GB, KiB, MiB, GiB), got ${describe(value)}` });
    return z.NEVER;
  }
  return bytes;
});

const positiveInt = (what = 'a positive whole number') =>
  z.int({ error: (issue) => expected(what, issue.input) }).min(1, { error: (issue) => `must be ${what}, got ${describe(issue.input)}` });

const cidr = text('an address or CIDR like 10.0.0.0/8').superRefine((value, ctx) => {
  try {
    parseCidr(value);
  } catch (error) {
    // parseCidr says what is wrong ("host bits set: write 1.2.3.0/24 ..."): pass it on.
    ctx.addIssue({ code: 'custom', input: value, message: `must be an IP address or CIDR like 10.0.0.0/8 or 2001:db8::/32: ${(error as Error).message}` });
  }
});

const listenAddress = text('HOST:PORT').refine((value) => parseListenAddress(value) !== null, {
  error: (issue) => `must be HOST:PORT like 0.0.0.0:8000 or [::]:8000, got ${describe(issue.input)}`,
});

const upstreamUrl = text('a URL like http://127.0.0.1:8080').transform((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.issues.push({ code: 'custom', input: value, message: `must be a URL like http://127.0.0.1:8080, got ${describe(value)}` });
    return z.NEVER;
  }
  const problem =
    url.protocol !== 'http:' && url.protocol !== 'https:' ? 'must use http:// or https://'
    : url.username || url.password ? 'must not contain credentials'
    : url.pathname !== '/' || url.search || url.hash ? 'must not have a path, query or fragment (portcullis forwards the path as the client sent it)'
    : null;
  if (problem) {
    ctx.issues.push({ code: 'custom', input: value, message: `${problem}, got ${describe(value)}` });
    return z.NEVER;
  }
  return url.origin;
});

/**
 * One listener: a plain `HOST:PORT`, or a mapping for HTTPS, for a plain port
 * that redirects to HTTPS, or for a port with its own upstream.
 */
const listenerObject = z
  .strictObject({
    address: listenAddress,
    /** HTTPS: TLS with HTTP/2 and HTTP/1.1 on the same port; needs `tls` certificates. */
    tls: z.boolean({ error: (issue) => expected('true or false', issue.input) }).default(false),
    /** Answer 308 to https:// on this plain port; ACME challenges (`/.well-known/acme-challenge/`) are still forwarded. */
    redirect_https: z.boolean({ error: (issue) => expected('true or false', issue.input) }).default(false),
    /** Where this listener forwards; absent: the top-level `upstream` (certbot --apache leaves :80 and :443 vhosts apart). */
    upstream: upstreamUrl.optional(),
  })
  .superRefine((listener, ctx) => {
    if (listener.tls && listener.redirect_https) ctx.addIssue({ code: 'custom', message: 'a TLS listener cannot also redirect to HTTPS: redirect_https is for plain ports', path: ['redirect_https'] });
  });

const listenerEntry = z.preprocess((value) => (typeof value === 'string' ? { address: value } : value), listenerObject).meta({ [ALSO_A_STRING]: 'HOST:PORT' });

/** `listen`: one `HOST:PORT` (the original form) or a list of listeners. */
const listen = z
  .preprocess(
    (value) => (typeof value === 'string' ? [value] : value),
    z.array(listenerEntry, { error: (issue) => expected('HOST:PORT or a list of listeners', issue.input) }).min(1, { error: 'must list at least one listener' }),
  )
  .meta({ [ALSO_A_STRING]: 'HOST:PORT' });

export type ListenerConfig = z.output<typeof listenerObject>;

const method = z.enum(KNOWN_METHODS, {
  error: (issue) => `must be an HTTP method in capitals (${KNOWN_METHODS.join(', ')}), got ${describe(issue.input)}`,
});

const httpStatus = z
  .int({ error: (issue) => expected('an HTTP status code', issue.input) })
  .min(400, { error: (issue) => `must be a 4xx or 5xx status code, got ${describe(issue.input)}` })
  .max(599, { error: (issue) => `must be a 4xx or 5xx status code, got ${describe(issue.input)}` });

/**
 * Validates a path the way the matcher will read it, by compiling it: one set
 * of rules for what a path may be (normalised, no query), stated once in
 * path-pattern.ts, reported here with the value's position.
 */
const patternChecked = (what: string, toSpec: (value: string) => PathPatternSpec) =>
  text(what).superRefine((value, ctx) => {
    try {
      compilePathPattern(toSpec(value));
    } catch (error) {
      ctx.addIssue({ code: 'custom', input: value, message: (error as Error).message });
    }
  });

const exactPath = patternChecked('a path starting with /', (path) => ({ kind: 'exact', path, caseSensitive: false }));
const pathPrefix = patternChecked('a path starting with /', (prefix) => ({ kind: 'prefix', prefix, caseSensitive: false }));
const regexSource = patternChecked('a regular expression', (regex) => ({ kind: 'regex', regex, caseSensitive: false }));
/** A `paths` entry of a limit rule: exact, or a prefix when it ends in `*`. */
const rulePath = patternChecked('a path starting with /', (path) =>
  path.endsWith('*') ? { kind: 'prefix', prefix: path.slice(0, -1), caseSensitive: false } : { kind: 'exact', path, caseSensitive: false },
);

/** `enforce` refuses; `shadow` only counts and logs what it would refuse, to try a rule on live traffic first. */
export const RULE_MODES = ['enforce', 'shadow'] as const;
const ruleMode = z.enum(RULE_MODES, { error: (issue) => `must be enforce or shadow, got ${describe(issue.input)}` }).default('enforce');

const ruleName = text('a name').regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, {
  error: (issue) => `must be 1–64 letters, digits, '.', '_' or '-', got ${describe(issue.input)}`,
});

const bucket = z.strictObject({
  /** Refill rate: the sustained request rate this bucket admits. */
  rate,
  /** Capacity: how many requests may come at once after a quiet spell. */
  burst: positiveInt(),
});

const limitRule = z
  .strictObject({
    name: ruleName,
    methods: z.array(method).min(1, { error: 'must list at least one method' }),
    /** Exact paths (`/wp-login.php`, also matching its PATH_INFO) or prefixes ending in `*` (`/wp-admin/*`). Absent: every path. */
    paths: z.array(rulePath).min(1, { error: 'must list at least one path, or be left out for every path' }).optional(),
    per_ip: bucket.optional(),
    per_prefix: bucket.optional(),
    /** Tokens each matching request takes from every bucket of this rule. */
    cost: positiveInt().default(1),
    /** Status of a refusal. 429 is what clients and crawlers understand as "slow down". */
    status: httpStatus.default(429),
    /** Paths match case-insensitively unless set, since Apache can serve a file under another case. */
    case_sensitive: z.boolean({ error: (issue) => expected('true or false', issue.input) }).default(false),
    mode: ruleMode,
  })
  .superRefine((rule, ctx) => {
    if (!rule.per_ip && !rule.per_prefix) {
      ctx.addIssue({ code: 'custom', message: 'needs per_ip and/or per_prefix: a rule without a bucket limits nothing', path: ['per_ip'] });
    }
    for (const scope of ['per_ip', 'per_prefix'] as const) {
      const spec = rule[scope];
      // A burst that failed its own check has already been reported.
      if (spec && spec.burst >= 1 && rule.cost > spec.burst) {
        ctx.addIssue({ code: 'custom', message: `cost ${rule.cost} is larger than ${scope}.burst ${spec.burst}: no request could ever pass`, path: ['cost'] });
      }
    }
  });

const blockRule = z
  .strictObject({
    /** Shown in logs; defaults to the path it blocks. */
    name: ruleName.optional(),
    /** Exact path, also matching PATH_INFO below it and its MultiViews name without extension. */
    path: exactPath.optional(),
    /** Every path starting with this. */
    path_prefix: pathPrefix.optional(),
    /** A JavaScript regular expression tested against the normalised path (anchor it yourself). */
    path_regex: regexSource.optional(),
    /** Absent: every method. */
    methods: z.array(method).min(1, { error: 'must list at least one method, or be left out for every method' }).optional(),
    /** 403 says "never", unlike 429's "later". */
    status: httpStatus.default(403),
    /** Strikes a request to this path counts for: a request for /xmlrpc.php is rarely an accident. */
    strikes: z.int({ error: (issue) => expected('a whole number ≥ 0', issue.input) }).min(0).default(1),
    case_sensitive: z.boolean({ error: (issue) => expected('true or false', issue.input) }).default(false),
    mode: ruleMode,
  })
  .superRefine((rule, ctx) => {
    const given = (['path', 'path_prefix', 'path_regex'] as const).filter((key) => rule[key] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: given.length === 0 ? 'needs one of path, path_prefix or path_regex' : `has ${given.join(' and ')}: give exactly one`,
        path: given.length === 0 ? [] : [given[1] as string],
      });
    }
  });

const clients = z.strictObject({
  /** CIDRs whose X-Forwarded-For is believed (your CDN or load balancer). Empty: nobody's. */
  trusted_proxies: z.array(cidr).default([]),
  /** CIDRs never limited (blocks still apply). */
  allow: z.array(cidr).default([]),
  /** Prefix lengths that group neighbouring addresses: one /24 or one /64 is usually one network owner. */
  prefix: z
    .strictObject({
      ipv4: z.int({ error: (issue) => expected('a prefix length 8–32', issue.input) }).min(8).max(32).default(24),
      ipv6: z.int({ error: (issue) => expected('a prefix length 16–128', issue.input) }).min(16).max(128).default(64),
    })
    .prefault({}),
  /** Cap on addresses and prefixes with bucket state; least recently seen are forgotten first. ~200 bytes each. */
  max_tracked: positiveInt()
    .max(2_147_483_647, { error: (issue) => `must be at most 2147483647 (the bucket table numbers its rows in 32 bits; a million clients take about 200 MB), got ${describe(issue.input)}` })
    .default(1_000_000),
});

const concurrency = z.strictObject({
  /** In-flight requests to the upstream in total. Keep it below Apache's MaxRequestWorkers. */
  upstream_max: positiveInt().default(32),
  /** In-flight requests per client IP. Browsers open 6 connections; 16 leaves room for a small office behind NAT. */
  per_client_max: positiveInt().default(16),
  /** Requests waiting for a slot, in total; beyond it, 503 at once. */
  queue_max: positiveInt().default(512),
  /** Requests waiting per client IP, so one client cannot fill the queue. */
  per_client_queue_max: positiveInt().default(16),
  /** How long a request may wait for a slot before 503. */
  queue_timeout: durationMs('2s').default(5_000),
});

const connections = z.strictObject({
  /**
   * Open connections per client address (the TCP peer), idle keep-alive ones
   * included; past it a new connection is closed at once and counts as a
   * strike. Trusted proxies are exempt (a CDN node carries many visitors).
   * Browsers open 6 per host; 256 leaves room for a large office behind NAT.
   */
  per_client_max: positiveInt().default(256),
  /** Open client connections in total; past it new ones are closed at once (nobody is struck). Keep it below the process's file limit. */
  max: positiveInt().default(10_000),
  /** Upgraded (WebSocket) connections per client: once spliced they hold no upstream slot, so they have a cap of their own. */
  upgraded_per_client_max: positiveInt().default(16),
  /**
   * New connections to a TLS listener per client address (the TCP peer), a
   * bucket of their own checked at accept, before any TLS work: past it the
   * connection is closed before the handshake and counts as a strike.
   * Trusted proxies are exempt. A full handshake is the most expensive thing
   * a client can make portcullis do (a private-key signature: ~1 ms of CPU
   * with RSA-2048). A browser opens at most 6 connections to a host over
   * HTTP/1.1 and one over HTTP/2, and resumes its TLS session after that,
   * so a burst of 50 is eight browsers behind one NAT address arriving
   * together, and 20/s sustained is 1 200 new connections a minute, beyond
   * any office; a handshake flood from one address gets at most 20 a second.
   * A judgement call. ~150 bytes per address that connected in the last few
   * seconds (at most 100 000 kept).
   */
  tls_handshakes: z
    .strictObject({
      rate: rate.prefault('20/s'),
      burst: positiveInt().default(50),
    })
    .prefault({}),
});

const timeouts = z.strictObject({
  /** Time for a client to send its request headers (slowloris guard). */
  client_headers: durationMs('10s').default(10_000),
  /** Time for a client to send its whole request, body included. */
  client_request: durationMs('5m').default(300_000),
  /** How long an idle client keep-alive connection is kept open. */
  client_keepalive: durationMs('5s').default(5_000),
  /** Time for a client to finish its TLS handshake (Node's own default is 120 s: a slow-loris of handshakes). */
  tls_handshake: durationMs('10s').default(10_000),
  /** Time to open a connection to the upstream; failing that, 502. */
  upstream_connect: durationMs('5s').default(5_000),
  /** Time for the upstream to start answering; failing that, 504. PHP pages can be slow, hence a minute. */
  upstream_headers: durationMs('60s').default(60_000),
  /** Longest silence while the upstream sends a body. */
  upstream_body: durationMs('5m').default(300_000),
});

const request = z.strictObject({
  /** Largest request body forwarded; larger gets 413. WordPress media uploads are often a few tens of MB. */
  max_body: byteSize.default(64 * 1_048_576),
});

/**
 * Buffering between slow clients and Apache: a request body is received in
 * full before an upstream slot is taken, and Apache's answer is read at
 * Apache's pace while the client reads it at its own, so neither a client
 * that sends one byte a second nor one that never reads holds a worker.
 * Memory first, then temp files; both capped in total.
 */
const buffering = z.strictObject({
  /** Off: bodies stream both ways as they arrive, and a slow client holds its Apache worker to the end. */
  enabled: z.boolean({ error: (issue) => expected('true or false', issue.input) }).default(true),
  /** Request body bytes kept in memory per request; the rest goes to a temp file. Logins, comments and REST saves fit; uploads spill. */
  request_memory: byteSize.default(64 * 1_024),
  /** Response bytes kept in memory per response ahead of a slow reader; the rest goes to a temp file. Most HTML pages fit whole. */
  response_memory: byteSize.default(256 * 1_024),
  /** Memory all buffers together may hold; past it, buffers spill to disk. Judgement call: a small share of a web server's RAM. */
  memory_total: byteSize.default(128 * 1_048_576),
  /** Where temp files go (created 0700; ours are removed at start). Absent: `state_dir`/tmp. */
  temp_dir: text('a directory path').optional(),
  /** Disk all temp files together may use; past it, request bodies get 503 and responses are passed on at the client's pace. */
  temp_total: byteSize.default(1_073_741_824),
  /** Paths streamed both ways without buffering (large uploads, server-sent events); same syntax as `limits[].paths`. */
  stream_paths: z.array(rulePath).default([]),
  /** A client that takes none of its buffered response for this long is cut and its buffer freed (nginx's send_timeout), so a reader that never reads cannot keep a temp file forever. */
  send_timeout: durationMs('60s').default(60_000),
});

const port = z
  .int({ error: (issue) => expected('a TCP port 1–65535', issue.input) })
  .min(1, { error: (issue) => `must be a TCP port 1–65535, got ${describe(issue.input)}` })
  .max(65_535, { error: (issue) => `must be a TCP port 1–65535, got ${describe(issue.input)}` });

/** Firewall backends; see src/firewall/. */
export const BAN_BACKENDS = ['nftables', 'ipset', 'iptables', 'none'] as const;

const escalation = z
  .strictObject({
    /** Off: refusals never lead to bans. */
    enabled: z.boolean({ error: (issue) => expected('true or false', issue.input) }).default(true),
    /** Refused requests (strikes) within `window` that earn a ban. A person who reads a 429 slows down; thirty in a minute is a program. */
    strikes: positiveInt().default(30),
    /** The sliding window strikes are counted in. */
    window: durationMs('60s').default(60_000),
    /** First ban of an address. */
    ban: durationMs('10m').default(600_000),
    /** Each further ban within `forget_after` lasts `factor` times the previous one. */
    factor: z
      .number({ error: (issue) => expected('a number ≥ 1', issue.input) })
      .min(1, { error: (issue) => `must be a number ≥ 1 (1 keeps every ban the same length), got ${describe(issue.input)}` })
      .default(2),
    /** Longest ban, however often an address comes back. */
    max_ban: durationMs('7d').default(604_800_000),
    /** A ban this long after the previous one ended starts again at `ban`. */
    forget_after: durationMs('30d').default(2_592_000_000),
    /** Banned addresses of one prefix at the same time that get the whole prefix banned; 0 never bans prefixes. */
    prefix_after: z
      .int({ error: (issue) => expected('a whole number ≥ 0', issue.input) })
      .min(0, { error: (issue) => `must be a whole number ≥ 0, got ${describe(issue.input)}` })
      .default(2),
    /** Where bans are enforced besides the proxy itself. */
    backend: z.enum(BAN_BACKENDS, { error: (issue) => `must be one of ${BAN_BACKENDS.join(', ')}, got ${describe(issue.input)}` }).default('none'),
    /** TCP ports the kernel drops banned sources on: portcullis's own listening port(s). */
    ports: z.array(port).min(1, { error: 'must list at least one port' }).default([80, 443]),
    /** Log and count the bans that would be made, enforce none. */
    dry_run: z.boolean({ error: (issue) => expected('true or false', issue.input) }).default(false),
    /** Status the proxy answers banned clients with (those it still sees, e.g. behind a CDN). */
    status: httpStatus.default(403),
    /** How long the proxy holds a banned client's request before answering it; 0s answers at once. */
    tarpit: durationMs('5s', 'none')
      .refine((ms) => ms <= 300_000, { error: 'must be at most 5m: a longer hold ties up sockets and slows a flooder no further' })
      .default(5_000),
    /** Connections held by the tarpit at once; past it, banned clients are answered at once. */
    tarpit_max: positiveInt().default(1_000),
    /** Most bans active at once (kernel set size); beyond it a ban is an error, logged and counted. ~300 bytes each. */
    max_bans: positiveInt().default(1_000_000),
    /** Addresses and prefixes whose ban history is remembered for growing ban times. ~150 bytes each. */
    max_history: positiveInt().default(1_000_000),
  })
  .superRefine((value, ctx) => {
    if (value.max_ban < value.ban) ctx.addIssue({ code: 'custom', message: 'must not be shorter than escalation.ban', path: ['max_ban'] });
  });

const admin = z.strictObject({
  /** The admin API (/metrics, /bans, /status ...). Loopback by default: it reveals client addresses. */
  listen: listenAddress.default('127.0.0.1:9181'),
  /**
   * File holding the bearer token that state-changing calls need (one line;
   * PORTCULLIS_ADMIN_TOKEN overrides it). Absent: such calls are refused.
   */
  token_file: text('a file path').optional(),
  /**
   * Host names (and `name:port`) the admin API answers besides its own listen
   * address and `localhost`, e.g. `web1:9181` for a remote Prometheus. Any other
   * `Host` is refused, so a web page cannot reach the API by DNS rebinding.
   */
  allowed_hosts: z
    .array(
      // Checked here with the parser the API uses, so an entry that could never match (`http://web1`, `web1.`) is an error, not a silent no-op.
      text('a host name like web1 or web1:9181').refine((value) => parseHostAuthority(value) !== null, {
        error: (issue) => `must be a host name or address with an optional port, like web1, web1:9181, 192.0.2.7 or [2001:db8::1]:9181 (no scheme, path or trailing dot), got ${describe(issue.input)}`,
      }),
    )
    .default([]),
});

const webhookUrl = text('a URL like https://hooks.example.com/portcullis').refine(
  (value) => {
    try {
      const url = new URL(value);
      return url.protocol === 'http:' || url.protocol === 'https:';
    } catch {
      return false;
    }
  },
  { error: (issue) => `must be an http:// or https:// URL, got ${describe(issue.input)}` },
);

const webhook = z.strictObject({
  url: webhookUrl,
  /** Extra request headers, e.g. an Authorization the receiver expects. */
  headers: z.record(z.string(), text('a header value')).default({}),
});

const alerts = z.strictObject({
  /** Receivers of a JSON POST on every ban and when an attack starts and ends. */
  webhooks: z.array(webhook).default([]),
  /** Refused requests per second (averaged over 10 s) that make an attack; it ends when the rate stays below for a minute. */
  attack_threshold: z
    .number({ error: (issue) => expected('a number of refused requests per second', issue.input) })
    .positive({ error: (issue) => `must be a positive number of refused requests per second, got ${describe(issue.input)}` })
    .default(50),
  /** How long one delivery attempt may take. */
  timeout: durationMs('5s').default(5_000),
});

const certificatePair = z.strictObject({
  /** The certificate, PEM, its chain after it (certbot's fullchain.pem). */
  cert: text('a file path'),
  /** Its private key, PEM, unencrypted (certbot's privkey.pem). */
  key: text('a file path'),
});

/**
 * Certificates for the TLS listeners. The host names each one serves are read
 * from the certificate itself (subjectAltName, else CN), and SNI picks among
 * them. All of it reloads: certificates are watched, and re-read on SIGHUP
 * and `portcullis reload`; a bad new file keeps the old certificate.
 */
const tls = z
  .strictObject({
    /** Certificate and key file pairs, in order: where two cover one name, the first serves it. */
    certificates: z.array(certificatePair).default([]),
    /** A directory laid out like certbot's /etc/letsencrypt/live: each NAME/fullchain.pem with NAME/privkey.pem is served, after `certificates`. */
    certbot_live: text('a directory path').optional(),
    /**
     * The certificate for clients that send no server name (SNI), or one no
     * certificate covers: a certificate's name (its certbot folder, or its
     * first host name) or a host name it covers. Absent: the first certificate.
     */
    default: text('a certificate name like example.org').optional(),
  })
  .superRefine((value, ctx) => {
    const seen = new Set<string>();
    value.certificates.forEach((pair, index) => {
      if (seen.has(pair.cert)) ctx.addIssue({ code: 'custom', message: `${pair.cert} is listed twice`, path: ['certificates', index, 'cert'] });
      seen.add(pair.cert);
    });
    if (value.default !== undefined && value.certificates.length === 0 && value.certbot_live === undefined) {
      ctx.addIssue({ code: 'custom', message: 'names a default certificate, but neither tls.certificates nor tls.certbot_live gives any', path: ['default'] });
    }
  });

const HOST_PATTERN_HINTS: Readonly<Record<HostPatternProblem, string>> = {
  port: ' (a site is chosen by name, without port)',
  star: ' (`*` only as the first label; for every other name use default: true)',
  ipv6: ' (IPv6 literals are not supported)',
  invalid: '',
};

/** A `sites[].hosts` entry, made canonical (lower case, punycode, no trailing dot) as request hosts are compared. */
const hostPattern = text('a host name like example.org').transform((value, ctx) => {
  const parsed = parseHostPattern(value);
  if (typeof parsed === 'string') {
    ctx.issues.push({ code: 'custom', input: value, message: `must be a host name like example.org or *.example.org${HOST_PATTERN_HINTS[parsed]}, got ${describe(value)}` });
    return z.NEVER;
  }
  return parsed.text;
});

/**
 * A site's `concurrency`: with its own `upstream`, that upstream's cap; without,
 * a sub-cap inside the default upstream's. Keys left out take the top-level
 * `concurrency` value, so none has a default of its own here.
 */
const siteConcurrency = z.strictObject({
  upstream_max: positiveInt().optional(),
  per_client_max: positiveInt().optional(),
  queue_max: positiveInt().optional(),
  per_client_queue_max: positiveInt().optional(),
  queue_timeout: durationMs('2s').optional(),
});

/**
 * One site: the requests whose host (absolute-form authority, else Host, else
 * :authority) its `hosts` match, chosen as Apache chooses the vhost. The
 * top-level limits and blocks apply inside it too, unless a site rule of the
 * same name replaces one or `disable` switches it off.
 */
const site = z.strictObject({
  /** Names the site in metrics, logs and ban reasons. */
  name: ruleName,
  /** Exact names and `*.example.org` wildcards; the first site in policy order that matches wins. */
  hosts: z.array(hostPattern).min(1, { error: 'must list at least one host name' }),
  /** Serve the hosts no site names from this site (Apache's first vhost); false: from the top-level policy. */
  default: z.boolean({ error: (issue) => expected('true or false', issue.input) }).default(false),
  limits: z.array(limitRule).default([]),
  block: z.array(blockRule).default([]),
  clients: z
    .strictObject({
      /** CIDRs exempt from this site's limits only; who is never banned comes from the top-level clients. */
      allow: z.array(cidr).default([]),
    })
    .prefault({}),
  concurrency: siteConcurrency.optional(),
  /** Where this site's requests go, whatever listener they came in on. Absent: the listener's upstream. */
  upstream: upstreamUrl.optional(),
  escalation: z
    .strictObject({
      /** Status banned clients are answered with on this site. Absent: the top-level escalation.status. */
      status: httpStatus.optional(),
    })
    .prefault({}),
  /** Global rules (limits or blocks, by name; a nameless block by its path) that do not apply on this site. */
  disable: z.array(text('a rule name')).default([]),
});

const redisUrl = text('a URL like redis://127.0.0.1:6379').refine(
  (value) => {
    try {
      const url = new URL(value);
      return url.protocol === 'redis:' || url.protocol === 'rediss:';
    } catch {
      return false;
    }
  },
  { error: (issue) => `must be a redis:// or rediss:// URL, got ${describe(issue.input)}` },
);

/**
 * Where bucket levels, strikes and bans are shared between portcullis nodes
 * (README, "More than one node"). `memory`: this node only.
 */
const store = z
  .strictObject({
    type: z.enum(['memory', 'redis'], { error: (issue) => `must be memory or redis, got ${describe(issue.input)}` }).default('memory'),
    /** One Redis server (`redis://`, `rediss://` for TLS; user and password in the URL), or the first node of a cluster. */
    url: redisUrl.optional(),
    /** Redis Cluster: these are seed nodes, the client discovers the rest. */
    cluster: z.boolean({ error: (issue) => expected('true or false', issue.input) }).default(false),
    /** Redis Sentinel: `HOST:PORT` of each sentinel, with `sentinel_name` the monitored master. */
    sentinels: z.array(text('a sentinel address like 127.0.0.1:26379')).default([]),
    sentinel_name: text('the master name the sentinels monitor').optional(),
    /** Put before every key and channel, so several portcullis clusters can share one Redis. */
    prefix: text('a key prefix like portcullis:').default('portcullis:'),
    /** Longest a request waits for Redis; past it the node's own decision stands. */
    timeout: durationMs('50ms').default(50),
  })
  .superRefine((value, ctx) => {
    if (value.type !== 'redis') return;
    if (value.sentinels.length === 0 && value.url === undefined) ctx.addIssue({ code: 'custom', message: 'type redis needs url (or sentinels with sentinel_name)', path: ['url'] });
    if (value.sentinels.length > 0 && value.sentinel_name === undefined) ctx.addIssue({ code: 'custom', message: 'sentinels need sentinel_name, the master they monitor', path: ['sentinel_name'] });
    if (value.cluster && value.sentinels.length > 0) ctx.addIssue({ code: 'custom', message: 'give either cluster or sentinels, not both', path: ['cluster'] });
    if (value.timeout < 1 || value.timeout > 5_000) ctx.addIssue({ code: 'custom', message: 'must be between 1ms and 5s: every request may wait this long for Redis', path: ['timeout'] });
  });

/** The whole policy file. */
export const policySchema = z
  .strictObject({
    /** Where the proxy listens: `HOST:PORT`, or a list of plain and TLS listeners. */
    listen: listen.default([{ address: '0.0.0.0:8000', tls: false, redirect_https: false }]),
    /** The origin (Apache) requests are forwarded to. */
    upstream: upstreamUrl.default('http://127.0.0.1:8080'),
    clients: clients.prefault({}),
    limits: z.array(limitRule).default([]),
    block: z.array(blockRule).default([]),
    /** Per-site policy for name-based virtual hosts (README, "Several sites"). */
    sites: z.array(site).default([]),
    concurrency: concurrency.prefault({}),
    connections: connections.prefault({}),
    escalation: escalation.prefault({}),
    /** Where portcullis keeps state that must survive a restart (active bans, ban history). */
    state_dir: text('a directory path').default('/var/lib/portcullis'),
    timeouts: timeouts.prefault({}),
    request: request.prefault({}),
    buffering: buffering.prefault({}),
    admin: admin.prefault({}),
    alerts: alerts.prefault({}),
    tls: tls.prefault({}),
    store: store.prefault({}),
    /** Apache `combined`-format log of requests forwarded upstream, so existing log tooling keeps working. Absent: none. */
    access_log: text('a file path').optional(),
    /**
     * `combined`, or `vhost_combined` (Apache's: the site's host and the port
     * first), so that `portcullis replay` and per-vhost log tools tell sites apart.
     */
    access_log_format: z.enum(['combined', 'vhost_combined'], { error: (issue) => `must be combined or vhost_combined, got ${describe(issue.input)}` }).default('combined'),
    /**
     * Also log the requests portcullis answered itself (blocked, limited,
     * malformed, banned, 503 busy, body refused, redirected to HTTPS), each
     * as the Apache line with portcullis's status and one trailing field
     * `"portcullis:KIND:DETAIL"`, so `portcullis replay` of this log sees
     * every request the engine saw. Off by default: the log stays exactly
     * what Apache would write.
     */
    access_log_refused: z.boolean({ error: (issue) => expected('true or false', issue.input) }).default(false),
  })
  .superRefine((policy, ctx) => {
    const addresses = new Set<string>();
    policy.listen.forEach((listener, index) => {
      // Port 0 asks the kernel for a free port each time (tests): never a clash.
      if (addresses.has(listener.address) && !listener.address.endsWith(':0')) ctx.addIssue({ code: 'custom', message: `${listener.address} is listed twice`, path: ['listen', index] });
      addresses.add(listener.address);
      if (listener.tls && policy.tls.certificates.length === 0 && policy.tls.certbot_live === undefined) {
        ctx.addIssue({ code: 'custom', message: 'is a TLS listener, but there is no certificate to serve: add tls.certificates or tls.certbot_live', path: ['listen', index, 'tls'] });
      }
    });
    checkRulesAndSites(policy, ctx);
    if (policy.timeouts.client_request < policy.timeouts.client_headers) {
      ctx.addIssue({ code: 'custom', message: 'must not be shorter than timeouts.client_headers', path: ['timeouts', 'client_request'] });
    }
    if (policy.concurrency.per_client_max > policy.concurrency.upstream_max) {
      ctx.addIssue({ code: 'custom', message: 'must not be larger than concurrency.upstream_max', path: ['concurrency', 'per_client_max'] });
    }
  });

/** A validated policy, with durations in ms, sizes in bytes and rates parsed. */
export type PolicyConfig = z.output<typeof policySchema>;
export type LimitRuleConfig = PolicyConfig['limits'][number];
export type BlockRuleConfig = PolicyConfig['block'][number];
export type SiteConfig = PolicyConfig['sites'][number];
export type BucketConfig = NonNullable<LimitRuleConfig['per_ip']>;
export type EscalationConfig = PolicyConfig['escalation'];
export type AlertsConfig = PolicyConfig['alerts'];
export type BufferingConfig = PolicyConfig['buffering'];
export type WebhookConfig = AlertsConfig['webhooks'][number];
export type TlsConfig = PolicyConfig['tls'];
export type StoreConfig = PolicyConfig['store'];
export type RuleMode = (typeof RULE_MODES)[number];
