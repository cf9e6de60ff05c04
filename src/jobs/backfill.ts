import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { HandbookRow } from '../adapters/fs/handbook-csv.js';
import { MemoryFeatureStore } from '../adapters/memory/memory-store.js';
import { type CompiledFeatureSet, labelEvents, transactionEvents } from '../domain/features/engine.js';
import { DAY_MS } from '../domain/features/time.js';

export interface BackfillOptions {
  readonly set: CompiledFeatureSet;
  readonly output: string;
  readonly graceMs?: number;
  readonly onProgress?: (done: number) => void;
}

const BASE = ['TRANSACTION_ID', 'TX_DATETIME', 'CUSTOMER_ID', 'TERMINAL_ID', 'TX_AMOUNT', 'TX_FRAUD'];

/**
 * Replays the history in time order through the same engine the service uses, with the in-memory store,
 * and writes one row of features per transaction: the training set. Each fraud label is applied with its
 * transaction; the engine's delays decide when a label becomes visible, exactly as online.
 */
export async function backfill(
  batches: AsyncIterable<readonly HandbookRow[]>,
  o: BackfillOptions,
): Promise<{ rows: number }> {
  const { set } = o;
  const store = new MemoryFeatureStore({ horizonMs: set.lookbackMs + (o.graceMs ?? DAY_MS) });
  const featureCols = set.names.map((n, i) => ({ n, i })).filter((c) => !BASE.includes(c.n));
  const out = createWriteStream(o.output, { highWaterMark: 1 << 20 });
  const vector = new Float64Array(set.names.length);
  let chunk = `${[...BASE, ...featureCols.map((c) => c.n)].join(',')}\n`;

  let done = 0;
  for await (const rows of batches) {
    for (const r of rows) {
      const tx = {
        id: r.id,
        t: r.t,
        amount: r.amount,
        customer_id: r.customer_id,
        terminal_id: r.terminal_id,
      };
      const windows = set.entities.map((e) => store.records(e.name, tx[e.key]));
      set.compute(tx, windows, vector);
      for (const e of transactionEvents(tx, set.entities)) store.applySync(e);
      if (r.fraud)
        for (const e of labelEvents({ ...tx, txId: r.id, fraud: true }, set.entities)) store.applySync(e);

      chunk += `${r.id},${r.datetime},${r.customer_id},${r.terminal_id},${r.amount},${r.fraud ? 1 : 0}`;
      for (const c of featureCols) chunk += `,${vector[c.i]}`;
      chunk += '\n';
    }
    done += rows.length;
    if (!out.write(chunk)) await once(out, 'drain');
    chunk = '';
    o.onProgress?.(done);
  }
  out.end(chunk);
  await once(out, 'finish');
  return { rows: done };
}
