import type { PolicyConfig } from '../config/schema.js';
import { hostPatternCovers, parseHostPattern, type HostPattern } from './host-pattern.js';

/** A host pattern no request can ever choose its site by, and why. */
export interface HostOverlap {
  /** Where the shadowed pattern is: `['sites', 2, 'hosts', 0]`. */
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/**
 * Host patterns of a site that an earlier site's pattern covers entirely
 * (`*.example.org` before `shop.example.org`, or before `*.shop.example.org`):
 * the first matching site wins, as Apache's first matching vhost does, so the
 * later one can never be chosen for those names. The reverse order (the exact
 * name first) is the usual way to carve one name out of a wildcard and is
 * not reported. Exact duplicates are schema errors already.
 */
export function findHostOverlaps(config: PolicyConfig): HostOverlap[] {
  const earlier: { pattern: HostPattern; site: string; where: string }[] = [];
  const overlaps: HostOverlap[] = [];
  config.sites.forEach((site, s) => {
    const own: typeof earlier = [];
    site.hosts.forEach((text, h) => {
      const pattern = parseHostPattern(text);
      if (typeof pattern === 'string') return;
      const cover = earlier.find((other) => other.pattern.text !== pattern.text && hostPatternCovers(other.pattern, pattern));
      if (cover !== undefined) {
        overlaps.push({
          path: ['sites', s, 'hosts', h],
          message: `sites[${s}].hosts[${h}]: ${pattern.text} can never choose site ${site.name}: ${cover.pattern.text} of site ${cover.site} (${cover.where}) comes first and matches every name it does; move site ${site.name} before it`,
        });
      }
      own.push({ pattern, site: site.name, where: `sites[${s}].hosts[${h}]` });
    });
    earlier.push(...own);
  });
  return overlaps;
}
