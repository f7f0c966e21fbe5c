import { lookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';
import type { Logger } from 'pino';

/** The upstream's addresses, never to be banned (a ban would cut portcullis off from Apache); a hostname is resolved once, at start. */
export async function resolveUpstreamAddresses(upstream: string, logger: Logger): Promise<string[]> {
  const host = new URL(upstream).hostname.replace(/^\[|\]$/g, '');
  if (ipaddr.isValid(host)) return [host];
  try {
    return (await lookup(host, { all: true })).map((entry) => entry.address);
  } catch (error) {
    logger.warn({ err: error, upstream }, 'could not resolve the upstream host to protect it from bans');
    return [];
  }
}
