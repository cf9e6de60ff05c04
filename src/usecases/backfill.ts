import { type CompiledFeatureSet, keyValue, linksOf, type TxInput } from '../domain/features/engine.js';
import { type Links, NO_RECORDS, type RecordColumns } from '../domain/features/records.js';
import type { RowSink, RowSource } from '../ports/row-source.js';
import type { EntityWindowState, WindowStateStore } from '../ports/window-state.js';

export interface BackfillOptions {
  readonly set: CompiledFeatureSet;
  /** Window state for every entity; its retention must cover the set's lookback (the in-memory store). */
  readonly store: WindowStateStore;
  /** The training table, one row per transaction. */
  readonly sink: RowSink;
  readonly onProgress?: (done: number) => void;
}

const BASE = ['TRANSACTION_ID', 'TX_DATETIME', 'CUSTOMER_ID', 'TERMINAL_ID', 'TX_AMOUNT', 'TX_FRAUD'];

/**
 * Replays the history in time order through the same engine the service uses, with the in-memory store,
 * and writes one row of features per transaction: the training set. Each fraud label is applied with its
 * transaction; the engine's delays decide when a label becomes visible, exactly as online.
 */
export async function backfill(source: RowSource, o: BackfillOptions): Promise<{ rows: number }> {
  const { set, store } = o;
  const featureCols = set.names.flatMap((n, i) => (BASE.includes(n) ? [] : [i]));
  const out = o.sink;
  for (const name of [...BASE, ...featureCols.map((i) => set.names[i]!)]) out.text(name);
  out.endRow();
  const vector = new Float64Array(set.names.length);
  const entities = set.entities;
  const states: (EntityWindowState | undefined)[] = [];
  const links: (Links | undefined)[] = [];
  const windows: RecordColumns[] = [];
  const linked = entities.some((e) => e.links);

  let done = 0;
  const rows = await source(
    (r) => {
      const tx: TxInput = r;
      for (let e = 0; e < entities.length; e++) {
        const spec = entities[e]!;
        // Without the optional field (a device id, an IP) the entity is not written and its features default.
        const id = keyValue(tx, spec.key);
        states[e] = id === undefined ? undefined : store.entity(spec.name, id);
        windows[e] = states[e]?.records ?? NO_RECORDS;
        if (linked) links[e] = linksOf(spec, tx);
      }
      set.compute(tx, windows, vector);
      for (let e = 0; e < entities.length; e++) {
        const s = states[e];
        if (s) store.applyTxTo(s, r.id, r.t, r.amount, links[e]);
      }
      // Labels reach the entities they name (labelEvents): the customer's and the terminal's.
      if (r.fraud)
        for (let e = 0; e < entities.length; e++) {
          const s = states[e];
          const key = entities[e]!.key;
          if (s && (key === 'customer_id' || key === 'terminal_id')) store.applyLabelTo(s, r.id, r.t, true);
        }
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
