import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';

/** One row of the handbook's transaction files (TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, …, TX_FRAUD). */
export interface HandbookRow {
  readonly id: string;
  /** TX_DATETIME as written, e.g. `2018-04-01 00:00:31`. */
  readonly datetime: string;
  /** TX_DATETIME read as UTC, epoch ms. */
  readonly t: number;
  readonly customer_id: string;
  readonly terminal_id: string;
  readonly amount: number;
  readonly fraud: boolean;
}

const REQUIRED = ['TRANSACTION_ID', 'TX_DATETIME', 'CUSTOMER_ID', 'TERMINAL_ID', 'TX_AMOUNT'] as const;

/** `YYYY-MM-DD HH:MM:SS[.fff]` (no zone: UTC) or ISO-8601 with a zone. NaN when neither. */
export function parseHandbookTime(s: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d+)?$/.exec(s);
  if (!m) return Date.parse(s);
  const ms = m[7] ? Math.round(Number(m[7]) * 1000) : 0;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, ms);
}

/**
 * Streams rows of one plain or gzip CSV file in batches (one per chunk read), so a caller can process
 * millions of rows without holding them; a malformed row stops the read with its file and line number.
 */
export async function* readHandbookCsv(path: string): AsyncGenerator<HandbookRow[]> {
  const raw = createReadStream(path, { highWaterMark: 1 << 20 });
  const input = path.endsWith('.gz') ? raw.pipe(createGunzip({ chunkSize: 1 << 20 })) : raw;
  const decoder = new TextDecoder();
  let parse: ((line: string, n: number) => HandbookRow) | undefined;
  let rest = '';
  let n = 0;
  const lines = function* (text: string) {
    for (const line of text.split('\n')) {
      n++;
      const l = line.endsWith('\r') ? line.slice(0, -1) : line;
      if (l === '') continue;
      if (!parse) parse = rowParser(path, l);
      else yield parse(l, n);
    }
  };
  for await (const chunk of input as AsyncIterable<Buffer>) {
    const text = rest + decoder.decode(chunk, { stream: true });
    const cut = text.lastIndexOf('\n');
    rest = text.slice(cut + 1);
    yield [...lines(text.slice(0, Math.max(cut, 0)))];
  }
  yield [...lines(rest + decoder.decode())];
}

function rowParser(path: string, header: string): (line: string, n: number) => HandbookRow {
  const col: Record<string, number> = Object.fromEntries(
    header.split(',').map((name, i) => [name.trim(), i]),
  );
  const missing = REQUIRED.filter((c) => col[c] === undefined);
  if (missing.length) throw new Error(`${path}: missing column(s) ${missing.join(', ')}`);
  const [id, dt, cust, term, amt] = REQUIRED.map((c) => col[c]!) as [number, number, number, number, number];
  const fraudCol = col.TX_FRAUD ?? -1;
  return (line, n) => {
    const f = line.split(',');
    const datetime = f[dt] ?? '';
    const t = parseHandbookTime(datetime);
    const amount = Number(f[amt]);
    if (f.length < 5 || !Number.isFinite(t) || !Number.isFinite(amount) || amount < 0)
      throw new Error(`${path}:${n}: bad row ${JSON.stringify(line.slice(0, 200))}`);
    return {
      id: f[id]!,
      datetime,
      t,
      customer_id: f[cust]!,
      terminal_id: f[term]!,
      amount,
      fraud: f[fraudCol] === '1',
    };
  };
}

export class OutOfOrderError extends Error {
  override name = 'OutOfOrderError';
}

/**
 * Batches of rows of all files in order, checked to be in time order (rows with equal times keep their
 * file order, which is the arrival order). Out-of-order input is refused rather than silently reordered.
 */
export async function* readHandbookFiles(paths: readonly string[]): AsyncGenerator<HandbookRow[]> {
  let last = Number.NEGATIVE_INFINITY;
  let total = 0;
  for (const p of paths) {
    for await (const batch of readHandbookCsv(p)) {
      for (const r of batch) {
        if (r.t < last)
          throw new OutOfOrderError(
            `${p}: transaction ${r.id} (${r.datetime}) is older than the one before it; ` +
              'give the files in time order, each sorted by TX_DATETIME',
          );
        last = r.t;
      }
      total += batch.length;
      if (batch.length) yield batch;
    }
  }
  if (total === 0) throw new Error(`no transactions in ${paths.join(', ')}`);
}
