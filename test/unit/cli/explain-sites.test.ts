import { describe, expect, it } from 'vitest';
import type { ExplainReport } from '../../../src/admin/explain-report.js';
import { renderExplanation } from '../../../src/cli/explain-command.js';

const REPORT: ExplainReport = {
  client: { ip: '192.0.2.7', prefix: '192.0.2.0/24' },
  allowlisted: false,
  never_banned: false,
  buckets: [
    { rule: 'read', scope: 'ip', key: '192.0.2.7', rate: '20/s', burst: 100, tokens: 12, cost: 1, tracked: true, shadow: false },
    { rule: 'checkout', site: 'shop', scope: 'ip', key: '192.0.2.7', rate: '1/min', burst: 1, tokens: 0, cost: 1, tracked: true, shadow: false },
  ],
  strikes: null,
  active_bans: [],
  history: [],
};

describe('portcullis explain, with sites', () => {
  it('names the site of a site\'s own bucket; a global rule\'s bucket is one for every site', () => {
    const lines = renderExplanation(REPORT, Date.parse('2025-01-01T12:00:00Z')).split('\n');
    const table = lines.slice(lines.indexOf('buckets') + 1, lines.indexOf('buckets') + 4);
    expect(table).toEqual([
      'RULE           SCOPE  KEY        RATE   BURST  TOKENS',
      'read           ip     192.0.2.7  20/s     100      12',
      'shop/checkout  ip     192.0.2.7  1/min      1       0',
    ]);
  });
});
