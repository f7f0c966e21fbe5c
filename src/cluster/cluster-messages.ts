/*
 * What nodes say to each other on the cluster channel, and how a message
 * heard there is read: as untrusted input (anything that can publish to the
 * Redis can write it), bounded in size and checked field by field, so a bad
 * one is dropped rather than applied or thrown.
 */

/** Distinct clients in one strike batch, at most: a flood of many addresses sends a full batch at once and starts the next, never an unbounded one. */
export const STRIKE_BATCH_MAX = 5_000;
/**
 * Longest message applied from the channel, in characters: a full strike
 * batch (5,000 entries of an IPv6 address, a weight, a rule and a site) is
 * well under a megabyte, a ban under a few kilobytes.
 */
export const MAX_MESSAGE_CHARS = 1_048_576;
/** Longest address or ban target in a message (an IPv6 CIDR is at most 43). */
const MAX_ADDRESS_CHARS = 64;
/** Longest rule or site name in a strike (a judgement call: names come from the policy). */
const MAX_NAME_CHARS = 256;

/** One strike batch entry: the address, the strikes, the rule and site that refused it. */
export type StrikeEntry = readonly [ip: string, weight: number, rule: string, site: string | null];

/** One message on the cluster channel. */
export type ClusterMessage =
  | { readonly from: string; readonly kind: 'strikes'; readonly strikes: readonly StrikeEntry[] }
  | { readonly from: string; readonly kind: 'ban'; readonly ban: unknown }
  | { readonly from: string; readonly kind: 'lift'; readonly target: string };

/** A message read off the channel: what it says, or why it is dropped. */
export type HeardMessage = { readonly message: ClusterMessage } | { readonly dropped: 'oversized' | 'malformed' };

/**
 * Reads one message: size, JSON, shape, and for strikes every entry (bad
 * entries are left out, at most STRIKE_BATCH_MAX kept). A ban's own fields
 * are checked where it is applied (fromSharedBan), as the state file's are.
 */
export function readClusterMessage(text: string): HeardMessage {
  if (text.length > MAX_MESSAGE_CHARS) return { dropped: 'oversized' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { dropped: 'malformed' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { dropped: 'malformed' };
  const fields = value as Record<string, unknown>;
  const from = typeof fields.from === 'string' ? fields.from : '';
  if (fields.kind === 'strikes' && Array.isArray(fields.strikes)) {
    // A node sends at most STRIKE_BATCH_MAX per batch: more is not a node's.
    const strikes = (fields.strikes.slice(0, STRIKE_BATCH_MAX) as unknown[]).filter(isStrikeEntry);
    return { message: { from, kind: 'strikes', strikes } };
  }
  if (fields.kind === 'ban') return { message: { from, kind: 'ban', ban: fields.ban } };
  if (fields.kind === 'lift' && typeof fields.target === 'string' && fields.target.length <= MAX_ADDRESS_CHARS) return { message: { from, kind: 'lift', target: fields.target } };
  return { dropped: 'malformed' };
}

function isStrikeEntry(entry: unknown): entry is StrikeEntry {
  if (!Array.isArray(entry)) return false;
  const [ip, weight, rule, site] = entry as unknown[];
  if (typeof ip !== 'string' || ip.length > MAX_ADDRESS_CHARS || typeof weight !== 'number' || !Number.isFinite(weight) || !(weight > 0)) return false;
  if (typeof rule !== 'string' || rule.length > MAX_NAME_CHARS) return false;
  return site === null || site === undefined || (typeof site === 'string' && site.length <= MAX_NAME_CHARS);
}
