import { describe, expect, it } from 'vitest';
import { LogLineSplitter, MAX_LOG_LINE_BYTES, type LogLine } from '../../../src/replay/log-line-splitter.js';

/** Every line `chunks` make, end included. */
function split(chunks: string[]): LogLine[] {
  const splitter = new LogLineSplitter();
  return [...chunks.flatMap((chunk) => splitter.push(chunk)), ...splitter.end()];
}

describe('LogLineSplitter', () => {
  it('joins lines across chunks and drops CRLF endings, also when the CR and LF are in different chunks', () => {
    expect(split(['one\ntw', 'o\r', '\nthree\r\n', 'four'])).toEqual(['one', 'two', 'three', 'four']);
  });

  it('gives nothing for a log that ends with its newline, and nothing for an empty one', () => {
    expect(split(['a\n'])).toEqual(['a']);
    expect(split([])).toEqual([]);
  });

  it('turns a line longer than the limit into its start and length, across chunks, and goes on with the next line', () => {
    const chunk = 'x'.repeat(MAX_LOG_LINE_BYTES / 2);
    const lines = split(['before\nxx', chunk, chunk, chunk, 'yy\nafter\n']);
    expect(lines).toEqual(['before', { start: 'x'.repeat(200), bytes: 2 + 3 * chunk.length + 2 }, 'after']);
  });

  it('catches an overlong line held whole in one chunk, and one that never ends', () => {
    const long = 'z'.repeat(MAX_LOG_LINE_BYTES + 1);
    expect(split([`a\n${long}\nb\n`])).toEqual(['a', { start: 'z'.repeat(200), bytes: long.length }, 'b']);
    expect(split(['a\n', long, 'tail'])).toEqual(['a', { start: 'z'.repeat(200), bytes: long.length + 4 }]);
  });

  it('takes a line of exactly the limit as a line', () => {
    const exact = 'e'.repeat(MAX_LOG_LINE_BYTES);
    expect(split([exact.slice(0, 10), `${exact.slice(10)}\n`])).toEqual([exact]);
  });
});
