import { eventTimeMs, type Label, TaggedEventSchema } from '../domain/events.js';
import type { EntitySpec } from '../domain/features/engine.js';
import type { ApplyOutcome, StoreEvent } from '../domain/features/records.js';
import {
  countOutcomes,
  decodeMessage,
  type EventKind,
  futureProblem,
  toStoreEvents,
} from '../domain/ingest.js';
import { type Problem, problemsOf } from '../domain/problems.js';
import type { FutureLimit } from '../ports/clock.js';
import type { DecisionLog, LabelFact, LabelResult } from '../ports/decision-log.js';
import type { FeatureStore } from '../ports/feature-store.js';

/** Why an event was refused before any write: it broke the schema, or it is dated too far ahead of the clock. */
export type RefusedOutcome = 'invalid' | 'future';

export interface Refused {
  /** Its position in the input. */
  readonly index: number;
  readonly outcome: RefusedOutcome;
  readonly problems: readonly Problem[];
}

/** Events that passed the checks, as store writes, and the ones refused, by their index in the input. */
export interface IngestBatch {
  readonly events: readonly StoreEvent[];
  /** `spans[k]`: how many store writes the k-th accepted event became (one per entity it touches). */
  readonly spans: readonly number[];
  readonly refused: readonly Refused[];
  /** The accepted labels, for the join with the decision log. */
  readonly labels: readonly LabelFact[];
}

export type IngestCounts = Record<ApplyOutcome, number>;

export interface IngestDeps {
  readonly store: FeatureStore;
  readonly entities: readonly EntitySpec[];
  /** The processing clock and MAX_EVENT_FUTURE_MS: events dated further ahead are refused as `future`. */
  readonly limit: FutureLimit;
  /**
   * The label join: each applied label is joined with the decisions of its transaction the models made (see
   * DecisionLog), and each result handed to `onLabel` (metrics).
   */
  readonly outcomes?: {
    readonly log: DecisionLog;
    readonly models: readonly string[];
    readonly onLabel?: (model: string, label: LabelFact, result: LabelResult) => void;
  };
}

export interface IngestResult {
  /**
   * Per event. `future` counts events the store itself refused: only when its clock reads earlier than the
   * check's did (a clock stepped back), as the check refuses the rest before any write.
   */
  readonly counts: IngestCounts;
  /** Event time (epoch ms) of the newest event the store took (applied, duplicate or late); -Infinity when none. */
  readonly newest: number;
  /** Labels joined with recorded decisions (per model), and labels of transactions no model scored. */
  readonly labels: { readonly joined: number; readonly unscored: number };
}

/**
 * The one way events enter the feature store, for the Kafka worker and for POST /v1/events alike: validate,
 * refuse what is dated more than `limit.maxFutureMs` after `limit.clock.now()` (a refused event is reported by
 * index, with its outcome and problems, and never written: the caller dead-letters or lists it), turn each
 * accepted event into one write per entity, apply, and count outcomes per event. Store errors propagate: the
 * worker retries holding its offsets, the API answers 503.
 */
export class Ingest {
  constructor(private readonly d: IngestDeps) {}

  /** Kafka message values of one topic's kind. */
  decodeMessages(kind: EventKind, values: readonly (Buffer | null)[]): IngestBatch {
    const b = this.builder();
    values.forEach((value, index) => {
      const v = decodeMessage(kind, value);
      if (v.ok) b.add(index, v.kind, v.event, '');
      else b.refuse(index, 'invalid', v.problems);
    });
    return b.batch;
  }

  /** `{type: 'transaction' | 'label', ...}` objects, as POST /v1/events takes them; problems are under `events.<index>`. */
  decodeTagged(raw: readonly unknown[]): IngestBatch {
    const b = this.builder();
    raw.forEach((r, index) => {
      const e = TaggedEventSchema.safeParse(r);
      if (!e.success) return b.refuse(index, 'invalid', problemsOf(e.error, `events.${index}`));
      const { type, ...event } = e.data;
      b.add(index, type, event as never, `events.${index}`);
    });
    return b.batch;
  }

  async apply(batch: IngestBatch): Promise<IngestResult> {
    let newest = Number.NEGATIVE_INFINITY;
    if (batch.events.length === 0)
      return { counts: { applied: 0, duplicate: 0, late: 0, future: 0 }, newest, labels: NO_LABELS };
    const outcomes = await this.d.store.apply(batch.events);
    batch.events.forEach((e, i) => {
      if (outcomes[i] !== 'future' && e.t > newest) newest = e.t;
    });
    // After the feature writes: a failure of either is retried whole, and both are idempotent.
    const labels = await this.join(batch.labels);
    return { counts: countOutcomes(outcomes, batch.spans), newest, labels };
  }

  private async join(labels: readonly LabelFact[]): Promise<IngestResult['labels']> {
    const o = this.d.outcomes;
    if (!o || labels.length === 0) return NO_LABELS;
    let joined = 0;
    let unscored = 0;
    for (const model of o.models) {
      const results = await o.log.label(model, labels);
      results.forEach((r, i) => {
        if (r.unscored) unscored++;
        else joined++;
        o.onLabel?.(model, labels[i]!, r);
      });
    }
    return { joined, unscored };
  }

  /** One clock reading per batch: every event of it is judged against the same time. */
  private builder(): BatchBuilder {
    return new BatchBuilder(this.d.entities, this.d.limit.clock.now(), this.d.limit.maxFutureMs);
  }
}

const NO_LABELS = { joined: 0, unscored: 0 } as const;

class BatchBuilder {
  readonly batch: { events: StoreEvent[]; spans: number[]; refused: Refused[]; labels: LabelFact[] } = {
    events: [],
    spans: [],
    refused: [],
    labels: [],
  };

  constructor(
    private readonly entities: readonly EntitySpec[],
    private readonly nowMs: number,
    private readonly maxFutureMs: number,
  ) {}

  add(index: number, kind: EventKind, event: Parameters<typeof toStoreEvents>[1], prefix: string): void {
    const future = futureProblem(kind, event, this.nowMs, this.maxFutureMs, prefix);
    if (future) {
      this.refuse(index, 'future', [future]);
      return;
    }
    const writes = toStoreEvents(kind, event, this.entities);
    for (const w of writes) this.batch.events.push(w);
    this.batch.spans.push(writes.length);
    if (kind === 'label') {
      const l = event as Label;
      // `labeled_at` is when the verdict was given; without it, when it reached us.
      this.batch.labels.push({
        transactionId: l.transaction_id,
        fraud: l.is_fraud,
        transactionAt: eventTimeMs(l.transaction_timestamp),
        labelledAt: l.labeled_at ? eventTimeMs(l.labeled_at) : this.nowMs,
      });
    }
  }

  refuse(index: number, outcome: RefusedOutcome, problems: readonly Problem[]): void {
    this.batch.refused.push({ index, outcome, problems });
  }
}
