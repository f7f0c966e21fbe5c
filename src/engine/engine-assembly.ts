import type { PolicyConfig } from '../config/schema.js';
import { BanLedger } from '../escalation/ban-ledger.js';
import { Escalator, type StrikeListener } from '../escalation/escalator.js';
import { NeverBanList } from '../escalation/never-ban-list.js';
import { MemoryBucketStore } from '../limiter/stores/memory-bucket-store.js';
import { compilePolicy, type CompiledPolicy } from '../policy/compiled-policy.js';
import { DecisionEngine } from './decision-engine.js';

/** What the engine is built from besides the policy; nothing here does I/O. */
export interface EngineAssemblyOptions {
  /**
   * Addresses never to be banned besides `clients.allow` and
   * `clients.trusted_proxies`: the upstream's, which the shell resolves
   * (DNS is I/O) before assembling. @default none
   */
  readonly alsoNeverBan?: readonly string[];
  /** Told of every strike counted (metrics, cluster sharing). */
  readonly onStrike?: StrikeListener;
  /** Cluster mode: admitted requests carry their takes for the shared store (DecisionEngine.settleShared). @default false */
  readonly sharedLimits?: boolean;
}

/** The decision engine and the state it decides on, assembled from one policy. */
export interface AssembledEngine {
  readonly engine: DecisionEngine;
  readonly store: MemoryBucketStore;
  readonly ledger: BanLedger;
  readonly escalator: Escalator;
  /** The compiled policy in force. */
  readonly policy: CompiledPolicy;
  /**
   * Swaps in a reloaded policy: rules, escalation settings and the never-ban
   * list. Table sizes stay as assembled (they are restart-only). Everything is
   * compiled before anything is swapped, so a throw leaves the old policy whole.
   */
  reconfigure(next: PolicyConfig): CompiledPolicy;
}

/**
 * Builds the engine with its escalation (bucket store, ban ledger, escalator,
 * never-ban list) from a validated policy, with no sockets, files, DNS, timers
 * or child processes: time reaches it only as the `nowMs` of each decision.
 * `serve` wraps it with I/O (state file, firewall, sweep); tests, benchmarks
 * and replays of recorded traffic use it as it is.
 */
export function assembleEngine(config: PolicyConfig, options: EngineAssemblyOptions = {}): AssembledEngine {
  const alsoNeverBan = options.alsoNeverBan ?? [];
  const neverBanFor = (policy: PolicyConfig) => new NeverBanList([...policy.clients.allow, ...policy.clients.trusted_proxies, ...alsoNeverBan]);
  const esc = config.escalation;
  let policy = compilePolicy(config);
  const store = new MemoryBucketStore(config.clients.max_tracked);
  const ledger = new BanLedger({ maxBans: esc.max_bans, maxHistory: esc.max_history, prefix: config.clients.prefix });
  const escalator = new Escalator({
    config: esc,
    ledger,
    neverBan: neverBanFor(config),
    maxTracked: config.clients.max_tracked,
    ...(options.onStrike ? { onStrike: options.onStrike } : {}),
  });
  const engine = new DecisionEngine(policy, store, { ledger, escalator }, options.sharedLimits ?? false);
  return {
    engine,
    store,
    ledger,
    escalator,
    get policy() {
      return policy;
    },
    reconfigure(next) {
      const compiled = compilePolicy(next);
      const neverBan = neverBanFor(next);
      engine.setPolicy(compiled);
      escalator.reconfigure(next.escalation, neverBan);
      policy = compiled;
      return compiled;
    },
  };
}
