import { z } from 'zod';
import { compilePathPattern, type PathPatternSpec } from '../../policy/path-pattern.js';
import { describe, expected, httpStatus, method, positiveInt, rate, text } from './schema-values.js';

/* `limits` and `block`: the rules requests are decided by. */

/**
 * Validates a path the way the matcher will read it, by compiling it: one set
 * of rules for what a path may be (normalised, no query), stated once in
 * path-pattern.ts, reported here with the value's position.
 */
const patternChecked = (what: string, toSpec: (value: string) => PathPatternSpec) =>
  text(what).superRefine((value, ctx) => {
    try {
      compilePathPattern(toSpec(value));
    } catch (error) {
      ctx.addIssue({ code: 'custom', input: value, message: (error as Error).message });
    }
  });

const exactPath = patternChecked('a path starting with /', (path) => ({ kind: 'exact', path, caseSensitive: false }));
const pathPrefix = patternChecked('a path starting with /', (prefix) => ({ kind: 'prefix', prefix, caseSensitive: false }));
const regexSource = patternChecked('a regular expression', (regex) => ({ kind: 'regex', regex, caseSensitive: false }));
/** A `paths` entry of a limit rule: exact, or a prefix when it ends in `*`. */
export const rulePath = patternChecked('a path starting with /', (path) =>
  path.endsWith('*') ? { kind: 'prefix', prefix: path.slice(0, -1), caseSensitive: false } : { kind: 'exact', path, caseSensitive: false },
);

/** `enforce` refuses; `shadow` only counts and logs what it would refuse, to try a rule on live traffic first. */
export const RULE_MODES = ['enforce', 'shadow'] as const;
const ruleMode = z.enum(RULE_MODES, { error: (issue) => `must be enforce or shadow, got ${describe(issue.input)}` }).default('enforce');

/** A rule's name, as metrics labels and logs show it. */
export const ruleName = text('a name').regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, {
  error: (issue) => `must be 1–64 letters, digits, '.', '_' or '-', got ${describe(issue.input)}`,
});

const bucket = z.strictObject({
  /** Refill rate: the sustained request rate this bucket admits. */
  rate,
  /** Capacity: how many requests may come at once after a quiet spell. */
  burst: positiveInt(),
});

/** One `limits` entry: which requests it counts and the buckets they pay. */
export const limitRule = z
  .strictObject({
    name: ruleName,
    methods: z.array(method).min(1, { error: 'must list at least one method' }),
    /** Exact paths (`/wp-login.php`, also matching its PATH_INFO) or prefixes ending in `*` (`/wp-admin/*`). Absent: every path. */
    paths: z.array(rulePath).min(1, { error: 'must list at least one path, or be left out for every path' }).optional(),
    per_ip: bucket.optional(),
    per_prefix: bucket.optional(),
    /** Tokens each matching request takes from every bucket of this rule. */
    cost: positiveInt().default(1),
    /** Status of a refusal. 429 is what clients and crawlers understand as "slow down". */
    status: httpStatus.default(429),
    /** Paths match case-insensitively unless set, since Apache can serve a file under another case. */
    case_sensitive: z.boolean({ error: (issue) => expected('true or false', issue.input) }).default(false),
    mode: ruleMode,
  })
  .superRefine((rule, ctx) => {
    if (!rule.per_ip && !rule.per_prefix) {
      ctx.addIssue({ code: 'custom', message: 'needs per_ip and/or per_prefix: a rule without a bucket limits nothing', path: ['per_ip'] });
    }
    for (const scope of ['per_ip', 'per_prefix'] as const) {
      const spec = rule[scope];
      // A burst that failed its own check has already been reported.
      if (spec && spec.burst >= 1 && rule.cost > spec.burst) {
        ctx.addIssue({ code: 'custom', message: `cost ${rule.cost} is larger than ${scope}.burst ${spec.burst}: no request could ever pass`, path: ['cost'] });
      }
    }
  });

/** One `block` entry: the path refused outright and the strikes it costs. */
export const blockRule = z
  .strictObject({
    /** Shown in logs; defaults to the path it blocks. */
    name: ruleName.optional(),
    /** Exact path, also matching PATH_INFO below it and its MultiViews name without extension. */
    path: exactPath.optional(),
    /** Every path starting with this. */
    path_prefix: pathPrefix.optional(),
    /** A JavaScript regular expression tested against the normalised path (anchor it yourself). */
    path_regex: regexSource.optional(),
    /** Absent: every method. */
    methods: z.array(method).min(1, { error: 'must list at least one method, or be left out for every method' }).optional(),
    /** 403 says "never", unlike 429's "later". */
    status: httpStatus.default(403),
    /** Strikes a request to this path counts for: a request for /xmlrpc.php is rarely an accident. */
    strikes: z.int({ error: (issue) => expected('a whole number ≥ 0', issue.input) }).min(0).default(1),
    case_sensitive: z.boolean({ error: (issue) => expected('true or false', issue.input) }).default(false),
    mode: ruleMode,
  })
  .superRefine((rule, ctx) => {
    const given = (['path', 'path_prefix', 'path_regex'] as const).filter((key) => rule[key] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: given.length === 0 ? 'needs one of path, path_prefix or path_regex' : `has ${given.join(' and ')}: give exactly one`,
        path: given.length === 0 ? [] : [given[1] as string],
      });
    }
  });
