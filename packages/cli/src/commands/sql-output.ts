/** How `ward exec` prints SQL results. */
export type SqlFormat = 'table' | 'csv' | 'json';

export const SQL_FORMATS: readonly SqlFormat[] = ['table', 'csv', 'json'];

/** Aligned columns like psql's default output, `NULL` shown as empty, then `(n rows)`. */
export function formatTable(columns: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | null>>): string {
  const widths = columns.map((c, i) => Math.max(width(c), ...rows.map((r) => width(r[i] ?? ''))));
  const pad = (v: string, i: number) => v + ' '.repeat(Math.max(0, (widths[i] ?? 0) - width(v)));
  const line = (values: ReadonlyArray<string | null>) =>
    ` ${values.map((v, i) => pad(oneLine(v ?? ''), i)).join(' | ')}`.trimEnd();
  const out = [
    line(columns),
    widths.map((w) => '-'.repeat(w + 2)).join('+'),
    ...rows.map(line),
    `(${rows.length} ${rows.length === 1 ? 'row' : 'rows'})`,
  ];
  return `${out.join('\n')}\n`;
}

/** One CSV record (RFC 4180): quoted when it holds a comma, quote, CR or LF; NULL as an empty field. */
export function csvLine(values: ReadonlyArray<string | null>): string {
  return `${values.map((v) => (v === null ? '' : /[",\r\n]/.test(v) || v === '' ? `"${v.replace(/"/g, '""')}"` : v)).join(',')}\r\n`;
}

/** One JSON object per row (NDJSON), values as Postgres' text, NULL as null. */
export function jsonLine(columns: readonly string[], values: ReadonlyArray<string | null>): string {
  const row: Record<string, string | null> = {};
  columns.forEach((c, i) => {
    row[c] = values[i] ?? null;
  });
  return `${JSON.stringify(row)}\n`;
}

// Control characters would break the alignment (and a terminal); shown escaped.
function oneLine(v: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
  return v.replace(/[\u0000-\u001f\u007f]/g, (c) =>
    c === '\n'
      ? '\\n'
      : c === '\t'
        ? '\\t'
        : c === '\r'
          ? '\\r'
          : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

/** Display width: code points, with CJK and emoji counted as two columns (good enough for tables). */
function width(v: string): number {
  let n = 0;
  for (const ch of oneLine(v)) {
    const cp = ch.codePointAt(0) ?? 0;
    n +=
      cp >= 0x1100 &&
      (cp <= 0x115f ||
        (cp >= 0x2e80 && cp <= 0xa4cf) ||
        (cp >= 0xac00 && cp <= 0xd7a3) ||
        (cp >= 0xf900 && cp <= 0xfaff) ||
        (cp >= 0xfe30 && cp <= 0xfe4f) ||
        (cp >= 0xff00 && cp <= 0xff60) ||
        (cp >= 0xffe0 && cp <= 0xffe6) ||
        (cp >= 0x1f300 && cp <= 0x1faff) ||
        (cp >= 0x20000 && cp <= 0x3fffd))
        ? 2
        : 1;
  }
  return n;
}
