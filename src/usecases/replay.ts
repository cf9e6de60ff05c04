import type { Label, Transaction } from '../domain/events.js';
import type { HandbookRow } from '../domain/history.js';
import type { EventSink } from '../ports/event-sink.js';
import type { RowSource } from '../ports/row-source.js';

export interface ReplayOptions {
  /** Transactions per second; 0 = as fast as possible. */
  readonly rate: number;
  readonly batchSize?: number;
  readonly onProgress?: (sent: number) => void;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

const iso = (t: number) => new Date(t).toISOString();

export function transactionOf(r: HandbookRow): Transaction {
  return {
    transaction_id: r.id,
    timestamp: iso(r.t),
    customer_id: r.customer_id,
    terminal_id: r.terminal_id,
    amount: r.amount,
    ...(r.device_id === undefined ? {} : { device_id: r.device_id }),
    ...(r.ip === undefined ? {} : { ip: r.ip }),
  };
}

export function labelOf(r: HandbookRow): Label {
  return {
    transaction_id: r.id,
    customer_id: r.customer_id,
    terminal_id: r.terminal_id,
    transaction_timestamp: iso(r.t),
    is_fraud: true,
    source: 'replay',
  };
}

/**
 * Publishes each transaction (keyed by customer, so one customer's events stay in order) and, for each fraud,
 * a label right after it. The rate is kept per batch against the wall clock.
 */
export async function replay(
  source: RowSource,
  sink: EventSink,
  o: ReplayOptions,
): Promise<{ transactions: number; labels: number }> {
  const size = o.batchSize ?? 500;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = o.now ?? (() => performance.now());
  const started = now();
  let transactions = 0;
  let labels = 0;
  let pending: HandbookRow[] = [];
  const send = async () => {
    const rows = pending;
    pending = [];
    for (let i = 0; i < rows.length; i += size) {
      const slice = rows.slice(i, i + size);
      const txs = slice.map((r) => ({ key: r.customer_id, value: JSON.stringify(transactionOf(r)) }));
      const labs = slice
        .filter((r) => r.fraud)
        .map((r) => ({ key: r.customer_id, value: JSON.stringify(labelOf(r)) }));
      await sink.send('transactions', txs);
      if (labs.length) await sink.send('labels', labs);
      transactions += txs.length;
      labels += labs.length;
      o.onProgress?.(transactions);
      if (o.rate > 0) {
        const wait = started + (transactions / o.rate) * 1000 - now();
        if (wait > 0) await sleep(wait);
      }
    }
  };
  await source((r) => void pending.push(r), send);
  return { transactions, labels };
}
