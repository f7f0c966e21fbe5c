import { describe, expect, it } from 'vitest';
import { printable, renderFacts, renderTable } from '../../../src/cli/text-table.js';

describe('renderTable', () => {
  it('aligns columns two spaces apart under their headers, numbers right-aligned, no trailing spaces', () => {
    const table = renderTable(
      ['TARGET', 'SCOPE', { header: 'EXPIRES-IN', align: 'right' }, 'REASON'],
      [
        ['192.0.2.7', 'ip', '9m 12s', 'xmlrpc flood'],
        ['2001:db8::/48', 'prefix', '3d', ''],
      ],
    );
    expect(table.split('\n')).toEqual([
      'TARGET         SCOPE   EXPIRES-IN  REASON',
      '192.0.2.7      ip          9m 12s  xmlrpc flood',
      '2001:db8::/48  prefix          3d',
    ]);
  });

  it('prints only the header for no rows, and treats missing cells as empty', () => {
    expect(renderTable(['A', 'B'], [])).toBe('A  B');
    expect(renderTable(['A', 'B', 'C'], [['x']]).split('\n')).toEqual(['A  B  C', 'x']);
  });

  it('escapes control characters so a cell cannot add rows or colour the terminal', () => {
    const table = renderTable(['REASON', 'N'], [['evil\n127.0.0.1  fake row\u001b[31m', '1']]);
    expect(table.split('\n')).toHaveLength(2);
    expect(table).toContain('evil\\n127.0.0.1  fake row\\u001b[31m  1');
    expect(table).not.toContain('\u001b');
  });

  it('counts width in characters, not UTF-16 units', () => {
    expect(renderTable(['X', 'Y'], [['é😀', '1'], ['ab', '2']]).split('\n')).toEqual(['X   Y', 'é😀  1', 'ab  2']);
  });
});

describe('renderFacts', () => {
  it('aligns the values after the longest label', () => {
    expect(renderFacts([['client', '192.0.2.7'], ['never banned', 'no']])).toBe('client        192.0.2.7\nnever banned  no');
  });
});

describe('printable', () => {
  it('leaves ordinary text alone and escapes C0, DEL and C1 controls', () => {
    expect(printable('30 strikes in 60s (last: rule write) – ok')).toBe('30 strikes in 60s (last: rule write) – ok');
    expect(printable('a\tb\rc\u007fd\u009be')).toBe('a\\tb\\rc\\u007fd\\u009be');
  });
});
