import { isDeepStrictEqual } from 'node:util';
import type { PolicyConfig } from './schema.js';

/**
 * Policy keys a reload cannot change in a running process: sockets already
 * bound, files already open, tables already sized, the kernel backend already
 * set up. A reload that changes one keeps the running value, says so in the
 * log, and the change takes effect at the next restart. The README's policy
 * reference marks the same keys.
 */
export const RESTART_ONLY_KEYS = [
  'listen',
  'upstream',
  'state_dir',
  'access_log',
  'access_log_format',
  'access_log_refused',
  'admin',
  'clients.prefix',
  'clients.max_tracked',
  'concurrency.upstream_max',
  'escalation.backend',
  'escalation.ports',
  'escalation.max_bans',
  'escalation.max_history',
  'timeouts.upstream_connect',
  'timeouts.upstream_headers',
  'timeouts.upstream_body',
  'request.max_body',
  'buffering.temp_dir',
  'store',
] as const;

function read(config: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], config);
}

/** Restart-only keys whose value differs between the running and the new policy. */
export function restartOnlyChanges(running: PolicyConfig, next: PolicyConfig): string[] {
  return RESTART_ONLY_KEYS.filter((path) => !isDeepStrictEqual(read(running, path), read(next, path)));
}

/** The new policy with every restart-only key set back to its running value. */
export function keepRestartOnly(running: PolicyConfig, next: PolicyConfig): PolicyConfig {
  const merged = structuredClone(next) as unknown as Record<string, unknown>;
  for (const path of RESTART_ONLY_KEYS) {
    const keys = path.split('.');
    const last = keys.pop() as string;
    const parent = keys.reduce((node, key) => node[key] as Record<string, unknown>, merged);
    const value = read(running, path);
    if (value === undefined) delete parent[last];
    else parent[last] = structuredClone(value);
  }
  return merged as unknown as PolicyConfig;
}
