import type { Readiness } from '../admin/admin-server.js';
import type { PolicyConfig } from '../config/schema.js';
import type { FirewallEnforcer } from '../firewall/firewall-enforcer.js';
import { probeUpstream } from '../proxy/upstream-probe.js';
import type { SiteUpstream } from './site-upstreams.js';

/**
 * Ready when every upstream accepts connections (the top-level one, and each
 * a site names, reported as `upstream of site NAME`) and the firewall
 * backend works as configured. The upstreams are probed at once. In
 * cluster mode `store` says whether the shared store answers; it never makes
 * the node unready.
 */
export async function checkReadiness(config: PolicyConfig, enforcer: FirewallEnforcer, siteUpstreams: readonly SiteUpstream[] = [], sharedStore?: { ok: boolean; detail: string }): Promise<Readiness> {
  const timeoutMs = Math.min(config.timeouts.upstream_connect, 2_000);
  const probe = async (upstream: string) => {
    const problem = await probeUpstream(upstream, timeoutMs);
    return { ok: problem === null, detail: problem ?? `${upstream} accepts connections` };
  };
  const [upstream, ...sites] = await Promise.all([probe(config.upstream), ...siteUpstreams.map((site) => probe(site.upstream))]);
  const firewall = enforcer.health();
  const checks: Record<string, { ok: boolean; detail: string }> = { upstream: upstream as { ok: boolean; detail: string } };
  siteUpstreams.forEach((site, index) => {
    checks[`upstream of site ${site.site}`] = sites[index] as { ok: boolean; detail: string };
  });
  checks.firewall = { ok: firewall.ok, detail: firewall.problem ?? `${firewall.active} backend working` };
  // Degraded, not failing: without Redis a node still holds its own limits.
  if (sharedStore !== undefined) checks.store = sharedStore;
  return { ready: Object.values(checks).every((check) => check.ok), checks };
}
