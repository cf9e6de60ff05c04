import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { type HandbookRow, handbookDatetime } from '../../domain/history.js';
import type { RowSource } from '../../ports/row-source.js';
import { CsvWriter } from './csv-writer.js';

const REQUIRED = ['TRANSACTION_ID', 'TX_DATETIME', 'CUSTOMER_ID', 'TERMINAL_ID', 'TX_AMOUNT'] as const;

/** `YYYY-MM-DD HH:MM:SS[.fff]` (no zone: UTC) or ISO-8601 with a zone. NaN when neither. */
export function parseHandbookTime(s: string): number {
  return handbookTimeParser()(s);
}

/** A parser that remembers the last date it saw: the date part repeats row after row, so it is parsed once. */
export function handbookTimeParser(): (s: string) => number {
  let lastDay = '';
  let lastDayMs = Number.NaN;
  return (s) => {
    if (s.length === 19 && s.charCodeAt(10) === 32) {
      const day = s.slice(0, 10);
      if (day !== lastDay) {
        lastDay = day;
        lastDayMs = /^\d{4}-\d{2}-\d{2}$/.test(day)
          ? Date.UTC(+day.slice(0, 4), +day.slice(5, 7) - 1, +day.slice(8, 10))
          : Number.NaN;
      }
      const h = digits2(s, 11);
      const m = digits2(s, 14);
      const sec = digits2(s, 17);
      if (s.charCodeAt(13) === 58 && s.charCodeAt(16) === 58 && h < 24 && m < 60 && sec < 60)
        return lastDayMs + ((h * 60 + m) * 60 + sec) * 1000;
      return Number.NaN;
    }
    const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d+)?$/.exec(s);
    if (!m) return Date.parse(s);
    const ms = m[7] ? Math.round(Number(m[7]) * 1000) : 0;
    return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, ms);
  };
}

/** Two ASCII digits at `at` as a number; NaN-free: anything else gives a value ≥ 100, refused by the caller. */
function digits2(s: string, at: number): number {
  const a = s.charCodeAt(at) - 48;
  const b = s.charCodeAt(at + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : 100;
}

/** Text of one plain or gzip file in pieces that end on a line break. */
async function* lineChunks(path: string): AsyncGenerator<string> {
  const raw = createReadStream(path, { highWaterMark: 1 << 20 });
  const input = path.endsWith('.gz') ? raw.pipe(createGunzip({ chunkSize: 1 << 20 })) : raw;
  const decoder = new TextDecoder();
  let rest = '';
  for await (const chunk of input as AsyncIterable<Buffer>) {
    const text = rest + decoder.decode(chunk, { stream: true });
    const cut = text.lastIndexOf('\n');
    rest = text.slice(cut + 1);
    if (cut >= 0) yield text.slice(0, cut + 1);
  }
  const last = rest + decoder.decode();
  if (last) yield `${last}\n`;
}

/**
 * Calls `onRow` for every row of every file, in order, checking that time never goes backwards (rows with
 * equal times keep their file order, which is the arrival order); `afterChunk` runs between chunks, e.g. to
 * wait for a slow writer. Rows are handed over one at a time and not kept, so the garbage stays young.
 */
export async function forEachHandbookRow(
  paths: readonly string[],
  onRow: (row: HandbookRow) => void,
  afterChunk?: () => Promise<void> | void,
): Promise<number> {
  let last = Number.NEGATIVE_INFINITY;
  let total = 0;
  for (const path of paths) {
    let parse: ((line: string, n: number) => HandbookRow) | undefined;
    let n = 0;
    for await (const text of lineChunks(path)) {
      let at = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; at = nl + 1, nl = text.indexOf('\n', at)) {
        n++;
        const line = text.charCodeAt(nl - 1) === 13 ? text.slice(at, nl - 1) : text.slice(at, nl);
        if (line === '') continue;
        if (!parse) {
          parse = rowParser(path, line);
          continue;
        }
        const row = parse(line, n);
        if (row.t < last)
          throw new OutOfOrderError(
            `${path}:${n}: transaction ${row.id} (${row.datetime}) is older than the one before it; ` +
              'give the files in time order, each sorted by TX_DATETIME',
          );
        last = row.t;
        total++;
        onRow(row);
      }
      await afterChunk?.();
    }
  }
  if (total === 0) throw new Error(`no transactions in ${paths.join(', ')}`);
  return total;
}

function rowParser(path: string, header: string): (line: string, n: number) => HandbookRow {
  const col: Record<string, number> = Object.fromEntries(
    header.split(',').map((name, i) => [name.trim(), i]),
  );
  const missing = REQUIRED.filter((c) => col[c] === undefined);
  if (missing.length) throw new Error(`${path}: missing column(s) ${missing.join(', ')}`);
  const [id, dt, cust, term, amt] = REQUIRED.map((c) => col[c]!) as [number, number, number, number, number];
  const fraudCol = col.TX_FRAUD ?? -1;
  const labeledCol = col.LABELED_AT ?? -1;
  const deviceCol = col.DEVICE_ID ?? -1;
  const ipCol = col.IP ?? -1;
  const parseTime = handbookTimeParser();
  const parseLabeled = handbookTimeParser();
  return (line, n) => {
    const f = line.split(',');
    const datetime = f[dt] ?? '';
    const t = parseTime(datetime);
    const amount = Number(f[amt]);
    if (f.length < 5 || !Number.isFinite(t) || !Number.isFinite(amount) || amount < 0)
      throw new Error(`${path}:${n}: bad row ${JSON.stringify(line.slice(0, 200))}`);
    const row = {
      id: f[id]!,
      datetime,
      t,
      customer_id: f[cust]!,
      terminal_id: f[term]!,
      amount,
      fraud: f[fraudCol] === '1',
      ...(f[deviceCol] ? { device_id: f[deviceCol] } : {}),
      ...(f[ipCol] ? { ip: f[ipCol] } : {}),
    };
    const labeled = labeledCol >= 0 ? f[labeledCol] : undefined;
    if (!labeled) return row;
    const labeledAt = parseLabeled(labeled);
    if (!Number.isFinite(labeledAt))
      throw new Error(`${path}:${n}: bad LABELED_AT ${JSON.stringify(labeled)}`);
    return { ...row, labeledAt };
  };
}

export class OutOfOrderError extends Error {
  override name = 'OutOfOrderError';
}

export const fileRows =
  (paths: readonly string[]): RowSource =>
  (onRow, afterChunk) =>
    forEachHandbookRow(paths, onRow, afterChunk);

export const arrayRows =
  (rows: readonly HandbookRow[]): RowSource =>
  async (onRow, afterChunk) => {
    for (const r of rows) onRow(r);
    await afterChunk?.();
    return rows.length;
  };

/** A field the reader's plain comma split would cut or merge. */
const UNWRITABLE = /[,"\r\n]/;

/**
 * Writes `rows` (in time order) as a handbook-format file that `forEachHandbookRow` reads back: TRANSACTION_ID,
 * TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_FRAUD, then LABELED_AT, DEVICE_ID and IP when some row
 * has them. The format has no quoting: rows with a comma, quote or line break in a field are skipped and counted.
 */
export async function writeHandbookCsv(
  path: string,
  rows: readonly HandbookRow[],
): Promise<{ written: number; unwritable: number }> {
  const labeled = rows.some((r) => r.labeledAt !== undefined);
  const device = rows.some((r) => r.device_id !== undefined);
  const ip = rows.some((r) => r.ip !== undefined);
  const csv = new CsvWriter(path);
  for (const c of [...REQUIRED, 'TX_FRAUD']) csv.text(c);
  if (labeled) csv.text('LABELED_AT');
  if (device) csv.text('DEVICE_ID');
  if (ip) csv.text('IP');
  csv.endRow();
  let written = 0;
  let unwritable = 0;
  for (const r of rows) {
    if ([r.id, r.customer_id, r.terminal_id, r.device_id ?? ''].some((f) => UNWRITABLE.test(f))) {
      unwritable++;
      continue;
    }
    csv.text(r.id);
    csv.text(r.datetime);
    csv.text(r.customer_id);
    csv.text(r.terminal_id);
    csv.number(r.amount);
    csv.text(r.fraud ? '1' : '0');
    if (labeled) csv.text(r.labeledAt === undefined ? '' : handbookDatetime(r.labeledAt));
    if (device) csv.text(r.device_id ?? '');
    if (ip) csv.text(r.ip ?? '');
    csv.endRow();
    written++;
    if (written % 100_000 === 0) await csv.flush();
  }
  await csv.close();
  return { written, unwritable };
}
