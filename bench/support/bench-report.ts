import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';

/** Where every benchmark writes its JSON. */
export const RESULTS_DIR = join(import.meta.dirname, '..', 'results');

/** The machine a result was measured on, printed above each table and stored with it. */
export function environment(): { node: string; cpu: string; cores: number } {
  return { node: process.version, cpu: os.cpus()[0]?.model ?? 'unknown CPU', cores: os.cpus().length };
}

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Prints an aligned table: first column left, others right. */
export function printTable(title: string, header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number))).join('  ');
  console.log(`\n${title}`);
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}

/** Writes `bench/results/NAME.json` with the environment added. */
export async function writeResult(name: string, data: Record<string, unknown>): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${name}.json`);
  await writeFile(file, `${JSON.stringify({ benchmark: name, measuredAt: new Date().toISOString(), ...environment(), ...data }, null, 2)}\n`);
  return file;
}
