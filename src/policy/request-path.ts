/**
 * Turns a raw HTTP request-target into the path(s) Apache may resolve it to,
 * so that a blocked path cannot be reached through an alternative spelling.
 *
 * Apache 2.4 (request.c, ap_normalize_path, ap_unescape_url) does, in order:
 *  1. strips the query and fragment; for absolute-form takes the path
 *     (only http/https schemes; others are a 400) and, for origin-form, reduces
 *     leading `//…` to one `/`;
 *  2. decodes unreserved characters (`%2e` → `.`, `%41` → `A`), removes dot
 *     segments (`..` above the root is a 400) and, with `MergeSlashes On`
 *     (the default since 2.4.39), merges `//`;
 *  3. decodes every other escape once (`%252e` is the literal `%2e`, never `.`);
 *     an invalid escape is a 400, `%00` a 404, and `%2F` depends on
 *     `AllowEncodedSlashes`: Off → 404, NoDecode → stays `%2F` (a literal name),
 *     On → decoded now, and since 2.4.49 the path is normalised again;
 *  4. maps the path onto the filesystem, where `//` is one separator, and a
 *     file followed by more segments runs with PATH_INFO (`AcceptPathInfo`).
 *
 * The proxy does not know Apache's settings, so it checks every plausible
 * outcome: the "views" returned here. Each view is decoded exactly once, has
 * its dot segments removed and its slashes merged. `views[0]` is the canonical
 * view (decode all, remove dot segments, merge slashes), suitable for logs.
 * The other views cover `MergeSlashes Off` (dot segments resolved before
 * slashes merge: `/xmlrpc.php//..` is `/xmlrpc.php/` there) and
 * `AllowEncodedSlashes On` with and without the re-normalisation
 * (`/xmlrpc.php%2F..` → `/xmlrpc.php/..`, i.e. xmlrpc.php with PATH_INFO
 * `/..`, on Apache versions that do not normalise again).
 *
 * Views are "byte strings", like Node's `req.url`: each character is one
 * byte (latin1), so `%C3%A9` and a raw UTF-8 `é` give the same view.
 * Backslash is a literal character (as in Apache on Linux). Matching is the
 * job of path-pattern.ts; case folding is left to it.
 *
 * Hot path: a target without `%`, `//` or `.`/`..` segments (almost every
 * request) is scanned once and returned as the only view, without copying
 * unless a query or fragment has to be cut off.
 */
import { absoluteFormPathStart } from './absolute-form.js';

/**
 * The outcome of {@link normalizeRequestPath}. `ok: false` means Apache would
 * refuse the target (400, or 404 for `%00`); the proxy refuses it too (400),
 * failing closed instead of guessing.
 */
export type RequestPathResult = { ok: true; views: readonly string[] } | { ok: false; reason: string };

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const QUESTION = 0x3f;
const HASH = 0x23;
const SPACE = 0x20;
const DEL = 0x7f;

/**
 * Stands for an encoded slash (`%2F`) while dot segments are removed with the
 * slash still encoded. NUL can never appear in a decoded path (raw or
 * encoded NUL is refused), so the marker cannot collide with real content.
 */
const ENCODED_SLASH = '\u0000';

export const REQUEST_PATH_REASONS = {
  badForm: 'request-target is not origin-form ("/path"), absolute-form ("http://host/path") or "*"',
  badScheme: 'absolute-form request-target with a scheme other than http or https',
  controlChar: 'request path contains a control character or space',
  badEscape: 'request path contains invalid percent-encoding',
  encodedNul: 'request path contains an encoded NUL (%00)',
} as const;

const STAR: RequestPathResult = Object.freeze({ ok: true, views: Object.freeze(['*']) });

/**
 * Normalises a raw request-target (`req.url`) into the path views a matcher
 * must check; a request matches a pattern if any view does.
 *
 * - origin-form `/a/b?q#f` → views of `/a/b`;
 * - absolute-form `http://host/a?q` (http or https, any case) → views of `/a`;
 *   an empty path is `/`; `http:/a` (no authority) is accepted, as Apache does;
 * - `*` → `['*']` (OPTIONS *); no path pattern matches it;
 * - anything else, an invalid escape (`%zz`, `%4`), `%00`, or a control
 *   character or space in the path → `{ ok: false, reason }`. Characters in
 *   the query are not checked (Apache's own parser refuses those requests).
 */
export function normalizeRequestPath(target: string): RequestPathResult {
  const length = target.length;
  let start = 0;
  const first = target.charCodeAt(0);
  if (first !== SLASH) {
    if (target === '*') return STAR;
    start = absoluteFormPathStart(target);
    if (start < 0) return { ok: false, reason: start === -2 ? REQUEST_PATH_REASONS.badScheme : REQUEST_PATH_REASONS.badForm };
  }

  // One pass: find the end of the path, refuse control characters, and note
  // whether anything (escapes, `//`, dot segments) needs the slow path.
  let end = length;
  let slow = false;
  let prev = 0;
  for (let i = start; i < length; i++) {
    const c = target.charCodeAt(i);
    if (c === QUESTION || c === HASH) {
      end = i;
      break;
    }
    if (c <= SPACE || c === DEL) return { ok: false, reason: REQUEST_PATH_REASONS.controlChar };
    if (c === PERCENT) slow = true;
    else if (prev === SLASH) {
      if (c === SLASH) slow = true;
      else if (c === DOT && isDotSegmentAt(target, i)) slow = true;
    }
    prev = c;
  }

  if (start === end) return { ok: true, views: ['/'] }; // absolute-form with an empty path
  if (target.charCodeAt(start) !== SLASH) return { ok: false, reason: REQUEST_PATH_REASONS.badForm };
  if (!slow) return { ok: true, views: [start === 0 && end === length ? target : target.slice(start, end)] };

  let path = target.slice(start, end);
  // ap_parse_uri: an origin-form target is a path, never `//authority`; leading
  // slashes are reduced to one before anything else.
  if (start === 0) {
    let s = 0;
    while (path.charCodeAt(s + 1) === SLASH) s++;
    if (s > 0) path = path.slice(s);
  }
  const decoded = decodeKeepingEncodedSlash(path);
  if (decoded === BAD_ESCAPE) return { ok: false, reason: REQUEST_PATH_REASONS.badEscape };
  if (decoded === ENCODED_NUL) return { ok: false, reason: REQUEST_PATH_REASONS.encodedNul };
  return { ok: true, views: computeViews(decoded) };
}

/**
 * Decodes every percent-escape of a path exactly once (including `%2F`) into
 * a byte string. Returns null for invalid escapes and for `%00`. Used to
 * canonicalise configured paths; request targets go through
 * {@link normalizeRequestPath}.
 */
export function decodePathOnce(path: string): string | null {
  const decoded = decodeKeepingEncodedSlash(path);
  if (decoded === BAD_ESCAPE || decoded === ENCODED_NUL) return null;
  return decoded.includes(ENCODED_SLASH) ? decoded.replaceAll(ENCODED_SLASH, '/') : decoded;
}

/** True when the `.` at `i` (just after a `/`) starts a `.` or `..` segment. */
function isDotSegmentAt(s: string, i: number): boolean {
  let next = s.charCodeAt(i + 1);
  if (next === DOT) next = s.charCodeAt(i + 2);
  // NaN (end of string) compares unequal to everything: treat it as the end.
  return Number.isNaN(next) || next === SLASH || next === QUESTION || next === HASH;
}

const BAD_ESCAPE = 1;
const ENCODED_NUL = 2;

/**
 * Decodes every escape once into a byte string, except `%2F`/`%2f`, which
 * becomes ENCODED_SLASH so that dot segments can be removed around it.
 */
function decodeKeepingEncodedSlash(path: string): string | typeof BAD_ESCAPE | typeof ENCODED_NUL {
  let pct = path.indexOf('%');
  if (pct < 0) return path;
  let out = '';
  let last = 0;
  while (pct >= 0) {
    const hi = hexValue(path.charCodeAt(pct + 1));
    const lo = hexValue(path.charCodeAt(pct + 2));
    if (hi < 0 || lo < 0) return BAD_ESCAPE;
    const byte = hi * 16 + lo;
    if (byte === 0) return ENCODED_NUL;
    out += path.slice(last, pct) + (byte === SLASH ? ENCODED_SLASH : String.fromCharCode(byte));
    last = pct + 3;
    pct = path.indexOf('%', last);
  }
  return out + path.slice(last);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1; // also for NaN (past the end)
}

/**
 * The distinct views of a decoded path (ENCODED_SLASH marks `%2F`). A fixed
 * number of linear passes over the path, whatever its shape.
 */
function computeViews(decoded: string): string[] {
  const views: string[] = [];
  const hasEncodedSlash = decoded.includes(ENCODED_SLASH);
  const full = hasEncodedSlash ? decoded.replaceAll(ENCODED_SLASH, '/') : decoded;
  const doubled = full.includes('//');
  // (a) everything decoded, then normalised: the canonical view (MergeSlashes On).
  // removeDotSegments with `merge` leaves no `//` behind.
  addView(views, removeDotSegments(full, true));
  // MergeSlashes Off: `..` can remove an empty segment (`/a//..` → `/a/`); the
  // filesystem still treats `//` as `/`, so merge afterwards.
  if (doubled) addView(views, mergeSlashes(removeDotSegments(full, false)));
  if (hasEncodedSlash) {
    for (const merge of [true, false]) {
      if (!merge && !doubled) continue;
      const kept = removeDotSegments(decoded, merge).replaceAll(ENCODED_SLASH, '/');
      // (b) AllowEncodedSlashes On, no re-normalisation: `/xmlrpc.php%2F..` → `/xmlrpc.php/..`.
      addView(views, mergeSlashes(kept));
      // (b') AllowEncodedSlashes On with the re-normalisation of Apache >= 2.4.49.
      const renormalised = removeDotSegments(kept, merge);
      addView(views, merge ? renormalised : mergeSlashes(renormalised));
    }
  }
  return views;
}

function addView(views: string[], view: string): void {
  if (!views.includes(view)) views.push(view);
}

function mergeSlashes(path: string): string {
  return path.includes('//') ? path.replace(/\/{2,}/g, '/') : path;
}

/**
 * RFC 3986 5.2.4 remove_dot_segments for a path starting with `/`, as
 * Apache's ap_normalize_path does it: `..` at the root stays at the root
 * (Apache answers 400 there; a view must still be produced for matching),
 * and with `merge` runs of `/` collapse as they are read.
 *
 * Linear in the path: the output is a stack of segments, each with its
 * trailing `/` (an empty segment is a lone `/`, kept when not merging so `..`
 * can remove it), joined once at the end. Growing a string with `+=` and
 * reading its last character flattens V8's rope on every segment, which made
 * a 12 KB target of short segments cost milliseconds (issue 9, item 8).
 */
function removeDotSegments(path: string, merge: boolean): string {
  // Most slow-path targets only have escapes or `//`: then nothing is removed.
  if (!hasDotSegment(path)) return merge ? mergeSlashes(path) : path;
  const segments: string[] = [];
  const n = path.length;
  let i = 1; // always at the start of a segment: path[0] is the leading "/"
  while (i < n) {
    if (path.charCodeAt(i) === SLASH) {
      if (!merge) segments.push('/');
      i++;
      continue;
    }
    let end = path.indexOf('/', i);
    if (end < 0) end = n;
    if (path.charCodeAt(i) === DOT) {
      const length = end - i;
      if (length === 1) {
        i = end + 1; // drop "./" (or a final ".")
        continue;
      }
      if (length === 2 && path.charCodeAt(i + 1) === DOT) {
        segments.pop(); // drop "../" and the segment before it (none at the root)
        i = end + 1;
        continue;
      }
    }
    // The segment with its "/", or the last one without.
    segments.push(path.slice(i, end < n ? end + 1 : n));
    i = end + 1;
  }
  return segments.length === 0 ? '/' : `/${segments.join('')}`;
}

/**
 * True when a segment of `path` may be `.` or `..` (a false positive only
 * costs the slow path). Searches for `.` rather than `/.`: V8 finds one
 * character at memchr speed, two only a few times faster than a loop.
 */
function hasDotSegment(path: string): boolean {
  for (let i = path.indexOf('.'); i >= 0; i = path.indexOf('.', i + 1)) {
    if (path.charCodeAt(i - 1) === SLASH && isDotSegmentAt(path, i)) return true;
  }
  return false;
}
