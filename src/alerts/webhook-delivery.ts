import type { AlertEvent } from './alert.js';

/** One alert on its way to one webhook. */
export interface Delivery {
  readonly event: AlertEvent;
  readonly body: string;
  /** Order of `notify` calls; keeps a channel's queue oldest first across retries. */
  readonly seq: number;
  readonly raisedMs: number;
  attempts: number;
  /** Not attempted before this time (retry backoff). */
  dueMs: number;
}

/** What one attempt came to; a value, because a failing receiver is expected, not exceptional. */
export type Outcome =
  | { readonly kind: 'delivered'; readonly status: number }
  | { readonly kind: 'retry'; readonly why: string; readonly status?: number }
  | { readonly kind: 'refused'; readonly status: number }
  | { readonly kind: 'closed' };

/** 2xx is delivered; 429 and 5xx say "try again later"; anything else (3xx, 4xx) will not get better by retrying. */
export function classifyStatus(status: number): Outcome {
  if (status >= 200 && status < 300) return { kind: 'delivered', status };
  if (status === 429 || status >= 500) return { kind: 'retry', why: `status ${status}`, status };
  return { kind: 'refused', status };
}

/** Where to put a retried delivery so the queue stays oldest first. */
export function insertionIndex(queue: readonly Delivery[], seq: number): number {
  let low = 0;
  let high = queue.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((queue[mid] as Delivery).seq < seq) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** An attempt's network error as one line for the log: its code (`ECONNREFUSED`) first when it has one. */
export function describeError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === 'string' ? `${code}: ${message}` : message;
}
