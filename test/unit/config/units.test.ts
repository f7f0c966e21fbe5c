import { describe, expect, it } from 'vitest';
import { parseByteSize } from '../../../src/config/byte-size.js';
import { formatDurationMs, parseDurationMs } from '../../../src/config/duration.js';
import { parseListenAddress } from '../../../src/config/listen-address.js';
import { parseRate } from '../../../src/config/rate.js';

describe('parseRate', () => {
  it.each([
    ['20/s', 20 / 1000],
    ['300/min', 300 / 60_000],
    ['5/h', 5 / 3_600_000],
    ['0.5/s', 0.5 / 1000],
    ['10/m', 10 / 60_000],
    [' 7 / s ', 7 / 1000],
    ['100/day', 100 / 86_400_000],
  ])('%s', (text, perMs) => {
    expect(parseRate(text)?.perMs).toBeCloseTo(perMs, 15);
  });

  it.each(['20 per second', '20', '0/s', '-1/s', '20/fortnight', '/s', '20/', '1e3/s', ''])('refuses %j', (text) => {
    expect(parseRate(text)).toBeNull();
  });
});

describe('parseDurationMs', () => {
  it.each([
    ['500ms', 500],
    ['2s', 2000],
    ['10m', 600_000],
    ['1h30m', 5_400_000],
    ['7d', 604_800_000],
    ['1w', 604_800_000],
    ['1.5s', 1500],
  ])('%s', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });

  it.each(['2', '2 seconds', 's', '2x', '-2s', '', '2s3'])('refuses %j', (text) => {
    expect(parseDurationMs(text)).toBeNull();
  });

  it('formats back to the largest exact unit', () => {
    expect(formatDurationMs(120_000)).toBe('2m');
    expect(formatDurationMs(90_000)).toBe('90s');
    expect(formatDurationMs(1500)).toBe('1500ms');
  });
});

describe('parseByteSize', () => {
  it.each([
    ['64MiB', 64 * 1024 * 1024],
    ['10MB', 10_000_000],
    ['512KiB', 512 * 1024],
    ['100B', 100],
    ['1GiB', 1024 ** 3],
  ])('%s', (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes);
  });

  it.each(['64', '64mb', '64 megabytes', '1.5MB', 'MiB'])('refuses %j', (text) => {
    expect(parseByteSize(text)).toBeNull();
  });
});

describe('parseListenAddress', () => {
  it.each([
    ['0.0.0.0:8000', { host: '0.0.0.0', port: 8000 }],
    ['[::]:8000', { host: '::', port: 8000 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
    ['[2001:db8::1]:443', { host: '2001:db8::1', port: 443 }],
  ])('%s', (text, expected) => {
    expect(parseListenAddress(text)).toEqual(expected);
  });

  it.each(['8000', '0.0.0.0', '0.0.0.0:70000', ':::8000', '[nothost]:80', 'a:b'])('refuses %j', (text) => {
    expect(parseListenAddress(text)).toBeNull();
  });
});
