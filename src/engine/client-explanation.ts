import type { Ban, BanHistory } from '../escalation/ban.js';
import type { ClientKey } from '../identity/client-key.js';
import type { BucketScope, BucketSpec } from '../limiter/bucket-spec.js';
import type { BucketStore } from '../limiter/bucket-store.js';
import type { CompiledPolicy, CompiledSite } from '../policy/compiled-policy.js';
import type { EngineEscalation } from './engine-escalation.js';

/** One bucket of one client key, as it stands. */
export interface BucketLevel {
  readonly rule: string;
  /** The site whose own rule this bucket is; absent for a global rule's (one bucket on every site). */
  readonly site?: string;
  readonly scope: BucketSpec['scope'];
  /** The address or prefix the bucket counts. */
  readonly key: string;
  readonly rate: string;
  readonly burst: number;
  /** Tokens available now; a request of the rule needs `cost`. */
  readonly tokens: number;
  readonly cost: number;
  /** False when the key has no state yet: its buckets are full. */
  readonly tracked: boolean;
  readonly shadow: boolean;
}

/** What portcullis knows about one ban target's past. */
export interface TargetRecord {
  readonly target: string;
  readonly history: BanHistory | null;
  /** The ban it would get now: its number and length. */
  readonly nextBan: { readonly nth: number; readonly durationMs: number };
}

/** Why a client is where it is, for `portcullis explain`. Times are monotonic ms. */
export interface ClientExplanation {
  readonly client: ClientKey;
  readonly nowMs: number;
  /** In clients.allow: never limited (blocks still apply). */
  readonly allowlisted: boolean;
  /** Allowlisted, a trusted proxy or the upstream: never banned. */
  readonly neverBanned: boolean;
  readonly buckets: readonly BucketLevel[];
  /** Strikes in the window, of the threshold that earns a ban; null without escalation. */
  readonly strikes: { readonly count: number; readonly threshold: number; readonly windowMs: number } | null;
  /** Bans covering the client now: its address, its prefix or a wider network (dry-run ones included). */
  readonly activeBans: readonly Ban[];
  readonly ip: TargetRecord | null;
  readonly prefix: TargetRecord | null;
}

interface ExplainParts {
  readonly policy: CompiledPolicy;
  readonly store: BucketStore;
  readonly escalation: EngineEscalation | null;
}

/** Gathers a client's state from the engine's parts without charging or changing anything. */
export function explainClient(parts: ExplainParts, client: ClientKey, nowMs: number): ClientExplanation {
  const { policy, store, escalation } = parts;
  const shadowRules = new Set(policy.config.limits.filter((rule) => rule.mode === 'shadow').map((rule) => rule.name));
  const levelsOf = (scope: BucketScope, buckets: readonly BucketSpec[], site?: CompiledSite): BucketLevel[] => {
    const key = scope === 'ip' ? client.ip : client.prefix;
    const levels = store.peek(site === undefined ? '' : (site.owner?.keyPrefix ?? ''), scope, client, nowMs);
    // A site's own buckets are listed where the client has been: a list of every site's would grow with the policy, not the client.
    if (site !== undefined && levels === null) return [];
    return buckets.map((bucket) => ({
      rule: bucket.rule,
      ...(site === undefined ? {} : { site: site.name }),
      scope: bucket.scope,
      key,
      rate: bucket.rateText,
      burst: bucket.burst,
      tokens: levels?.get(bucket.id) ?? bucket.burst,
      cost: bucket.cost,
      tracked: levels?.has(bucket.id) ?? false,
      shadow: site === undefined ? shadowRules.has(bucket.rule) : site.shadowLimits.has(bucket.rule),
    }));
  };
  const buckets = [
    ...levelsOf('ip', policy.ipLayout.buckets),
    ...levelsOf('prefix', policy.prefixLayout.buckets),
    ...policy.sites.flatMap((site) =>
      site.owner === null ? [] : [...levelsOf('ip', site.owner.ipLayout.buckets, site), ...levelsOf('prefix', site.owner.prefixLayout.buckets, site)],
    ),
  ];
  if (escalation === null) {
    return { client, nowMs, allowlisted: policy.allow.has(client.addr), neverBanned: false, buckets, strikes: null, activeBans: [], ip: null, prefix: null };
  }

  const { ledger, escalator } = escalation;
  const record = (target: string): TargetRecord => ({ target, history: ledger.historyOf(target) ?? null, nextBan: escalator.nextBan(target, nowMs) });
  const enforced = ledger.find(client, nowMs);
  const exact = [ledger.get(client.ip, nowMs), ledger.get(client.prefix, nowMs)];
  const activeBans = [...new Set([enforced, ...exact].filter((ban): ban is Ban => ban !== null))];
  return {
    client,
    nowMs,
    allowlisted: policy.allow.has(client.addr),
    neverBanned: escalator.protects(client.addr),
    buckets,
    strikes: { count: escalator.strikesOf(client, nowMs), threshold: escalator.config.strikes, windowMs: escalator.config.window },
    activeBans,
    ip: record(client.ip),
    prefix: record(client.prefix),
  };
}
