import type { z } from 'zod';
import { eventTimeMs, type Label, LabelSchema, type Transaction, TransactionSchema } from './events.js';
import { type EntitySpec, labelEvents, transactionEvents } from './features/engine.js';
import type { ApplyOutcome, StoreEvent } from './features/records.js';

export type EventKind = 'transaction' | 'label';

export type Decoded =
  | { readonly ok: true; readonly kind: EventKind; readonly events: StoreEvent[] }
  | { readonly ok: false; readonly error: string };

export function toStoreEvents(
  kind: EventKind,
  e: Transaction | Label,
  entities: readonly EntitySpec[],
): StoreEvent[] {
  if (kind === 'transaction') {
    const tx = e as Transaction;
    return transactionEvents(
      {
        id: tx.transaction_id,
        t: eventTimeMs(tx.timestamp),
        amount: tx.amount,
        customer_id: tx.customer_id,
        terminal_id: tx.terminal_id,
      },
      entities,
    );
  }
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

/** `path: message; path: message` — readable in a dead-letter header or a 4xx body. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

/** Decodes one Kafka message value (JSON bytes) of the given topic kind; never throws. */
export function decodeMessage(
  kind: EventKind,
  value: Buffer | null,
  entities: readonly EntitySpec[],
): Decoded {
  if (!value || value.length === 0) return { ok: false, error: 'empty message' };
  let json: unknown;
  try {
    json = JSON.parse(value.toString('utf8'));
  } catch (err) {
    return { ok: false, error: `invalid JSON: ${(err as Error).message}` };
  }
  const parsed = (kind === 'transaction' ? TransactionSchema : LabelSchema).safeParse(json);
  if (!parsed.success) return { ok: false, error: describeIssues(parsed.error) };
  return { ok: true, kind, events: toStoreEvents(kind, parsed.data, entities) };
}

/** A transaction counts as applied when any of its entity writes changed state; a redelivery is all duplicates. */
export function summarize(outcomes: readonly ApplyOutcome[]): ApplyOutcome {
  if (outcomes.includes('applied')) return 'applied';
  if (outcomes.includes('duplicate')) return 'duplicate';
  return outcomes.length ? 'late' : 'duplicate';
}

/** Per-event outcomes, where event k wrote `spans[k]` entities in a row of `outcomes`. */
export function countOutcomes(
  outcomes: readonly ApplyOutcome[],
  spans: readonly number[],
): Record<ApplyOutcome, number> {
  const counts = { applied: 0, duplicate: 0, late: 0 };
  let at = 0;
  for (const n of spans) {
    counts[summarize(outcomes.slice(at, at + n))]++;
    at += n;
  }
  return counts;
}
