import { detachedString } from '../core/detached-string.js';
import { GenerationalCache } from '../core/generational-cache.js';
import type { LoggedRequest } from './access-log-line.js';

/** What a replay remembers of one client's requests, to tell ordinary visitors from floods. */
export interface ClientActivity {
  requests: number;
  /** GET and HEAD. */
  reads: number;
  /** Logged 2xx and 3xx: what Apache served them. */
  served: number;
  /** Requests with a browser's User-Agent. */
  browser: number;
  firstMs: number;
  lastMs: number;
  /** The last User-Agent seen and whether it is a browser's, so a client's unchanging agent is tested once. */
  lastAgent: string | null;
  lastAgentIsBrowser: boolean;
}

/*
 * What "looks like an ordinary visitor" means, stated once: most requests
 * read (GET/HEAD), most were served (2xx/3xx as logged), most carry a
 * browser's User-Agent, and they are spread over time (at least a minute
 * from first to last, at most one a second on average). Flooders fail at
 * least one of these; a visitor a policy refuses passes all of them.
 */
const MOSTLY = 0.8;
const MIN_SPAN_MS = 60_000;
const MAX_AVERAGE_PER_SECOND = 1;

/** A browser's User-Agent: Mozilla/5.0 and not a known bot, crawler or tool. */
const BROWSER = /^Mozilla\/5\.0 \(/;
const NOT_A_BROWSER = /bot|crawl|spider|slurp|curl|wget|python|go-http|java\/|libwww|httpclient|scan|headless|phantom/i;

/** Whether a User-Agent is a browser's. */
export function isBrowserAgent(agent: string | null): boolean {
  return agent !== null && BROWSER.test(agent) && !NOT_A_BROWSER.test(agent);
}

/** A fresh record for a client first seen at `atMs`. */
export function newActivity(atMs: number): ClientActivity {
  return { requests: 0, reads: 0, served: 0, browser: 0, firstMs: atMs, lastMs: atMs, lastAgent: null, lastAgentIsBrowser: false };
}

/** Adds one request to a client's record. */
export function recordActivity(activity: ClientActivity, request: LoggedRequest, atMs: number): void {
  activity.requests++;
  if (request.method === 'GET' || request.method === 'HEAD') activity.reads++;
  if (request.status >= 200 && request.status < 400) activity.served++;
  if (request.userAgent !== activity.lastAgent) {
    // Kept for as long as the client is: detached from the chunk of log it was cut from.
    activity.lastAgent = request.userAgent === null ? null : detachedString(request.userAgent);
    activity.lastAgentIsBrowser = isBrowserAgent(request.userAgent);
  }
  if (activity.lastAgentIsBrowser) activity.browser++;
  activity.lastMs = atMs;
}

/** Whether a client's requests look like an ordinary visitor's (see above). */
export function looksLikeVisitor(activity: ClientActivity): boolean {
  const span = activity.lastMs - activity.firstMs;
  return (
    activity.reads >= MOSTLY * activity.requests &&
    activity.served >= MOSTLY * activity.requests &&
    activity.browser >= MOSTLY * activity.requests &&
    span >= MIN_SPAN_MS &&
    activity.requests <= (span / 1000) * MAX_AVERAGE_PER_SECOND + 1
  );
}

/** Client activity, bounded like the proxy's tables: least recently seen forgotten first, a generation at a time. */
export class ActivityTable {
  readonly #cache: GenerationalCache<string, ClientActivity>;

  constructor(cap: number) {
    this.#cache = new GenerationalCache(cap);
  }

  /** The activity of `client`, created at `atMs` when it is new (or forgotten). */
  touch(client: string, atMs: number): ClientActivity {
    let activity = this.#cache.get(client);
    if (activity === undefined) this.#cache.set(client, (activity = newActivity(atMs)));
    return activity;
  }

  /** The activity of `client` without touching it; undefined when never seen or forgotten. */
  peek(client: string): ClientActivity | undefined {
    return this.#cache.peek(client);
  }
}
