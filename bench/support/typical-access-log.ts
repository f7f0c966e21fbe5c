import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { combinedLine } from '../../test/support/access-log-fixture.js';

/**
 * A generated combined log shaped like a small WordPress server's day, for
 * throughput: visitors in sessions (a page, then its assets, then the next
 * page a few seconds later) with browser agents and referers, a few crawlers,
 * and the xmlrpc.php flood of the seed story (two addresses of one /24, then
 * two neighbours) for a slice of it, so the replay has bans to make. Seeded:
 * the same arguments always write the same bytes.
 */
export async function writeTypicalAccessLog(file: string, lines: number, seed = 1): Promise<{ bytes: number; floodLines: number }> {
  let state = seed;
  const random = (n: number) => ((state = (state * 1103515245 + 12345) % 2147483648) % n);
  const startMs = Date.UTC(2026, 10, 24, 0, 0, 0);
  // About 40 requests a second over the day's first hours, the flood at hundreds a second.
  const perSecond = 40;
  const agents = [
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
    'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
    'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
  ];
  const crawlers = ['Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)', 'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)'];
  const assets = ['/wp-content/themes/twentytwentyfour/style.css?ver=1.2', '/wp-includes/js/jquery/jquery.min.js?ver=3.7.1', '/wp-content/uploads/2026/11/header.jpg', '/favicon.ico'];
  const out = createWriteStream(file);
  let bytes = 0;
  let floodLines = 0;
  const floodFrom = Math.floor(lines * 0.4);
  const floodTo = Math.floor(lines * 0.45);
  for (let i = 0; i < lines; ) {
    const second = Math.floor(i / perSecond);
    const epochMs = startMs + second * 1000;
    let line: string;
    if (i >= floodFrom && i < floodTo && random(10) < 8) {
      const ip = `203.0.113.${10 + random(second % 60 < 20 ? 2 : 4)}`;
      line = combinedLine({ ip, epochMs, method: 'POST', target: '/xmlrpc.php', status: 200, agent: 'Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)' });
      floodLines++;
    } else if (random(20) === 0) {
      line = combinedLine({ ip: `66.249.66.${1 + random(50)}`, epochMs, target: `/${2025 + random(2)}/${1 + random(12)}/post-${random(3000)}/`, agent: crawlers[random(crawlers.length)] as string });
    } else {
      const visitor = random(3000);
      const ip = visitor % 4 === 0 ? `2001:db8:${(visitor >> 4).toString(16)}::${(visitor & 15).toString(16)}` : `198.51.${visitor >> 8}.${visitor & 255}`;
      const page = random(4) === 0 ? `/${2025 + random(2)}/${1 + random(12)}/post-${random(3000)}/` : assets[random(assets.length)] as string;
      line = combinedLine({ ip, epochMs, target: page, status: random(30) === 0 ? 304 : 200, agent: agents[visitor % agents.length] as string });
    }
    bytes += line.length + 1;
    if (!out.write(`${line}\n`)) await once(out, 'drain');
    i++;
  }
  out.end();
  await once(out, 'finish');
  return { bytes, floodLines };
}
