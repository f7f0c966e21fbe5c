import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';

/**
 * The shipped policy (config/portcullis.yaml) with every rate raised so no
 * bucket empties at benchmark rates: the cost of evaluating it, not of
 * refusing. Everything else stays as shipped (buffering, metrics, escalation)
 * but the concurrency caps, which would queue one load generator's 50
 * connections. `settings` (listen, upstream, state_dir, admin, …) are laid
 * over the result.
 */
export async function unrefusingShippedPolicy(settings: Record<string, unknown>): Promise<Record<string, unknown>> {
  const policy = parse(await readFile(join(import.meta.dirname, '..', '..', 'config', 'portcullis.yaml'), 'utf8')) as Record<string, unknown> & { limits: Record<string, unknown>[] };
  for (const rule of policy.limits) {
    for (const scope of ['per_ip', 'per_prefix']) if (rule[scope] !== undefined) rule[scope] = { rate: '1000000/s', burst: 1_000_000 };
  }
  return { ...policy, concurrency: { ...(policy.concurrency as object), upstream_max: 64, per_client_max: 64, per_client_queue_max: 64 }, ...settings };
}
