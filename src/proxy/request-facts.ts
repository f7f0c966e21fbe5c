import type { IncomingMessage } from 'node:http';
import type { RequestFacts } from '../engine/decision-engine.js';
import type { ClientKey } from '../identity/client-key.js';
import { isAcmeChallenge } from '../policy/acme-challenge.js';
import type { CompiledPolicy } from '../policy/compiled-policy.js';
import { toOriginForm, type OriginFormTarget } from '../policy/origin-form.js';
import { hostApacheUses } from '../policy/request-host.js';
import type { ListenerContext } from './listeners/listener-spec.js';
import { findFramingProblem } from './request-framing.js';

/**
 * The facts the engine decides on: the target as it will be forwarded
 * (origin-form, see toOriginForm), the site of the host Apache will choose
 * the vhost by (the one forwarded as Host), and what in the request's
 * framing Apache would refuse. A target toOriginForm cannot read goes to the
 * engine as sent, which refuses it (400, a strike).
 */
export function requestFacts(req: IncomingMessage, client: ClientKey, context: ListenerContext, policy: CompiledPolicy): { request: RequestFacts; origin: OriginFormTarget | null } {
  const raw = req.url as string;
  const origin = toOriginForm(raw);
  const malformed = findFramingProblem(req);
  const target = origin === null ? raw : origin.target;
  const host = hostApacheUses({ authority: origin?.authority ?? null, host: req.headers.host, h2Authority: req.headers[':authority'] as string | undefined });
  const request: RequestFacts = { client, method: req.method as string, target, site: policy.selectSite(host) };
  if (malformed !== null) return { request: { ...request, malformed }, origin };
  // certbot's webroot challenge must reach Apache over plain HTTP, past blocks and the redirect (never past limits).
  if (context.proto === 'http' && isAcmeChallenge(target)) return { request: { ...request, acmeChallenge: true }, origin };
  return { request, origin };
}
