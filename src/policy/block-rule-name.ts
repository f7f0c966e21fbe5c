/** The fields of a `block` entry that name it. */
export interface NameableBlock {
  readonly name?: string | undefined;
  readonly path?: string | undefined;
  readonly path_prefix?: string | undefined;
  readonly path_regex?: string | undefined;
}

/**
 * The name a `block` entry goes by in metrics, logs, `disable` and the rule
 * namespace it shares with `limits`: its `name`, else its path as written
 * (`/xmlrpc.php`, a prefix, or `regex:` and the expression). A rule name
 * cannot contain `/`, so a path never collides with a written name.
 */
export function blockRuleName(rule: NameableBlock): string {
  return rule.name ?? rule.path ?? rule.path_prefix ?? `regex:${rule.path_regex ?? ''}`;
}

/** The key of a `block` entry that gives its name, where a problem with the rule as a whole is reported. */
export function blockNameKey(rule: NameableBlock): 'name' | 'path' | 'path_prefix' | 'path_regex' {
  return rule.name !== undefined ? 'name' : rule.path !== undefined ? 'path' : rule.path_prefix !== undefined ? 'path_prefix' : 'path_regex';
}
