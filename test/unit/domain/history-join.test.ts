import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { forEachHandbookRow, writeHandbookCsv } from '../../../src/adapters/fs/handbook-csv.js';
import type { Label, Transaction } from '../../../src/domain/events.js';
import { type Arrived, type HandbookRow, handbookDatetime, joinLabels } from '../../../src/domain/history.js';
import { tempDir } from '../../helpers/temp-dir.js';

const T0 = Date.parse('2018-04-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const at = (partition: number, offset: number, timestamp = 1000 + offset) => ({
  partition,
  offset,
  timestamp,
});
const tx = (id: string, s: number, a = at(0, Number(id)), extra = {}): Arrived<Transaction> => ({
  event: {
    transaction_id: id,
    timestamp: iso(T0 + s * 1000),
    customer_id: `c${id}`,
    terminal_id: 't1',
    amount: 12.5,
    ...extra,
  },
  at: a,
});
const label = (id: string, fraud: boolean, a: ReturnType<typeof at>, labeledAt?: number): Arrived<Label> => ({
  event: {
    transaction_id: id,
    customer_id: `c${id}`,
    terminal_id: 't1',
    transaction_timestamp: iso(T0),
    is_fraud: fraud,
    ...(labeledAt === undefined ? {} : { labeled_at: iso(labeledAt) }),
  },
  at: a,
});

describe('joinLabels (the Kafka history export)', () => {
  it('orders by event time then arrival, keeps the last label in topic order, and counts the rest', () => {
    const j = joinLabels(
      [
        tx('3', 5, at(1, 0, 50)),
        tx('1', 5, at(0, 7, 10)),
        tx('2', 1, at(0, 8)),
        tx('1', 9, at(0, 9)), // a producer's retry: the first is kept
        tx('4', 2, at(0, 10), { device_id: 'd1', ip: '10.0.0.1' }),
      ],
      [
        // Read out of order: offsets decide within a partition.
        label('2', false, at(0, 21)),
        label('2', true, at(0, 20)),
        label('3', true, at(1, 3), T0 + 86_400_000),
        label('4', true, at(0, 22), T0), // labelled before the transaction's time: no LABELED_AT
        label('9', true, at(0, 23)),
      ],
    );
    expect(j).toMatchObject({ duplicateTransactions: 1, unknownLabels: 1, supersededLabels: 1 });
    expect(j.rows.map((r) => [r.id, r.datetime, r.fraud, r.labeledAt])).toEqual([
      ['2', '2018-04-01 00:00:01', false, undefined],
      ['4', '2018-04-01 00:00:02', true, undefined],
      ['1', '2018-04-01 00:00:05', false, undefined],
      ['3', '2018-04-01 00:00:05', true, T0 + 86_400_000],
    ]);
    expect(j.rows[1]).toMatchObject({ device_id: 'd1', ip: '10.0.0.1' });
  });

  it('writes rows the handbook reader reads back as they were', async () => {
    const rows: HandbookRow[] = [
      {
        id: 'a',
        datetime: handbookDatetime(T0 + 1),
        t: T0 + 1,
        customer_id: 'c',
        terminal_id: 't',
        amount: 3.25,
        fraud: true,
        labeledAt: T0 + 5000,
        device_id: 'd',
        ip: '::1',
      },
      {
        id: 'b,c',
        datetime: handbookDatetime(T0 + 2),
        t: T0 + 2,
        customer_id: 'c',
        terminal_id: 't',
        amount: 1,
        fraud: false,
      },
      {
        id: 'd',
        datetime: handbookDatetime(T0 + 3000),
        t: T0 + 3000,
        customer_id: 'c',
        terminal_id: 't',
        amount: 0,
        fraud: false,
      },
    ];
    const path = join(await tempDir('history-'), 'h.csv');
    expect(await writeHandbookCsv(path, rows)).toEqual({ written: 2, unwritable: 1 });
    expect((await readFile(path, 'utf8')).split('\n')[0]).toBe(
      'TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD,LABELED_AT,DEVICE_ID,IP',
    );
    const back: HandbookRow[] = [];
    await forEachHandbookRow([path], (r) => back.push(r));
    expect(back).toEqual([rows[0], rows[2]]);
  });
});
