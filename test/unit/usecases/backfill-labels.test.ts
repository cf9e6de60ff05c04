import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadFeatureSets } from '../../../src/adapters/fs/feature-set-files.js';
import { arrayRows, forEachHandbookRow } from '../../../src/adapters/fs/handbook-csv.js';
import { MemoryFeatureStore } from '../../../src/adapters/memory/memory-store.js';
import { DAY_MS } from '../../../src/domain/features/time.js';
import type { HandbookRow } from '../../../src/domain/history.js';
import type { RowSink } from '../../../src/ports/row-source.js';
import { backfill } from '../../../src/usecases/backfill.js';
import { tempDir } from '../../helpers/temp-dir.js';

const set = loadFeatureSets('features').get('transaction_v2')!;
const T0 = Date.parse('2018-05-01T12:00:00Z');

function tx(id: string, day: number, fraud: boolean, labeledDay?: number): HandbookRow {
  const t = T0 + day * DAY_MS;
  return {
    id,
    datetime: new Date(t).toISOString(),
    t,
    customer_id: `C-${id}`,
    terminal_id: 'T',
    amount: 10,
    fraud,
    ...(labeledDay !== undefined ? { labeledAt: T0 + labeledDay * DAY_MS } : {}),
  };
}

async function risk30(rows: HandbookRow[]): Promise<Record<string, number>> {
  const table: (string | number)[][] = [];
  let row: (string | number)[] = [];
  const sink: RowSink = {
    text: (s) => void row.push(s),
    number: (n) => void row.push(n),
    endRow: () => {
      table.push(row);
      row = [];
    },
    flush: async () => {},
    close: async () => {},
  };
  await backfill(arrayRows(rows), {
    set,
    store: new MemoryFeatureStore({ horizonMs: set.lookbackMs + DAY_MS }),
    sink,
  });
  const col = table[0]!.indexOf('TERMINAL_ID_RISK_30DAY_WINDOW');
  return Object.fromEntries(table.slice(1).map((r) => [r[0] as string, r[col] as number]));
}

describe('backfill: labels by labeled_at', () => {
  it('applies a label when the replay reaches its labeled_at, not with its transaction', async () => {
    // b (day 10) sees a (day 0) in the terminal's delayed 30-day window; c (day 21) sees a and b.
    const immediate = await risk30([tx('a', 0, true), tx('b', 10, false), tx('c', 21, false)]);
    expect(immediate).toEqual({ a: 0, b: 1, c: 0.5 });
    const late = await risk30([tx('a', 0, true, 20), tx('b', 10, false), tx('c', 21, false)]);
    expect(late).toEqual({ a: 0, b: 0, c: 0.5 });
    // labeled_at before the delay ends changes nothing: the feature set's delay hides it anyway.
    expect(await risk30([tx('a', 0, true, 3), tx('b', 10, false), tx('c', 21, false)])).toEqual(immediate);
  });

  it('reads an optional LABELED_AT column', async () => {
    const dir = await tempDir('labeled-');
    const path = join(dir, 'x.csv');
    await writeFile(
      path,
      'TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD,LABELED_AT\n' +
        '1,2018-05-01 12:00:00,C,T,10,1,2018-05-21 00:00:00\n2,2018-05-02 12:00:00,C,T,10,0,\n',
    );
    const rows: HandbookRow[] = [];
    await forEachHandbookRow([path], (r) => rows.push(r));
    expect(rows[0]!.labeledAt).toBe(Date.parse('2018-05-21T00:00:00Z'));
    expect(rows[1]!.labeledAt).toBeUndefined();
  });
});
