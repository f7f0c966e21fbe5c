import type { BlockRuleConfig, LimitRuleConfig, PolicyConfig } from '../config/schema.js';
import { blockNameKey, blockRuleName } from './block-rule-name.js';
import { DEFAULT_SITE_NAME, droppedGlobalRules } from './compiled-site.js';
import { compileBlock, compileRulePath } from './compiled-rules.js';
import { mayMatchAcmeChallenge, patternCovers, type CoveredPaths } from './path-pattern-coverage.js';
import type { PathPatternSpec } from './path-pattern.js';

/** A rule no request can ever reach, and why. */
export interface UnreachableRule {
  /** Where the rule is named: `['limits', 0, 'name']`, `['sites', 1, 'block', 0, 'path']`. */
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** One rule as the check sees it. */
interface CheckedRule {
  readonly name: string;
  /** `limits[0]`, `sites[1].block[2]`. */
  readonly where: string;
  readonly path: readonly (string | number)[];
  /** The site whose own rule it is; null for a top-level rule. */
  readonly site: string | null;
  readonly kind: 'limit' | 'block';
  /** `*` for every method. */
  readonly methods: readonly string[];
  /** Null: every path. */
  readonly paths: readonly CoveredPaths[];
  /** How the requests it matches read in a message: `POST /xmlrpc.php`. */
  readonly requests: string;
  /** For a block that refuses: its pattern. */
  readonly refuses: PathPatternSpec | null;
}

interface CheckedSite {
  readonly name: string;
  readonly blocks: readonly CheckedRule[];
  readonly limits: readonly CheckedRule[];
}

/**
 * Rules that can never decide anything: every request they match is refused
 * first by an enforcing block in force on the same site (blocks are checked
 * before limits, in policy order), on every site where the rule is in force;
 * or a top-level rule every site drops while a site is the default, so no
 * host ever gets the top-level policy. Coverage is decided conservatively
 * (see path-pattern-coverage.ts), so a reported rule is dead for certain.
 */
export function findUnreachableRules(config: PolicyConfig): UnreachableRule[] {
  const globalLimits = config.limits.map((rule, index) => checkedLimit(rule, null, `limits[${index}]`, ['limits', index]));
  const globalBlocks = config.block.map((rule, index) => checkedBlock(rule, null, `block[${index}]`, ['block', index]));
  const sites: CheckedSite[] = config.sites.map((site, s) => {
    const dropped = droppedGlobalRules(site);
    const kept = (rule: CheckedRule): boolean => !dropped.has(rule.name);
    return {
      name: site.name,
      limits: [...site.limits.map((rule, i) => checkedLimit(rule, site.name, `sites[${s}].limits[${i}]`, ['sites', s, 'limits', i])), ...globalLimits.filter(kept)],
      blocks: [...site.block.map((rule, i) => checkedBlock(rule, site.name, `sites[${s}].block[${i}]`, ['sites', s, 'block', i])), ...globalBlocks.filter(kept)],
    };
  });
  const defaultSite = config.sites.find((site) => site.default);
  if (defaultSite === undefined) sites.push({ name: DEFAULT_SITE_NAME, limits: globalLimits, blocks: globalBlocks });

  // ACME challenges skip blocks, and arrive on plain listeners only.
  const acmeSkipsBlocks = config.listen.some((listener) => !listener.tls);
  // Per rule, in policy order: on which sites it is in force, and what refuses its requests first there (null: nothing).
  const outcomes = new Map<CheckedRule, { site: string; coverers: readonly CheckedRule[] | null }[]>();
  for (const rule of [...globalLimits, ...globalBlocks]) outcomes.set(rule, []);
  for (const site of sites) {
    site.blocks.forEach((rule, index) => record(outcomes, rule, site.name, coverersOf(rule, site.blocks.slice(0, index), true, acmeSkipsBlocks)));
    for (const rule of site.limits) record(outcomes, rule, site.name, coverersOf(rule, site.blocks, false, acmeSkipsBlocks));
  }

  const findings: UnreachableRule[] = [];
  for (const [rule, where] of outcomes) {
    if (where.length === 0) {
      findings.push({
        path: rule.path,
        message: `${rule.where}: rule ${rule.name} can never match: every site disables or replaces it, and site ${defaultSite?.name} is the default, so the top-level policy serves no host`,
      });
    } else if (where.every((outcome) => outcome.coverers !== null)) {
      findings.push({ path: rule.path, message: `${rule.where}: rule ${rule.name} can never match${explain(rule, where as { site: string; coverers: readonly CheckedRule[] }[])}` });
    }
  }
  return findings.sort((a, b) => comparePaths(a.path, b.path));
}

function record(outcomes: Map<CheckedRule, { site: string; coverers: readonly CheckedRule[] | null }[]>, rule: CheckedRule, site: string, coverers: readonly CheckedRule[] | null): void {
  const list = outcomes.get(rule) ?? [];
  list.push({ site, coverers });
  outcomes.set(rule, list);
}

/**
 * The enforcing blocks among `before` that together refuse every request
 * `rule` matches (each method with each path), or null when some request gets
 * past them (or may be an ACME challenge, when `acmeSkipsBlocks`). `sameIndex`: `rule` is a block too, so `OTHER` means the same
 * methods for both; a limit's `OTHER` is computed over the limits and only a
 * block on every method covers it.
 */
function coverersOf(rule: CheckedRule, before: readonly CheckedRule[], sameIndex: boolean, acmeSkipsBlocks: boolean): readonly CheckedRule[] | null {
  const used = new Set<CheckedRule>();
  for (const paths of rule.paths) {
    if (acmeSkipsBlocks && mayMatchAcmeChallenge(paths)) return null;
    for (const method of rule.methods) {
      const cover = before.find((block) => block.refuses !== null && methodCovers(block.methods, method, sameIndex) && patternCovers(block.refuses, paths));
      if (cover === undefined) return null;
      used.add(cover);
    }
  }
  return before.filter((block) => used.has(block));
}

function methodCovers(blockMethods: readonly string[], method: string, sameIndex: boolean): boolean {
  if (blockMethods.includes('*')) return true;
  if (method === '*') return false;
  if (method === 'OTHER') return sameIndex && blockMethods.includes('OTHER');
  return blockMethods.includes(method);
}

function explain(rule: CheckedRule, where: readonly { site: string; coverers: readonly CheckedRule[] }[]): string {
  const what = rule.kind === 'block' ? 'every request for it' : `every ${rule.requests}`;
  const describe = (coverers: readonly CheckedRule[]): string => coverers.map((block) => `block ${block.name} (${block.where})`).join(', ');
  const groups = new Map<string, { sites: string[]; count: number }>();
  for (const outcome of where) {
    const text = describe(outcome.coverers);
    const group = groups.get(text) ?? { sites: [], count: outcome.coverers.length };
    group.sites.push(outcome.site);
    groups.set(text, group);
  }
  const verb = (count: number): string => (count === 1 ? 'refuses' : 'refuse');
  if (groups.size === 1) {
    const [[text, group]] = [...groups] as [[string, { sites: string[]; count: number }]];
    const on = rule.site !== null ? ` on site ${rule.site}` : '';
    return `${on}: ${text} ${verb(group.count)} ${what} first`;
  }
  const parts = [...groups].map(([text, group], index) => {
    const on = `on site${group.sites.length === 1 ? '' : 's'} ${group.sites.join(', ')}`;
    return index === 0 ? `${on}, ${text} ${verb(group.count)} ${what} first` : `${on}, ${text} ${group.count === 1 ? 'does' : 'do'}`;
  });
  return `: ${parts.join('; ')}`;
}

function checkedLimit(rule: LimitRuleConfig, site: string | null, where: string, at: (string | number)[]): CheckedRule {
  const methods = rule.methods.includes('*') ? ['*'] : rule.methods;
  return {
    name: rule.name,
    where,
    path: [...at, 'name'],
    site,
    kind: 'limit',
    methods,
    paths: rule.paths?.map((path) => compileRulePath(path, rule.case_sensitive).spec) ?? [null],
    requests: rule.paths === undefined ? `${methods.join(', ')} request` : `${methods.join(', ')} ${[...rule.paths].sort().join(', ')}`,
    refuses: null,
  };
}

function checkedBlock(rule: BlockRuleConfig, site: string | null, where: string, at: (string | number)[]): CheckedRule {
  const pattern = compileBlock(rule).pattern.spec;
  return {
    name: blockRuleName(rule),
    where,
    path: [...at, blockNameKey(rule)],
    site,
    kind: 'block',
    methods: rule.methods === undefined || rule.methods.includes('*') ? ['*'] : rule.methods,
    paths: [pattern],
    requests: 'request',
    refuses: rule.mode === 'shadow' ? null : pattern,
  };
}

/** Policy order: top-level limits, top-level blocks, then each site's. */
function comparePaths(a: readonly (string | number)[], b: readonly (string | number)[]): number {
  const rank = (path: readonly (string | number)[]): number[] =>
    path[0] === 'sites' ? [1, path[1] as number, path[2] === 'limits' ? 0 : 1, path[3] as number] : [0, 0, path[0] === 'limits' ? 0 : 1, path[1] as number];
  const [x, y] = [rank(a), rank(b)];
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return 0;
}
