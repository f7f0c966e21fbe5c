import type { WebhookConfig } from '../config/schema.js';
import type { Delivery } from './webhook-delivery.js';

/**
 * Everything about one configured webhook. Each has its own queue, bound and
 * in-flight cap, so a receiver that is down or hangs neither takes the
 * others' connection slots nor pushes their alerts out of a shared queue.
 */
export interface Channel {
  readonly key: string;
  readonly webhook: WebhookConfig;
  /** Waiting deliveries, oldest (lowest seq) first; in-flight ones are not here. */
  readonly queue: Delivery[];
  readonly inFlight: Map<Delivery, { controller: AbortController; done: Promise<void> }>;
  timer: unknown;
  pumpScheduled: boolean;
  /** No longer configured: finishes what it holds, takes nothing new, then is forgotten. */
  retired: boolean;
}

/** A channel for `webhook` with nothing queued yet. */
export function newChannel(key: string, webhook: WebhookConfig): Channel {
  return { key, webhook, queue: [], inFlight: new Map(), timer: null, pumpScheduled: false, retired: false };
}

/** A webhook's identity: its URL and headers, so a changed secret header is a new channel and the old one drains. */
export function channelKey(webhook: WebhookConfig): string {
  return JSON.stringify([webhook.url, Object.entries(webhook.headers).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
}

/**
 * The webhook's origin and nothing more, for logs: chat webhooks carry their
 * secret in the path or query (`/services/T000/B000/XXXX`), and logs are read
 * by more people than the policy file.
 */
export function describeUrl(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid URL)';
  }
}
