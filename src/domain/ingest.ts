import { eventTimeMs, type Label, LabelSchema, type Transaction, TransactionSchema } from './events.js';
import { type EntitySpec, labelEvents, type TxInput, transactionEvents } from './features/engine.js';
import { ipPrefix } from './features/keys.js';
import { type ApplyOutcome, latestEventTime, type StoreEvent } from './features/records.js';
import { type Problem, problemsOf } from './problems.js';

export type EventKind = 'transaction' | 'label';

/** The one conversion of a transaction (an event or a score request) into the engine's input. */
export function txInputOf(tx: Transaction): TxInput {
  return {
    id: tx.transaction_id,
    t: eventTimeMs(tx.timestamp),
    amount: tx.amount,
    customer_id: tx.customer_id,
    terminal_id: tx.terminal_id,
    // Optional: feature sets keyed by them (transaction_v3) default without them.
    ...(tx.device_id === undefined ? {} : { device_id: tx.device_id }),
    ...(tx.ip === undefined ? {} : { ip: tx.ip, ip_prefix: ipPrefix(tx.ip) }),
  };
}

/** One store write per entity of the union the event touches. */
export function toStoreEvents(
  kind: EventKind,
  e: Transaction | Label,
  entities: readonly EntitySpec[],
): StoreEvent[] {
  if (kind === 'transaction') return transactionEvents(txInputOf(e as Transaction), entities);
  const l = e as Label;
  return labelEvents(
    {
      txId: l.transaction_id,
      t: eventTimeMs(l.transaction_timestamp),
      fraud: l.is_fraud,
      customer_id: l.customer_id,
      terminal_id: l.terminal_id,
    },
    entities,
  );
}

/**
 * Event-time sanity: a transaction (or a label, by its `transaction_timestamp`) dated more than `maxFutureMs`
 * after the processing clock's `nowMs` is refused with a problem on that field, under `prefix` (`events.3`,
 * `transactions.0`). The ingest use case refuses such events as `future`; scoring answers them 400.
 */
export function futureProblem(
  kind: EventKind,
  e: Transaction | Label,
  nowMs: number,
  maxFutureMs: number,
  prefix = '',
): Problem | undefined {
  const field = kind === 'transaction' ? 'timestamp' : 'transaction_timestamp';
  const t = eventTimeMs(
    kind === 'transaction' ? (e as Transaction).timestamp : (e as Label).transaction_timestamp,
  );
  if (t <= latestEventTime(nowMs, maxFutureMs)) return undefined;
  return {
    path: prefix ? `${prefix}.${field}` : field,
    message: `must not be more than ${maxFutureMs} ms after the processing time (${new Date(nowMs).toISOString()})`,
  };
}

export type Validated =
  | { readonly ok: true; readonly kind: EventKind; readonly event: Transaction | Label }
  | { readonly ok: false; readonly problems: readonly Problem[] };

/** Validates one event of a known kind (a Kafka topic's message); never throws. */
export function validateEvent(kind: EventKind, json: unknown): Validated {
  const parsed = (kind === 'transaction' ? TransactionSchema : LabelSchema).safeParse(json);
  return parsed.success
    ? { ok: true, kind, event: parsed.data }
    : { ok: false, problems: problemsOf(parsed.error) };
}

/** Parses and validates one Kafka message value (JSON bytes); never throws. A message that is no JSON has a problem with an empty path. */
export function decodeMessage(kind: EventKind, value: Buffer | null): Validated {
  if (!value || value.length === 0) return { ok: false, problems: [{ path: '', message: 'empty message' }] };
  let json: unknown;
  try {
    json = JSON.parse(value.toString('utf8'));
  } catch (err) {
    return { ok: false, problems: [{ path: '', message: `invalid JSON: ${(err as Error).message}` }] };
  }
  return validateEvent(kind, json);
}

/**
 * A transaction counts as applied when any of its entity writes changed state; a redelivery is all duplicates.
 * Its writes share one event time, so a store refuses all of them as future or none.
 */
export function summarize(outcomes: readonly ApplyOutcome[]): ApplyOutcome {
  if (outcomes.includes('applied')) return 'applied';
  if (outcomes.includes('duplicate')) return 'duplicate';
  if (outcomes.includes('future')) return 'future';
  return outcomes.length ? 'late' : 'duplicate';
}

/** Per-event outcomes, where event k wrote `spans[k]` entities in a row of `outcomes`. */
export function countOutcomes(
  outcomes: readonly ApplyOutcome[],
  spans: readonly number[],
): Record<ApplyOutcome, number> {
  const counts = { applied: 0, duplicate: 0, late: 0, future: 0 };
  let at = 0;
  for (const n of spans) {
    counts[summarize(outcomes.slice(at, at + n))]++;
    at += n;
  }
  return counts;
}
