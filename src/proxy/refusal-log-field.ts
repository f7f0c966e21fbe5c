import type { BanDecision, BlockDecision, LimitDecision, RejectDecision } from '../engine/decision.js';

/*
 * With `access_log_refused`, a request portcullis answered itself gets an
 * access-log line ending in `"portcullis:KIND:DETAIL"`. The kinds:
 *
 *   block:RULE        a block rule refused it
 *   limit:RULE        a limit rule's bucket was empty
 *   reject:REASON     malformed, as Apache would refuse it too (400/501)
 *   ban:TARGET        the client, or its prefix (a CIDR), was banned
 *   busy:REASON       no upstream slot: queue_full or queue_timeout (503),
 *                     upgraded_per_client_max for a WebSocket (503)
 *   body:REASON       the body was refused: too_large or needs_disk (413),
 *                     budget or disk_error (503)
 *   redirect:https    the HTTP→HTTPS redirect of a redirect_https listener
 *   options:*         `OPTIONS *`, answered without Apache
 *
 * The detail after the second colon may itself hold colons (IPv6 targets).
 */

/** The `KIND:DETAIL` of an engine refusal. */
export function decisionLogField(decision: LimitDecision | BlockDecision | RejectDecision | BanDecision): string {
  switch (decision.action) {
    case 'limit':
      return `limit:${decision.rule}`;
    case 'block':
      return `block:${decision.rule}`;
    case 'reject':
      return `reject:${decision.reason}`;
    case 'ban':
      return `ban:${decision.target}`;
  }
}
