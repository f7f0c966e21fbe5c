/**
 * Indexes rules by HTTP method once, at load time, so a request finds its rules
 * with one map lookup. A rule lists methods by name, `*` for every method, or
 * `OTHER` for every method that no rule names: HTTP methods are open-ended and
 * PHP runs a script for `FOO /index.php` as readily as for GET, so a flood in a
 * made-up method must still land in some bucket.
 */
export class MethodIndex<Rule extends { readonly methods: readonly string[] | null }> {
  readonly #byMethod = new Map<string, readonly Rule[]>();
  readonly #unnamed: readonly Rule[];

  /** `methods: null` on a rule means every method. */
  constructor(rules: readonly Rule[]) {
    const named = new Set<string>();
    for (const rule of rules) {
      for (const method of rule.methods ?? []) if (method !== '*' && method !== 'OTHER') named.add(method);
    }
    const applies = (rule: Rule, method: string | null): boolean => {
      if (rule.methods === null || rule.methods.includes('*')) return true;
      return method === null ? rule.methods.includes('OTHER') : rule.methods.includes(method);
    };
    for (const method of named) this.#byMethod.set(method, rules.filter((rule) => applies(rule, method)));
    this.#unnamed = rules.filter((rule) => applies(rule, null));
  }

  /** Rules that apply to `method` (case-sensitive, as HTTP methods are), in policy order. */
  rulesFor(method: string): readonly Rule[] {
    return this.#byMethod.get(method) ?? this.#unnamed;
  }
}
