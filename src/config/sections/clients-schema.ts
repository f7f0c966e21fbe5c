import { z } from 'zod';
import { cidr, describe, expected, positiveInt } from './schema-values.js';

/* `clients`: who a client is (trusted proxies, prefixes) and how many are tracked. */

/** `clients`: trusted proxies, the allowlist, prefix lengths and the tracked-client cap. */
export const clients = z.strictObject({
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
  /** Cap on addresses and prefixes with bucket state; least recently seen are forgotten first. ~120 bytes each. */
  max_tracked: positiveInt()
    .max(2_147_483_647, { error: (issue) => `must be at most 2147483647 (the bucket table numbers its rows in 32 bits; a million clients take about 200 MB), got ${describe(issue.input)}` })
    .default(1_000_000),
});
