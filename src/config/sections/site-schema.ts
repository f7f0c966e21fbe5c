import { z } from 'zod';
import { parseHostPattern, type HostPatternProblem } from '../../policy/host-pattern.js';
import { cidr, describe, durationMs, expected, httpStatus, positiveInt, text, upstreamUrl } from './schema-values.js';
import { blockRule, limitRule, ruleName } from './rule-schema.js';

/* `sites`: per-site hosts, upstream, rules and capacity. */

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
export const site = z.strictObject({
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
