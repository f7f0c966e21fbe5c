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
