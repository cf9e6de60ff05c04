import { TaggedEventSchema } from '../domain/events.js';
import type { EntitySpec } from '../domain/features/engine.js';
import type { ApplyOutcome, StoreEvent } from '../domain/features/records.js';
import { countOutcomes, decodeMessage, type EventKind, toStoreEvents } from '../domain/ingest.js';
import { type Problem, problemsOf } from '../domain/problems.js';
import type { FeatureStore } from '../ports/feature-store.js';

/** Events that passed validation, as store writes, and the ones that did not, by their index in the input. */
export interface IngestBatch {
  readonly events: readonly StoreEvent[];
  /** `spans[k]`: how many store writes the k-th valid event became (one per entity it touches). */
  readonly spans: readonly number[];
  readonly invalid: readonly { readonly index: number; readonly problems: readonly Problem[] }[];
}

export type IngestCounts = Record<ApplyOutcome, number>;

export interface IngestDeps {
  readonly store: FeatureStore;
  readonly entities: readonly EntitySpec[];
}

export interface IngestResult {
  readonly counts: IngestCounts;
  /** Event time (epoch ms) of the newest event the store took (applied, duplicate or late); -Infinity when none. */
  readonly newest: number;
}

/**
 * The one way events enter the feature store, for the Kafka worker and for POST /v1/events alike: validate
 * (an invalid event is reported by index and never written: the caller dead-letters or lists it), turn
 * each valid event into one write per entity, apply, and count outcomes per event. Store errors propagate:
 * the worker retries holding its offsets, the API answers 503.
 */
export class Ingest {
  constructor(private readonly d: IngestDeps) {}

  /** Kafka message values of one topic's kind. */
  decodeMessages(kind: EventKind, values: readonly (Buffer | null)[]): IngestBatch {
    const b = new BatchBuilder(this.d.entities);
    values.forEach((value, index) => {
      const v = decodeMessage(kind, value);
      if (v.ok) b.add(v.kind, v.event);
      else b.reject(index, v.problems);
    });
    return b.batch;
  }

  /** `{type: 'transaction' | 'label', ...}` objects, as POST /v1/events takes them; problems are under `events.<index>`. */
  decodeTagged(raw: readonly unknown[]): IngestBatch {
    const b = new BatchBuilder(this.d.entities);
    raw.forEach((r, index) => {
      const e = TaggedEventSchema.safeParse(r);
      if (!e.success) return b.reject(index, problemsOf(e.error, `events.${index}`));
      const { type, ...event } = e.data;
      b.add(type, event as never);
    });
    return b.batch;
  }

  async apply(batch: IngestBatch): Promise<IngestResult> {
    let newest = Number.NEGATIVE_INFINITY;
    if (batch.events.length === 0)
      return { counts: { applied: 0, duplicate: 0, late: 0, future: 0 }, newest };
    const outcomes = await this.d.store.apply(batch.events);
    batch.events.forEach((e, i) => {
      if (outcomes[i] !== 'future' && e.t > newest) newest = e.t;
    });
    return { counts: countOutcomes(outcomes, batch.spans), newest };
  }
}

class BatchBuilder {
  readonly batch: { events: StoreEvent[]; spans: number[]; invalid: IngestBatch['invalid'][number][] } = {
    events: [],
    spans: [],
    invalid: [],
  };

  constructor(private readonly entities: readonly EntitySpec[]) {}

  add(kind: EventKind, event: Parameters<typeof toStoreEvents>[1]): void {
    const writes = toStoreEvents(kind, event, this.entities);
    for (const w of writes) this.batch.events.push(w);
    this.batch.spans.push(writes.length);
  }

  reject(index: number, problems: readonly Problem[]): void {
    this.batch.invalid.push({ index, problems });
  }
}
