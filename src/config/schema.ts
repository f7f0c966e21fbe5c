import { z } from 'zod';
import { checkRulesAndSites } from './site-checks.js';
import { describe, expected, text, upstreamUrl } from './sections/schema-values.js';
import { listen } from './sections/listener-schema.js';
import { RULE_MODES, blockRule, limitRule } from './sections/rule-schema.js';
import { clients } from './sections/clients-schema.js';
import { buffering, concurrency, connections, request, timeouts } from './sections/resource-limits-schema.js';
import { escalation } from './sections/escalation-schema.js';
import { admin } from './sections/admin-schema.js';
import { alerts } from './sections/alerts-schema.js';
import { tls } from './sections/tls-schema.js';
import { site } from './sections/site-schema.js';
import { store } from './sections/store-schema.js';

export { ALSO_A_STRING, describe, KNOWN_METHODS } from './sections/schema-values.js';
export { BAN_BACKENDS } from './sections/escalation-schema.js';
export type { ListenerConfig } from './sections/listener-schema.js';
export { RULE_MODES } from './sections/rule-schema.js';

/*
 * The policy schema: the single source of the policy's shape, its types and its
 * defaults. Every object is strict (an unknown key is an error, with a
 * did-you-mean), every default is written once, here, with its unit and reason.
 * The README's policy reference and config/portcullis.yaml document these keys;
 * a test parses the shipped file so it cannot go stale.
 */

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
