import { absoluteFormPathStart } from './absolute-form.js';

/** A request-target as it is forwarded: origin-form, plus the authority an absolute-form target named. */
export interface OriginFormTarget {
  /** `/path?query` exactly as the client spelled it (or `*`): the bytes decided on are the bytes forwarded. */
  readonly target: string;
  /** `host[:port]` of an absolute-form target, which replaces `Host` (RFC 9112 §3.2.2); null for origin-form. */
  readonly authority: string | null;
}

/**
 * Turns a raw request-target into the origin-form that is both decided on and
 * forwarded. An absolute-form target (`http://host/p?q`, as sent to forward
 * proxies) keeps its path and query byte for byte: no URL parser rewrites it
 * (the WHATWG parser turns `\\` into `/` and resolves dot segments, which let
 * `http://h/foo\\..\\xmlrpc.php` past a block on `/xmlrpc.php`). A fragment is
 * cut off (a request with one is refused anyway, as Apache refuses it: see
 * findFramingProblem). Returns null for a target that is neither form
 * (or has an unreadable authority): the engine refuses those with 400.
 */
export function toOriginForm(raw: string): OriginFormTarget | null {
  if (raw.charCodeAt(0) === 0x2f || raw === '*') return { target: raw, authority: null };
  const pathStart = absoluteFormPathStart(raw);
  if (pathStart < 0) return null;
  const authorityStart = raw.indexOf('//') === raw.indexOf(':') + 1 ? raw.indexOf(':') + 3 : -1;
  const authority = authorityStart < 0 ? null : raw.slice(authorityStart, pathStart);
  const hash = raw.indexOf('#', pathStart);
  let rest = hash < 0 ? raw.slice(pathStart) : raw.slice(pathStart, hash);
  if (rest === '' || rest.charCodeAt(0) === 0x3f) rest = `/${rest}`;
  else if (rest.charCodeAt(0) !== 0x2f) return null;
  return { target: rest, authority: authority === '' ? null : authority };
}
