import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../../src/config/policy-loader.js';
import { RESTART_ONLY_KEYS } from '../../../src/config/restart-only-keys.js';
import { ERROR_CODES } from '../../../src/core/errors.js';

const README = readFileSync(join(import.meta.dirname, '../../../README.md'), 'utf8');

/** Rows of the markdown table that follows `heading`, as arrays of cells. */
function tableAfter(heading: string): string[][] {
  const start = README.indexOf(heading);
  expect(start, `README section ${heading}`).toBeGreaterThanOrEqual(0);
  const lines = README.slice(start).split('\n');
  const first = lines.findIndex((line) => line.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.split('|').slice(1, -1).map((cell) => cell.trim()));
  }
  return rows;
}

describe('README', () => {
  it('lists exactly the error codes the code defines, with the same meaning', () => {
    const rows = tableAfter('## Errors');
    expect(Object.fromEntries(rows.map(([code, meaning]) => [code?.replaceAll('`', ''), meaning]))).toEqual(ERROR_CODES);
  });

  it('documents the defaults the schema really has', () => {
    const actual = parsePolicy('', 'defaults.yaml');
    const rows = tableAfter('## Policy reference').filter(([key, , value]) => !key?.includes('[') && value?.startsWith('`'));
    expect(rows.length).toBeGreaterThan(15);
    for (const [key, , value] of rows) {
      const path = (key as string).replaceAll('`', '').split('.');
      const yaml = path.reduceRight((inner, part) => `{ ${part}: ${inner} }`, (value as string).replaceAll('`', ''));
      const documented = parsePolicy(yaml.slice(2, -2), 'readme.yaml');
      expect(documented, `README default of ${path.join('.')}`).toEqual(actual);
    }
  });

  it('gives the two set-up commands first, and .ci/run runs the same test command', () => {
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(README)?.[1] ?? '';
    const commands = firstBlock.split('\n').filter((line) => line.trim() !== '').map((line) => line.replace(/\s+#.*$/, ''));
    expect(commands).toEqual(['npm ci && npm start', 'npm ci && npm test']);
    const ci = readFileSync(join(import.meta.dirname, '../../../.ci/run'), 'utf8');
    expect(ci).toContain('\nnpm ci && npm test\n');
  });

  it('lists exactly the keys a reload cannot change', () => {
    const marker = '<!-- restart-only keys: checked against src/config/restart-only-keys.ts -->';
    const start = README.indexOf(marker);
    expect(start).toBeGreaterThan(0);
    const paragraph = README.slice(start + marker.length).split('\n\n')[0] as string;
    expect([...paragraph.matchAll(/`([a-z_.]+)`/g)].map((match) => match[1])).toEqual([...RESTART_ONLY_KEYS]);
  });
});
