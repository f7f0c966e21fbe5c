import type { Logger } from 'pino';
import type { BucketSpec } from '../limiter/bucket-spec.js';
import { ADMITTED, type TakeOutcome } from '../limiter/bucket-store.js';
import type { SharedBucketStore, SharedTake, SharedUnavailable } from '../limiter/shared-bucket-store.js';
import type { ClusterMetrics } from '../metrics/cluster-metrics.js';
import type { Timers } from '../core/timers.js';
import type { RedisClient } from './redis-connection.js';

/**
 * Token buckets in Redis, all of one request in one atomic script on Redis's
 * own clock (`TIME`), so clock skew between nodes does not matter. The same
 * arithmetic as the memory store: refill at `rate` per ms up to `burst`, pay
 * `cost` (with the same 1e-9 tolerance), all buckets or none. Each bucket is a hash (`t` tokens, `m` ms)
 * that expires once it would be full again: Redis needs no persistence for
 * them. Returns {0, 0} when admitted, else {index of the bucket with the
 * longest wait (1-based), that wait in ms}.
 */
const TAKE_SCRIPT = `
local now
do local t = redis.call('TIME'); now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end
local n = #KEYS
local levels = {}
local worst, worstWait = 0, 0
for i = 1, n do
  local rate, burst, cost = tonumber(ARGV[i * 3 - 2]), tonumber(ARGV[i * 3 - 1]), tonumber(ARGV[i * 3])
  local v = redis.call('HMGET', KEYS[i], 't', 'm')
  local tokens = burst
  if v[1] then tokens = math.min(burst, tonumber(v[1]) + math.max(0, now - tonumber(v[2])) * rate) end
  levels[i] = tokens
  -- The memory store's tolerance (token-bucket.ts): a float sum may land a hair under a whole token.
  if tokens + 1e-9 < cost then
    local wait = math.ceil((cost - tokens) / rate)
    if wait > worstWait then worst, worstWait = i, wait end
  end
end
if worst > 0 then return {worst, worstWait} end
for i = 1, n do
  local rate, burst, cost = tonumber(ARGV[i * 3 - 2]), tonumber(ARGV[i * 3 - 1]), tonumber(ARGV[i * 3])
  local left = levels[i] - cost
  redis.call('HSET', KEYS[i], 't', string.format('%.6f', left), 'm', now)
  redis.call('PEXPIRE', KEYS[i], math.ceil((burst - left) / rate) + 1000)
end
return {0, 0}
`;

/** Checks answered in a row that end an outage in the log (a judgement call: a fraction of a second of traffic on a busy node). */
const RECOVERY_CHECKS = 20;

interface TakeCommand {
  portcullisTake(keyCount: number, ...keysAndArgs: (string | number)[]): Promise<[number, number]>;
}

/** What the store tells the shell about its health, so it can log once per outage and reconcile on return. */
export interface SharedStoreEvents {
  /** The store stopped answering (first failure of an outage). */
  onDown(reason: string): void;
  /** It answers again. */
  onUp(): void;
}

/**
 * The shared bucket store of cluster mode. A request waits at most
 * `deadlineMs` (store.timeout): the connection's command timeout bounds one
 * command, and a deadline of our own bounds the whole check, which ioredis
 * may resend (a script Redis has forgotten is sent again in full; a cluster
 * redirect or failover retries). Past it, or while Redis is down, the answer
 * is "unavailable" and the node's own decision stands.
 */
export class RedisBucketStore implements SharedBucketStore {
  readonly #redis: RedisClient & TakeCommand;
  readonly #prefix: string;
  readonly #metrics: ClusterMetrics;
  readonly #events: SharedStoreEvents;
  #up = true;
  /** Whether an outage is open in the log (see #markDown). */
  #outage = false;
  /** Checks answered in a row during an outage. */
  #answered = 0;

  readonly #deadline: { readonly ms: number; readonly timers: Timers } | null;

  /** `deadline`: the longest a check may take in all (store.timeout); absent: the connection's command timeout alone. */
  constructor(redis: RedisClient, prefix: string, metrics: ClusterMetrics, events: SharedStoreEvents, deadline?: { readonly ms: number; readonly timers: Timers }) {
    this.#deadline = deadline ?? null;
    redis.defineCommand('portcullisTake', { lua: TAKE_SCRIPT });
    this.#redis = redis as RedisClient & TakeCommand;
    this.#prefix = prefix;
    this.#metrics = metrics;
    this.#events = events;
  }

  /** `command`, or a rejection named a timeout once the deadline has passed (the command's late answer is dropped). */
  #withinDeadline<T>(command: Promise<T>): Promise<T> {
    const deadline = this.#deadline;
    if (deadline === null) return command;
    return new Promise<T>((resolve, reject) => {
      const timer = deadline.timers.setTimeout(() => reject(new Error(`shared check timed out after ${deadline.ms} ms`)), deadline.ms);
      command.then(
        (value) => (deadline.timers.clearTimeout(timer), resolve(value)),
        (error: unknown) => (deadline.timers.clearTimeout(timer), reject(error)),
      );
    });
  }

  /** Whether the last check reached Redis. */
  get up(): boolean {
    return this.#up;
  }

  /**
   * Redis did not answer at start, which the caller has logged: the store
   * starts down, and the outage is open, so the connection's `ready` (see
   * connected) or steady answers end it. Without this, a node started during
   * an outage kept `portcullis_store_shared_up 0` for good once Redis came
   * back before any check failed.
   */
  startedDown(): void {
    this.#setUp(false);
    this.#outage = true;
    this.#answered = 0;
  }

  /** The connection is ready again (ioredis's `ready`, a reconnect): shared checks resume, and an outage ends. */
  connected(): void {
    this.#setUp(true);
    this.#endOutage();
  }

  async take(request: SharedTake): Promise<TakeOutcome | SharedUnavailable> {
    const keys: string[] = [];
    const args: number[] = [];
    const buckets: BucketSpec[] = [];
    // One hash tag for every key of the request: one Redis Cluster slot, one atomic script.
    const tag = `${this.#prefix}{${request.hashTag}}:`;
    for (const take of request.takes) {
      for (const bucket of take.buckets) {
        keys.push(`${tag}${take.key}|${bucket.id}`);
        args.push(bucket.ratePerMs, bucket.burst, bucket.cost);
        buckets.push(bucket);
      }
    }
    if (keys.length === 0) return ADMITTED;
    let answer: [number, number];
    try {
      answer = await this.#withinDeadline(this.#redis.portcullisTake(keys.length, ...keys, ...args));
    } catch (error) {
      const reason = unavailableReason(error as Error);
      this.#metrics.countCheck(reason);
      this.#markDown(`${reason}: ${(error as Error).message}`);
      return { admitted: null, reason };
    }
    this.#markUp();
    const [worst, waitMs] = answer;
    if (worst === 0) {
      this.#metrics.countCheck('admitted');
      return ADMITTED;
    }
    this.#metrics.countCheck('refused');
    return { admitted: false, bucket: buckets[worst - 1] as BucketSpec, retryAfterMs: waitMs };
  }

  /**
   * The gauge follows every check; the log follows outages. An outage starts
   * at the first check Redis misses and ends at a reconnect or after
   * RECOVERY_CHECKS answered in a row, so a Redis hovering around the
   * timeout (every other check late) logs one outage, not two lines a request.
   */
  #markDown(reason: string): void {
    this.#setUp(false);
    this.#answered = 0;
    if (this.#outage) return;
    this.#outage = true;
    this.#events.onDown(reason);
  }

  #markUp(): void {
    this.#setUp(true);
    if (this.#outage && ++this.#answered >= RECOVERY_CHECKS) this.#endOutage();
  }

  #endOutage(): void {
    if (!this.#outage) return;
    this.#outage = false;
    this.#answered = 0;
    this.#events.onUp();
  }

  #setUp(up: boolean): void {
    if (this.#up === up) return;
    this.#up = up;
    this.#metrics.setUp(up);
  }
}

function unavailableReason(error: Error): 'timeout' | 'down' | 'error' {
  if (/timed? ?out/i.test(error.message)) return 'timeout';
  if (/writeable|closed|ECONNREFUSED|ECONNRESET|connect|offline|Connection is closed/i.test(error.message)) return 'down';
  return 'error';
}

/** For logs: a logger-backed SharedStoreEvents that says so once per outage. */
export function loggedStoreEvents(logger: Logger): SharedStoreEvents {
  return {
    onDown: (reason) => logger.warn({ reason }, 'shared store (Redis) unreachable: deciding on this node\'s own buckets until it is back (each node allows the full rate by itself meanwhile)'),
    onUp: () => logger.info('shared store (Redis) answers again: shared limits resume'),
  };
}
