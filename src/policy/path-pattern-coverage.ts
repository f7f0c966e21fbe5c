import { ACME_CHALLENGE_PREFIX } from './acme-challenge.js';
import { canonicalPatternPath, foldIf, multiViewsNames, type PathPatternSpec } from './path-pattern.js';

/*
 * Whether one path pattern matches every view another matches, for
 * `portcullis check`: a rule whose every request an earlier block refuses can
 * never match. The answer is conservative: "no" whenever it cannot be sure
 * (a regex is covered only by the same regex, or by the prefix `/`), so
 * check never calls a reachable rule dead.
 */

/** Null: every path (a limit without `paths`). */
export type CoveredPaths = PathPatternSpec | null;

/** True when every view `inner` matches is matched by `outer` too. */
export function patternCovers(outer: PathPatternSpec, inner: CoveredPaths): boolean {
  if (outer.kind === 'prefix' && canonicalPatternPath(outer.prefix, 'prefix') === '/') return true;
  if (inner === null) return false;
  // A case-sensitive pattern misses the other spellings a case-insensitive one matches.
  if (outer.caseSensitive && !inner.caseSensitive) return false;
  const fold = !outer.caseSensitive;
  if (outer.kind === 'regex') return inner.kind === 'regex' && inner.regex === outer.regex && inner.caseSensitive === outer.caseSensitive;
  if (inner.kind === 'regex') return false;
  const outerPath = foldIf(fold, canonicalPatternPath(outer.kind === 'exact' ? outer.path : outer.prefix, 'path'));
  const innerNames = matchedNames(inner).map((name) => foldIf(fold, name));
  if (outer.kind === 'exact') return inner.kind === 'exact' && innerNames[0] === outerPath;
  return innerNames.every((name) => name.startsWith(outerPath));
}

/** Whether `paths` may match an ACME challenge, which skips every block, so no block covers it. */
export function mayMatchAcmeChallenge(paths: CoveredPaths): boolean {
  if (paths === null || paths.kind === 'regex') return true;
  const names = matchedNames(paths).map((name) => foldIf(!paths.caseSensitive, name));
  return names.some((name) => name.startsWith(ACME_CHALLENGE_PREFIX) || ACME_CHALLENGE_PREFIX.startsWith(name));
}

/**
 * The names whose every view `spec` matches starts with: the exact path and
 * its MultiViews names (the PATH_INFO below each starts with it too), the
 * directory without its slash, or the prefix.
 */
function matchedNames(spec: Exclude<PathPatternSpec, { kind: 'regex' }>): string[] {
  if (spec.kind === 'prefix') return [canonicalPatternPath(spec.prefix, 'prefix')];
  const path = canonicalPatternPath(spec.path, 'exact path');
  if (path.length > 1 && path.endsWith('/')) return [path, path.slice(0, -1)];
  return [path, ...multiViewsNames(path)];
}
