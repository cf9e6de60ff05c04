import { eventTimeMs, type Label, type Transaction } from './events.js';

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
  /**
   * When the fraud label became known (LABELED_AT, epoch ms), if the file says so: the backfill then applies the
   * label at that point of the replay, as the worker would have when the label arrived, instead of with the
   * transaction.
   */
  readonly labeledAt?: number;
  /** DEVICE_ID and IP, in files that have them (generated with devices, issue 20); absent when empty. */
  readonly device_id?: string;
  readonly ip?: string;
}

/** Where a Kafka message sat: arrival order, for ties in event time and for label corrections. */
export interface Arrival {
  readonly partition: number;
  readonly offset: number;
  /** The message's Kafka timestamp, epoch ms. */
  readonly timestamp: number;
}

/** One validated event as read from its topic. */
export interface Arrived<E> {
  readonly event: E;
  readonly at: Arrival;
}

export interface JoinedHistory {
  /** One row per transaction, by event time then arrival. */
  readonly rows: HandbookRow[];
  /** Transactions whose id had already been seen (a producer's retry): the first one is kept. */
  readonly duplicateTransactions: number;
  /** Labels whose transaction is not in the transactions read. */
  readonly unknownLabels: number;
  /** Labels replaced by a later label of the same transaction (corrections). */
  readonly supersededLabels: number;
}

/**
 * Topic order: offsets within a partition (a transaction's labels are keyed by its customer, so they share one),
 * Kafka timestamps across partitions.
 */
export function arrivalOrder(a: Arrival, b: Arrival): number {
  if (a.partition === b.partition) return a.offset - b.offset;
  return a.timestamp - b.timestamp || a.partition - b.partition;
}

/** `YYYY-MM-DD HH:MM:SS[.fff]`, UTC: the handbook's TX_DATETIME. */
export function handbookDatetime(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${ms % 1000 === 0 ? '' : iso.slice(19, 23)}`;
}

/**
 * Transactions and labels as they were published, into history rows: a transaction is a fraud when the last
 * label of it in topic order says so (later labels are corrections), and that label's `labeled_at`, when later
 * than the transaction, is the row's `labeledAt`. Pure; holds everything in memory.
 */
export function joinLabels(
  transactions: readonly Arrived<Transaction>[],
  labels: readonly Arrived<Label>[],
): JoinedHistory {
  const byId = new Map<string, { tx: Arrived<Transaction>; t: number; label?: Arrived<Label> }>();
  let duplicateTransactions = 0;
  for (const a of transactions) {
    if (byId.has(a.event.transaction_id)) duplicateTransactions++;
    else byId.set(a.event.transaction_id, { tx: a, t: eventTimeMs(a.event.timestamp) });
  }
  let unknownLabels = 0;
  let supersededLabels = 0;
  for (const l of labels) {
    const entry = byId.get(l.event.transaction_id);
    if (!entry) unknownLabels++;
    else if (!entry.label) entry.label = l;
    else {
      supersededLabels++;
      if (arrivalOrder(entry.label.at, l.at) <= 0) entry.label = l;
    }
  }
  const entries = [...byId.values()].sort((a, b) => a.t - b.t || arrivalOrder(a.tx.at, b.tx.at));
  const rows = entries.map(({ tx: { event: tx }, t, label }): HandbookRow => {
    const labeledAt = label?.event.labeled_at === undefined ? undefined : eventTimeMs(label.event.labeled_at);
    return {
      id: tx.transaction_id,
      datetime: handbookDatetime(t),
      t,
      customer_id: tx.customer_id,
      terminal_id: tx.terminal_id,
      amount: tx.amount,
      fraud: label?.event.is_fraud ?? false,
      ...(labeledAt !== undefined && labeledAt > t ? { labeledAt } : {}),
      ...(tx.device_id === undefined ? {} : { device_id: tx.device_id }),
      ...(tx.ip === undefined ? {} : { ip: tx.ip }),
    };
  });
  return { rows, duplicateTransactions, unknownLabels, supersededLabels };
}
