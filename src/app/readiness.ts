import type { Readiness } from '../admin/admin-server.js';
import type { PolicyConfig } from '../config/schema.js';
import type { FirewallEnforcer } from '../firewall/firewall-enforcer.js';
import { probeUpstream } from '../proxy/upstream-probe.js';

/** Ready when the upstream accepts connections and the firewall backend works as configured. */
export async function checkReadiness(config: PolicyConfig, enforcer: FirewallEnforcer): Promise<Readiness> {
  const upstreamProblem = await probeUpstream(config.upstream, Math.min(config.timeouts.upstream_connect, 2_000));
  const firewall = enforcer.health();
  const checks = {
    upstream: { ok: upstreamProblem === null, detail: upstreamProblem ?? `${config.upstream} accepts connections` },
    firewall: { ok: firewall.ok, detail: firewall.problem ?? `${firewall.active} backend working` },
  };
  return { ready: checks.upstream.ok && checks.firewall.ok, checks };
}
