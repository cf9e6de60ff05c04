import type { DecisionRecord } from '../domain/scoring/decision-record.js';

/** Where audit records of decisions go besides the log (e.g. a Kafka topic). */
export interface DecisionSink {
  publish(records: readonly DecisionRecord[]): void;
}
