/** Apache access logs for replay tests, generated (never hand-typed, never committed). */

/** One line of Apache's combined format (or vhost_combined with `vhost`). */
export function combinedLine(fields: { ip: string; epochMs: number; method?: string; target?: string; status?: number; agent?: string; vhost?: string }): string {
  const date = new Date(fields.epochMs);
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const two = (n: number) => String(n).padStart(2, '0');
  const time = `${two(date.getUTCDate())}/${months[date.getUTCMonth()]}/${date.getUTCFullYear()}:${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`;
  const request = `${fields.method ?? 'GET'} ${fields.target ?? '/'} HTTP/1.1`;
  const agent = fields.agent ?? 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0';
  const line = `${fields.ip} - - [${time}] "${request}" ${fields.status ?? 200} 512 "-" "${agent}"`;
  return fields.vhost === undefined ? line : `${fields.vhost}:443 ${line}`;
}

/** 2026-11-24 10:00:00 UTC: the seed attack's Tuesday. */
export const ATTACK_START_MS = Date.UTC(2026, 10, 24, 10, 0, 0);

/**
 * The seed attack: two addresses of one /24 POST to /xmlrpc.php 100 times a
 * second each for 10 s (interleaved, as the log shows them), two neighbours of
 * the same /24 take over from second 2, and 20 visitors browse one page a
 * second throughout (20 s).
 */
export function seedAttackLog(): string[] {
  const lines: string[] = [];
  for (let second = 0; second < 20; second++) {
    const atMs = ATTACK_START_MS + second * 1000;
    for (let i = 0; i < 100 && second < 10; i++) {
      for (const ip of ['203.0.113.10', '203.0.113.11']) lines.push(combinedLine({ ip, epochMs: atMs, method: 'POST', target: '/xmlrpc.php', agent: 'curl/8.0' }));
    }
    for (let i = 0; i < 50 && second >= 2 && second < 10; i++) {
      for (const ip of ['203.0.113.12', '203.0.113.13']) lines.push(combinedLine({ ip, epochMs: atMs, method: 'POST', target: '/xmlrpc.php', agent: 'curl/8.0' }));
    }
    for (let visitor = 1; visitor <= 20; visitor++) lines.push(combinedLine({ ip: `198.51.100.${visitor}`, epochMs: atMs, target: `/page-${second}` }));
  }
  return lines;
}
