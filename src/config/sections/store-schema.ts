import { z } from 'zod';
import { describe, durationMs, expected, text, urlWithScheme } from './schema-values.js';

/* `store`: where bucket state lives (this process, or Redis for a cluster). */

const redisUrl = urlWithScheme('a URL like redis://127.0.0.1:6379', ['redis:', 'rediss:'], 'a redis:// or rediss:// URL');

/**
 * Where bucket levels, strikes and bans are shared between portcullis nodes
 * (README, "More than one node"). `memory`: this node only.
 */
export const store = z
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
