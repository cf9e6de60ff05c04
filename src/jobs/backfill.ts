import { CsvWriter } from '../adapters/fs/csv-writer.js';
import type { RowSource } from '../adapters/fs/handbook-csv.js';
import { type EntityState, MemoryFeatureStore } from '../adapters/memory/memory-store.js';
import type { CompiledFeatureSet, TxInput } from '../domain/features/engine.js';
import { DAY_MS } from '../domain/features/time.js';
import type { RecordColumns } from '../ports/feature-store.js';

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
export async function backfill(source: RowSource, o: BackfillOptions): Promise<{ rows: number }> {
  const { set } = o;
  const store = new MemoryFeatureStore({ horizonMs: set.lookbackMs + (o.graceMs ?? DAY_MS) });
  const featureCols = set.names.flatMap((n, i) => (BASE.includes(n) ? [] : [i]));
  const out = new CsvWriter(o.output);
  for (const name of [...BASE, ...featureCols.map((i) => set.names[i]!)]) out.text(name);
  out.endRow();
  const vector = new Float64Array(set.names.length);
  const entities = set.entities;
  const states: EntityState[] = [];
  const windows: RecordColumns[] = [];

  let done = 0;
  const rows = await source(
    (r) => {
      const tx: TxInput = r;
      for (let e = 0; e < entities.length; e++) {
        states[e] = store.entity(entities[e]!.name, tx[entities[e]!.key]);
        windows[e] = states[e]!.records;
      }
      set.compute(tx, windows, vector);
      for (const s of states) store.applyTxTo(s, r.id, r.t, r.amount);
      if (r.fraud) for (const s of states) store.applyLabelTo(s, r.id, r.t, true);
      out.text(r.id);
      out.text(r.datetime);
      out.text(r.customer_id);
      out.text(r.terminal_id);
      out.number(r.amount);
      out.text(r.fraud ? '1' : '0');
      for (const i of featureCols) out.number(vector[i]!);
      out.endRow();
      done++;
    },
    async () => {
      await out.flush();
      o.onProgress?.(done);
    },
  );
  await out.close();
  return { rows };
}
