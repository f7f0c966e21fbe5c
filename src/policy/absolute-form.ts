/*
 * The absolute-form request-target (`GET http://host/path HTTP/1.1`, RFC 9112
 * §3.2.2), read as Apache reads it (apr_uri_parse), so that the path decided
 * on is the path Apache resolves.
 */

const SLASH = 0x2f;
const DOT = 0x2e;
const QUESTION = 0x3f;
const HASH = 0x23;

/**
 * Where the path of an absolute-form target starts: -1 if the target is not
 * absolute-form, -2 if its scheme is not http(s) (Apache 2.4 answers 400).
 * Follows apr_uri_parse: `scheme:` then, if `//` follows, an authority that
 * ends at `/`, `?`, `#` or the end.
 */
export function absoluteFormPathStart(target: string): number {
  const colon = target.indexOf(':');
  if (colon <= 0) return -1;
  for (let i = 0; i < colon; i++) {
    if (!isSchemeChar(target.charCodeAt(i), i === 0)) return -1;
  }
  const scheme = target.slice(0, colon).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return -2;
  let i = colon + 1;
  if (target.charCodeAt(i) === SLASH && target.charCodeAt(i + 1) === SLASH) {
    i += 2;
    const authorityStart = i;
    while (i < target.length) {
      const c = target.charCodeAt(i);
      if (c === SLASH || c === QUESTION || c === HASH) break;
      i++;
    }
    // The authority becomes the Host Apache sees: it must be one we can read
    // unambiguously (no userinfo, no empty host), or the request is refused.
    if (!AUTHORITY.test(target.slice(authorityStart, i))) return -1;
  }
  return i;
}

/** host[:port], the host a reg-name or an IP literal in brackets (RFC 3986 §3.2 less userinfo). */
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=-]+)(?::[0-9]{1,5})?$/;

/** RFC 3986: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). */
function isSchemeChar(c: number, first: boolean): boolean {
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x7a) return true;
  if (first) return false;
  return (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === DOT;
}
