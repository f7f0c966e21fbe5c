import { detachedString } from '../core/detached-string.js';
import { GenerationalCache } from '../core/generational-cache.js';
import { normalizeRequestPath, type RequestPathResult } from '../policy/request-path.js';

/** Distinct request targets whose normalised path is remembered. */
const PATH_CACHE_MAX_ENTRIES = 4_096;
/**
 * Targets longer than this many characters are normalised on every request
 * and never cached. A judgement call: WordPress pages, assets and their
 * query strings stay well below it, and a target that long is rarely asked
 * for twice; normalising one is linear in its length anyway.
 */
const PATH_CACHE_MAX_TARGET_CHARS = 512;
/**
 * Characters held by the whole cache, targets and their views together:
 * about 1 MB (a byte per character, as request targets are latin1), plus
 * a Map entry's ~80 bytes each. 4,096 typical targets fit in a quarter of
 * it; without this budget 4,096 targets of 10 KB held about 80 MB.
 */
const PATH_CACHE_MAX_CHARS = 1_048_576;

/**
 * The normalised paths of recent request targets. Most traffic asks for the
 * same few pages, so this saves the decoding on most requests; a flood of
 * distinct targets only pushes older ones out. Bounded by entries and by
 * characters, so that a client cannot make it hold much memory. A hit costs
 * a Map lookup, a miss on a short target ~70 ns plus ~100 ns to remember it (see
 * GenerationalCache: recent targets stay, the rest go a generation at a time).
 */
export class PathCache {
  readonly #results = new GenerationalCache<string, RequestPathResult>(PATH_CACHE_MAX_ENTRIES, { maxWeight: PATH_CACHE_MAX_CHARS, weigh: charsHeld });

  /** {@link normalizeRequestPath} of `target`, from the cache when it was asked for recently. */
  normalize(target: string): RequestPathResult {
    if (target.length > PATH_CACHE_MAX_TARGET_CHARS) return normalizeRequestPath(target);
    // The query never changes the views (nor is it checked), so `/p?a` and `/p?b` share one entry.
    const query = target.indexOf('?');
    const key = query < 0 ? target : target.slice(0, query);
    let result = this.#results.get(key);
    if (result === undefined) {
      // The cache keeps the target and its views: they must not be views into a larger string (a replay's chunk of log).
      const own = detachedString(key);
      result = normalizeRequestPath(own);
      this.#results.set(own, result);
    }
    return result;
  }

  /** Targets held now. */
  get size(): number {
    return this.#results.size;
  }

  /** Characters held now, targets and views (what PATH_CACHE_MAX_CHARS bounds). */
  get chars(): number {
    return this.#results.weight;
  }
}

/** The target plus each view but the target itself (the fast path hands it back; any other view differs from it). */
function charsHeld(result: RequestPathResult, target: string): number {
  let chars = target.length + 1; // '' is a possible target, and still an entry
  if (result.ok) for (const view of result.views) if (view !== target) chars += view.length;
  return chars;
}
