import { METHODS, type IncomingMessage } from 'node:http';
import type { MalformedRequest } from '../engine/decision-engine.js';

const DUPLICATE_HOST: MalformedRequest = Object.freeze({ status: 400, reason: 'more than one Host header' });
const STAR_NOT_OPTIONS: MalformedRequest = Object.freeze({ status: 400, reason: 'request-target * is only allowed with OPTIONS' });
const TRANSFER_CODING: MalformedRequest = Object.freeze({ status: 501, reason: 'transfer coding other than chunked' });
const UNKNOWN_METHOD: MalformedRequest = Object.freeze({ status: 501, reason: 'method HTTP/1.1 does not know (methods are case-sensitive)' });
/**
 * The methods Node's HTTP/1.1 parser accepts (it refuses any other, lower
 * case included). HTTP/2 carries any token as `:method`, and rules match
 * methods as written: `get` would pass a limit on GET, yet PHP still runs
 * the page for it. So HTTP/2 gets the same set.
 */
const KNOWN_METHODS = new Set(METHODS);
// Browsers never send one; Apache answers 400 to any `#` in the request-target, in either form.
const FRAGMENT: MalformedRequest = Object.freeze({ status: 400, reason: 'fragment (#) in the request target' });

/**
 * What in a request's framing Apache would refuse, so that portcullis refuses
 * it first (a client mistake, answered 4xx/501) instead of passing it on and
 * reporting Apache's or undici's refusal as an upstream failure (502). Node's
 * parser already refuses the rest (bad header syntax, Content-Length with
 * Transfer-Encoding, a coding list that does not end in chunked).
 */
export function findFramingProblem(req: IncomingMessage): MalformedRequest | null {
  const raw = req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    // Cheap length test first: this runs on every request.
    if (name.length === 4 && name.toLowerCase() === 'host' && ++hosts > 1) return DUPLICATE_HOST;
  }
  if (!KNOWN_METHODS.has(req.method as string)) return UNKNOWN_METHOD;
  if (req.url === '*' && req.method !== 'OPTIONS') return STAR_NOT_OPTIONS;
  if ((req.url as string).includes('#')) return FRAGMENT;
  const coding = req.headers['transfer-encoding'];
  // Apache's http filter: any coding besides a single `chunked` is 501 Not Implemented.
  if (coding !== undefined && coding.trim().toLowerCase() !== 'chunked') return TRANSFER_CODING;
  return null;
}
