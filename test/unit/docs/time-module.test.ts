import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '../../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? sourceFiles(path) : entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** A call of a global timer or clock: not a method (`x.setTimeout`), not a field (`#timers`). */
const GLOBAL_TIME = /(?<![.\w#$])(setTimeout|setInterval|setImmediate|Date\.now|performance\.now)\(/;

/** A class's own method of that name (`setTimeout(ms: number): void {`), not a call. */
const METHOD_DECLARATION = /^\s*\w+\([^)]*\)\s*:\s*[\w<>|\[\] ]+\s*\{\s*$/;

describe('one time module', () => {
  it('nothing in src/ outside core/ reads the global clocks or sets a global timer (they take Clock, WallClock and Timers)', () => {
    const offenders: string[] = [];
    for (const file of sourceFiles(SRC)) {
      if (relative(SRC, file).startsWith('core/')) continue;
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, index) => {
          const code = line.replace(/\/\*.*?\*\//g, '').replace(/\/\/.*$/, '').replace(/^\s*\*.*$/, '');
          if (GLOBAL_TIME.test(code) && !METHOD_DECLARATION.test(code)) offenders.push(`${relative(SRC, file)}:${index + 1}: ${line.trim()}`);
        });
    }
    expect(offenders).toEqual([]);
  });
});
