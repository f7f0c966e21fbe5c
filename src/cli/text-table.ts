/** One column of a text table. */
export interface TableColumn {
  readonly header: string;
  /** Numbers read best right-aligned. @default 'left' */
  readonly align?: 'left' | 'right';
}

/** Spaces between columns. */
const GAP = '  ';

/**
 * Renders rows as an aligned plain-text table under upper-case headers, one
 * line per row, no trailing spaces and no trailing newline. Cells are text
 * that came from the admin API (a ban's reason is typed by whoever banned):
 * control characters are shown escaped (`\n`, `\u001b`), so a cell can neither
 * break the table into fake rows nor send escape sequences to the terminal.
 */
export function renderTable(columns: readonly (TableColumn | string)[], rows: readonly (readonly string[])[]): string {
  const specs = columns.map((column) => (typeof column === 'string' ? { header: column } : column));
  const cells = rows.map((row) => specs.map((_, i) => printable(row[i] ?? '')));
  const widths = specs.map((spec, i) => Math.max(width(spec.header), ...cells.map((row) => width(row[i] as string))));
  const line = (row: readonly string[]) =>
    row
      .map((cell, i) => {
        const pad = ' '.repeat((widths[i] as number) - width(cell));
        return specs[i]?.align === 'right' ? pad + cell : cell + pad;
      })
      .join(GAP)
      .trimEnd();
  return [line(specs.map((spec) => spec.header)), ...cells.map(line)].join('\n');
}

/** Lays out `label  value` lines with the values aligned, for the key facts above a table. */
export function renderFacts(facts: readonly (readonly [label: string, value: string])[]): string {
  const labelWidth = Math.max(0, ...facts.map(([label]) => width(label)));
  return facts.map(([label, value]) => `${label}${' '.repeat(labelWidth - width(label))}${GAP}${printable(value)}`.trimEnd()).join('\n');
}

// C0 and C1 control characters, DEL included.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

const SHORT_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** Escapes control characters as JSON writes them (`\n`, `\u001b`), DEL and C1 included (JSON leaves those raw). */
export function printable(text: string): string {
  return text.replace(CONTROL, (char) => SHORT_ESCAPES[char] ?? `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Width in code points: good enough for the ASCII and the odd accented letter the tables hold. */
function width(text: string): number {
  return [...text].length;
}
