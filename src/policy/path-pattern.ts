/**
 * Compiled path patterns, matched against the views from
 * {@link normalizeRequestPath}: a request matches if ANY of its views
 * matches, so a path cannot slip past a block by being spelled so that only
 * one of Apache's possible interpretations reaches the file.
 *
 * Matching is case-insensitive unless the spec says otherwise: Apache can
 * serve a file under another case (case-insensitive filesystems such as vfat
 * or CIFS mounts), so blocking `/XMLRPC.PHP` (a 404 on ext4) costs nothing,
 * while letting it through would be a bypass. Folding is ASCII-only (A–Z),
 * like the C-locale strcasecmp Apache uses; views are byte strings (one
 * character per byte, as in `req.url`) and non-ASCII bytes are compared
 * exactly. Patterns are lowercased once, at compile time; views are never
 * copied or lowercased (the comparison folds as it goes, without allocating).
 */
import { decodePathOnce, normalizeRequestPath } from './request-path.js';

/**
 * What a rule matches.
 *
 * `exact` — one resource, as Apache would serve it:
 *  - the path itself: `/xmlrpc.php`;
 *  - the path with PATH_INFO: `/xmlrpc.php/`, `/xmlrpc.php/anything`
 *    (PHP handlers accept PATH_INFO by default, so the script runs);
 *  - when the last segment has an extension, the MultiViews names without it,
 *    with or without PATH_INFO: `/xmlrpc`, `/xmlrpc/anything` (with
 *    `Options MultiViews`, Apache negotiates `/xmlrpc` to `xmlrpc.php`). Every
 *    dot after the segment's first character is a cut point: `/a.tar.gz` also
 *    matches `/a` and `/a.tar`. Trade-off: exact `/feed.xml` therefore also
 *    blocks `/feed/…`; use a `regex` rule when that is not wanted;
 *  - a path ending in `/` names a directory: it matches that directory with
 *    or without the final slash (`/admin/`, `/admin`) and nothing under it.
 *    The DirectoryIndex file is a different URL (`/admin/index.php` is not
 *    matched, and exact `/admin/index.php` does not match `/admin/`): write a
 *    rule for each, or use `prefix`.
 *  Not matched: other files (`/xmlrpc.phpx`, `/xmlrpc.php.bak`, `/xmlrpc.php;x`,
 *  `/xmlrpc.php.`: different files for Apache on Linux) and the same name in
 *  another directory (`/blog/xmlrpc.php`). WordPress multisite with
 *  sub-directories routes `/blog/xmlrpc.php` to xmlrpc.php through rewrite
 *  rules: block those with a `regex` rule such as `(^|/)xmlrpc\.php(/|$)`.
 *
 * `prefix` — every view that starts with the prefix (`/wp-admin/` matches
 * `/wp-admin/` and everything under it, not `/wp-admin`). No PATH_INFO or
 * MultiViews logic: a prefix already covers what follows it.
 *
 * For `exact` and `prefix`, `path`/`prefix` is written like a URL path: it
 * must start with `/`, may use percent-encoding (decoded once, `%25` for a
 * literal `%`) and non-ASCII characters (compared as their UTF-8 bytes), and
 * must already be normalised (no `.`/`..` segments, no `//`, no `?`/`#`),
 * because a non-normalised pattern could never match a view.
 *
 * `regex` — a JavaScript RegExp (no flags; `i` is added unless
 * caseSensitive) tested against each view. Not anchored: add `^`/`$` yourself.
 * Views are decoded, normalised byte strings: write `\.` for a dot and match
 * non-ASCII as UTF-8 bytes (`\xC3\xA9` for `é`); a non-ASCII character in the
 * source is refused because it could never match. The regex comes from the
 * operator's own config and is trusted: a catastrophically backtracking
 * pattern costs CPU on every request.
 *
 * `caseSensitive`: false (the recommended default) folds A–Z as above.
 */
export type PathPatternSpec =
  | { kind: 'exact'; path: string; caseSensitive: boolean }
  | { kind: 'prefix'; prefix: string; caseSensitive: boolean }
  | { kind: 'regex'; regex: string; caseSensitive: boolean };

export interface PathPattern {
  /** The spec this pattern was compiled from (a frozen copy). */
  readonly spec: PathPatternSpec;
  /** True if any of the views (from normalizeRequestPath) matches. */
  matches(views: readonly string[]): boolean;
}

const SLASH = 0x2f;

/**
 * Validates and compiles a spec; see {@link PathPatternSpec} for the
 * semantics. Throws a plain Error whose message names the problem and the
 * offending value (the config layer adds file:line:col).
 */
export function compilePathPattern(spec: PathPatternSpec): PathPattern {
  if (spec === null || typeof spec !== 'object') throw new Error(`path pattern must be an object, got ${String(spec)}`);
  if (typeof spec.caseSensitive !== 'boolean') {
    throw new Error(`path pattern caseSensitive must be a boolean, got ${JSON.stringify(spec.caseSensitive)}`);
  }
  switch (spec.kind) {
    case 'exact':
      return compileExact(Object.freeze({ ...spec }));
    case 'prefix':
      return compilePrefix(Object.freeze({ ...spec }));
    case 'regex':
      return compileRegex(Object.freeze({ ...spec }));
    default:
      throw new Error(
        `path pattern kind must be "exact", "prefix" or "regex", got ${JSON.stringify((spec as { kind: unknown }).kind)}`,
      );
  }
}

function compileExact(spec: Extract<PathPatternSpec, { kind: 'exact' }>): PathPattern {
  const insensitive = !spec.caseSensitive;
  const path = foldIf(insensitive, canonicalPatternPath(spec.path, 'exact path'));
  if (path.length > 1 && path.charCodeAt(path.length - 1) === SLASH) {
    const dir = path;
    const bare = path.slice(0, -1);
    return {
      spec,
      matches: (views) => {
        for (const view of views) {
          if ((view.length === dir.length && startsWithFolded(view, dir, insensitive)) || (view.length === bare.length && startsWithFolded(view, bare, insensitive))) {
            return true;
          }
        }
        return false;
      },
    };
  }
  const names = [path, ...multiViewsNames(path)];
  return {
    spec,
    matches: (views) => {
      for (const view of views) {
        for (const name of names) {
          if (isResourceOrPathInfo(view, name, insensitive)) return true;
        }
      }
      return false;
    },
  };
}

function compilePrefix(spec: Extract<PathPatternSpec, { kind: 'prefix' }>): PathPattern {
  const insensitive = !spec.caseSensitive;
  const prefix = foldIf(insensitive, canonicalPatternPath(spec.prefix, 'prefix'));
  return {
    spec,
    matches: (views) => {
      for (const view of views) {
        if (view.length >= prefix.length && startsWithFolded(view, prefix, insensitive)) return true;
      }
      return false;
    },
  };
}

function compileRegex(spec: Extract<PathPatternSpec, { kind: 'regex' }>): PathPattern {
  const source = spec.regex;
  if (typeof source !== 'string' || source === '') {
    throw new Error(`path regex must be a non-empty string (an empty regex matches every path), got ${JSON.stringify(source)}`);
  }
  if (/[^\x00-\x7f]/.test(source)) {
    throw new Error(
      `path regex ${JSON.stringify(source)} contains a non-ASCII character, which can never match: paths are matched as bytes, write UTF-8 bytes such as \\xC3\\xA9 for é`,
    );
  }
  let re: RegExp;
  try {
    // No 'g'/'y': test() must not keep state (lastIndex) between requests.
    re = new RegExp(source, spec.caseSensitive ? '' : 'i');
  } catch (err) {
    throw new Error(`path regex ${JSON.stringify(source)} is not a valid JavaScript regular expression: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return {
    spec,
    matches: (views) => {
      for (const view of views) {
        if (re.test(view)) return true;
      }
      return false;
    },
  };
}

/**
 * Turns a configured path into the byte-string form of a view, refusing what
 * could never match: no leading `/`, `?`/`#`, bad escapes, control
 * characters, and paths that are not normalised.
 */
export function canonicalPatternPath(raw: unknown, what: string): string {
  if (typeof raw !== 'string') throw new Error(`${what} must be a string, got ${JSON.stringify(raw)}`);
  if (raw.charCodeAt(0) !== SLASH) throw new Error(`${what} must start with "/", got ${JSON.stringify(raw)}`);
  if (/[?#]/.test(raw)) {
    throw new Error(`${what} ${JSON.stringify(raw)} contains "?" or "#": queries and fragments are not matched (write %3F or %23 for a literal character)`);
  }
  // Same representation as req.url: non-ASCII as UTF-8 bytes, one char each.
  const bytes = /[^\x00-\x7f]/.test(raw) ? Buffer.from(raw, 'utf8').toString('latin1') : raw;
  const result = normalizeRequestPath(bytes);
  const decoded = decodePathOnce(bytes);
  if (!result.ok || decoded === null) {
    throw new Error(`${what} ${JSON.stringify(raw)} is not a valid URL path: ${result.ok ? 'invalid percent-encoding' : result.reason}`);
  }
  if (/[\x00-\x1f\x7f]/.test(decoded)) throw new Error(`${what} ${JSON.stringify(raw)} decodes to a control character`);
  const canonical = result.views[0]!;
  if (canonical !== decoded) {
    throw new Error(
      `${what} ${JSON.stringify(raw)} is not a normalised path (no "." or ".." segments, no "//") and could never match; did you mean ${JSON.stringify(Buffer.from(canonical, 'latin1').toString('utf8'))}?`,
    );
  }
  return canonical;
}

/** `/a/xmlrpc.php` → [`/a/xmlrpc`]; `/a/b.tar.gz` → [`/a/b`, `/a/b.tar`]; `/a/.env` → []. */
export function multiViewsNames(path: string): string[] {
  const segmentStart = path.lastIndexOf('/') + 1;
  const names: string[] = [];
  for (let dot = path.indexOf('.', segmentStart + 1); dot >= 0; dot = path.indexOf('.', dot + 1)) {
    names.push(path.slice(0, dot));
  }
  return names;
}

/** view is `name` or `name/…` (PATH_INFO). */
function isResourceOrPathInfo(view: string, name: string, insensitive: boolean): boolean {
  const n = name.length;
  if (view.length < n) return false;
  if (view.length > n && view.charCodeAt(n) !== SLASH) return false;
  return startsWithFolded(view, name, insensitive);
}

/**
 * view starts with `prefix`; when `insensitive`, `prefix` is already
 * ASCII-lowercase and the view's A–Z are folded while comparing.
 */
function startsWithFolded(view: string, prefix: string, insensitive: boolean): boolean {
  if (!insensitive) return view.startsWith(prefix);
  const n = prefix.length;
  if (view.length < n) return false;
  for (let i = 0; i < n; i++) {
    let c = view.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== prefix.charCodeAt(i)) return false;
  }
  return true;
}

/** ASCII-only lowercase (A–Z), leaving other bytes alone. */
export function foldIf(insensitive: boolean, s: string): string {
  return insensitive ? s.replace(/[A-Z]+/g, (m) => m.toLowerCase()) : s;
}
