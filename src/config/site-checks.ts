import type { z } from 'zod';
import { blockNameKey, blockRuleName, type NameableBlock } from '../policy/block-rule-name.js';
import { suggestClosest } from './did-you-mean.js';

/*
 * Checks across keys of a parsed policy that one key's schema cannot make:
 * the one namespace limits and block share, and what `sites` may say. Each
 * problem carries the path of the value at fault, so the loader reports it
 * as FILE:LINE:COL. Shapes are structural so this file needs no schema
 * import (schema.ts imports it).
 */

interface RuleLists {
  readonly limits: readonly { readonly name: string }[];
  readonly block: readonly NameableBlock[];
}

interface SiteShape extends RuleLists {
  readonly name: string;
  readonly hosts: readonly string[];
  readonly default: boolean;
  readonly disable: readonly string[];
  readonly upstream?: string | undefined;
  readonly concurrency?: { readonly upstream_max?: number | undefined; readonly per_client_max?: number | undefined } | undefined;
}

interface PolicyShape extends RuleLists {
  readonly upstream: string;
  readonly concurrency: { readonly upstream_max: number; readonly per_client_max: number };
  readonly sites: readonly SiteShape[];
}

type Ctx = z.RefinementCtx;
type Path = (string | number)[];

const UNIQUE = 'names label metrics and logs, so they must be unique';

/** Every rule name of `lists` with the path that gives it: limits first, then blocks (a nameless block at its path key). */
function namedRules(lists: RuleLists, at: Path): { name: string; path: Path; nameless: boolean }[] {
  return [
    ...lists.limits.map((rule, index) => ({ name: rule.name, path: [...at, 'limits', index, 'name'], nameless: false })),
    ...lists.block.map((rule, index) => {
      return { name: blockRuleName(rule), path: [...at, 'block', index, blockNameKey(rule)], nameless: rule.name === undefined };
    }),
  ];
}

/** Limits and blocks of one scope share one namespace: a name used twice is reported at its second use. */
function checkNamespace(lists: RuleLists, at: Path, where: string, ctx: Ctx): Set<string> {
  const seen = new Set<string>();
  for (const rule of namedRules(lists, at)) {
    if (seen.has(rule.name)) {
      const hint = rule.nameless ? ' (a block without a name is named after its path)' : '';
      ctx.addIssue({ code: 'custom', message: `rule name "${rule.name}" is used twice${where}: ${UNIQUE}${hint}`, path: rule.path });
    }
    seen.add(rule.name);
  }
  return seen;
}

/** The cross-key checks of a whole policy: rule names, then sites. */
export function checkRulesAndSites(policy: PolicyShape, ctx: Ctx): void {
  const global = checkNamespace(policy, [], '', ctx);
  const globalNames = [...global];
  const siteNames = new Set<string>();
  const hostOwners = new Map<string, string>();
  const upstreamOwners = new Map<string, string>();
  let defaultSite: string | null = null;

  policy.sites.forEach((site, s) => {
    const at: Path = ['sites', s];
    if (siteNames.has(site.name)) ctx.addIssue({ code: 'custom', message: `site name "${site.name}" is used twice`, path: [...at, 'name'] });
    siteNames.add(site.name);

    site.hosts.forEach((host, h) => {
      const owner = hostOwners.get(host);
      if (owner !== undefined) {
        ctx.addIssue({ code: 'custom', message: `host ${host} is already a host of ${owner}: it could never choose this site`, path: [...at, 'hosts', h] });
      } else {
        hostOwners.set(host, `site ${site.name} (sites[${s}].hosts[${h}])`);
      }
    });

    if (site.default) {
      if (defaultSite !== null) ctx.addIssue({ code: 'custom', message: `only one site can be the default, and ${defaultSite} is already`, path: [...at, 'default'] });
      defaultSite ??= site.name;
    }

    const own = checkNamespace(site, at, ` in site ${site.name}`, ctx);
    site.disable.forEach((name, d) => {
      const path = [...at, 'disable', d];
      if (!global.has(name)) {
        const suggestion = suggestClosest(name, globalNames);
        const hint = suggestion === null ? '' : `; did you mean "${suggestion}"?`;
        const known = globalNames.length === 0 ? 'there are none' : `global rules: ${globalNames.join(', ')}`;
        ctx.addIssue({ code: 'custom', message: `no global rule is named "${name}"${hint} (${known})`, path });
      } else if (own.has(name)) {
        ctx.addIssue({ code: 'custom', message: `site ${site.name} both disables and redefines "${name}": a site rule of the same name already replaces the global one`, path });
      }
    });

    checkSiteConcurrency(policy, site, at, upstreamOwners, ctx);
  });
}

/**
 * A site's `concurrency` is the cap of its own upstream, or without one a
 * sub-cap inside the default upstream's: then it cannot be larger. Sites
 * naming the same upstream share its cap, set by the first of them.
 */
function checkSiteConcurrency(policy: PolicyShape, site: SiteShape, at: Path, upstreamOwners: Map<string, string>, ctx: Ctx): void {
  const limits = site.concurrency;
  if (site.upstream !== undefined) {
    if (site.upstream === policy.upstream) {
      ctx.addIssue({ code: 'custom', message: `is the top-level upstream already: leave it out (a site concurrency is then a sub-cap of that upstream's)`, path: [...at, 'upstream'] });
    }
    const first = upstreamOwners.get(site.upstream);
    if (first === undefined) upstreamOwners.set(site.upstream, site.name);
    else if (limits !== undefined) {
      ctx.addIssue({ code: 'custom', message: `site ${first} names ${site.upstream} first and its concurrency caps it: give concurrency there only`, path: [...at, 'concurrency'] });
    }
  }
  if (limits === undefined) return;
  const shared = policy.concurrency.upstream_max;
  if (site.upstream === undefined && limits.upstream_max !== undefined && limits.upstream_max > shared) {
    ctx.addIssue({
      code: 'custom',
      message: `a site without its own upstream shares concurrency.upstream_max ${shared}: its cap ${limits.upstream_max} must not be larger`,
      path: [...at, 'concurrency', 'upstream_max'],
    });
  }
  const cap = limits.upstream_max ?? shared;
  if (limits.per_client_max !== undefined && limits.per_client_max > cap) {
    ctx.addIssue({ code: 'custom', message: `must not be larger than the site's upstream_max ${cap}`, path: [...at, 'concurrency', 'per_client_max'] });
  }
}
