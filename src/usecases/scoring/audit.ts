import type { DecisionRecord } from '../../domain/scoring/decision-record.js';
import type { ScoreResult } from '../../domain/scoring/result.js';
import type { DecisionSink } from '../../ports/decision-sink.js';
import type { Logger } from '../../ports/logger.js';
import type { TraceContext } from '../../ports/tracer.js';
import type { Work } from './work.js';

/**
 * One audit record per answered transaction: a log line each on `log` (which binds `audit: "decision"`), and the
 * batch to the decision sink if any, with the scoring span's trace context when tracing is on.
 */
export function auditDecisions(
  work: readonly Work[],
  results: readonly ScoreResult[],
  log: Logger,
  sink: DecisionSink | undefined,
  trace?: TraceContext,
): void {
  // Typed at the literal, so that a field added here is checked against the record's own fields.
  const records = work.map((w): Unredacted<DecisionRecord> => {
    const r = results[w.index]!;
    return {
      transaction_id: r.transaction_id,
      customer_id: w.tx.customer_id,
      model: r.model.name,
      model_version: r.model.version,
      ...(r.shadow ? { shadow_version: r.shadow.version } : {}),
      score: r.score,
      decision: r.decision,
      reasons: r.reasons,
      degraded: r.degraded,
      ...(r.degraded_reasons ? { degraded_reasons: r.degraded_reasons } : {}),
    };
  });
  for (const rec of records) log.info(rec, 'decision');
  sink?.publish(records, trace);
}

/**
 * Audit lines are written unredacted (decisionAuditLogger): a record type with a field the service's redaction
 * covers (adapters/logging REDACT, whose top-level names these are) does not compile.
 */
type Unredacted<T> =
  Extract<
    keyof T,
    'device_id' | 'ip' | 'authorization' | 'token' | 'adminToken' | 'eventsToken'
  > extends never
    ? T
    : never;
