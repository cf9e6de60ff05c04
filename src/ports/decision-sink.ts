import type { DecisionRecord } from '../domain/scoring/decision-record.js';
import type { TraceContext } from './tracer.js';

/** Where audit records of decisions go besides the log (e.g. a Kafka topic). */
export interface DecisionSink {
  /** `trace`: the span that decided, for the records to carry (W3C trace context headers on Kafka). */
  publish(records: readonly DecisionRecord[], trace?: TraceContext): void;
}
