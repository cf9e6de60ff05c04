import { type CompiledFeatureSet, keyValue, linksOf, type TxInput } from '../domain/features/engine.js';
import { type Links, NO_RECORDS, type RecordColumns } from '../domain/features/records.js';
import type { HandbookRow } from '../domain/history.js';
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
 * transaction — or, when the row says when it was labelled (`labeledAt`, later than the transaction), once the
 * replay reaches that time, as the worker applies a label when it arrives; the engine's delays then decide
 * when a label becomes visible, exactly as online. TX_FRAUD (the training target) is the label either way.
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

  // Labels known later than their transaction, by the time they become known (a binary min-heap).
  const later: HandbookRow[] = [];
  // Labels reach the entities they name (labelEvents): the customer's and the terminal's.
  const labelNow = (r: HandbookRow) => {
    for (const e of entities)
      if (e.key === 'customer_id' || e.key === 'terminal_id')
        store.applyLabelTo(store.entity(e.name, r[e.key]), r.id, r.t, true);
  };

  let done = 0;
  const rows = await source(
    (r) => {
      while (later.length > 0 && later[0]!.labeledAt! <= r.t) labelNow(popEarliest(later));
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
      if (r.fraud && r.labeledAt !== undefined && r.labeledAt > r.t) pushLabel(later, r);
      else if (r.fraud) labelNow(r);
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

function pushLabel(heap: HandbookRow[], r: HandbookRow): void {
  heap.push(r);
  for (let i = heap.length - 1; i > 0; ) {
    const up = (i - 1) >> 1;
    if (heap[up]!.labeledAt! <= heap[i]!.labeledAt!) break;
    [heap[up], heap[i]] = [heap[i]!, heap[up]!];
    i = up;
  }
}

function popEarliest(heap: HandbookRow[]): HandbookRow {
  const top = heap[0]!;
  const last = heap.pop()!;
  if (heap.length > 0) {
    heap[0] = last;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && heap[l]!.labeledAt! < heap[m]!.labeledAt!) m = l;
      if (r < heap.length && heap[r]!.labeledAt! < heap[m]!.labeledAt!) m = r;
      if (m === i) break;
      [heap[m], heap[i]] = [heap[i]!, heap[m]!];
      i = m;
    }
  }
  return top;
}
