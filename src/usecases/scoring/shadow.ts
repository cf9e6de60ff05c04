import type { Clock } from '../../ports/clock.js';
import type { DecisionEntry } from '../../ports/decision-log.js';
import type { Logger } from '../../ports/logger.js';
import type { ScoringMetrics } from '../../ports/metrics.js';
import type { DecisionRecorder } from './decision-recorder.js';
import { groupByVersion, type Work } from './work.js';

/**
 * Shadow versions score after the response is on its way and can never change it: each shadowed item is
 * scored by its shadow version (one batch per version), logged as a `shadow` audit record and observed for
 * drift (and recorded in the decision log, when given); the shadow leases are released when all runs settle. Items
 * without a shadow or features are skipped. Resolves when they are all scored (undefined when none is shadowed).
 */
export function scheduleShadow(
  work: readonly Work[],
  logger: Logger,
  metrics: ScoringMetrics,
  log?: { readonly recorder: DecisionRecorder; readonly clock: Clock },
): Promise<void> | undefined {
  const shadowed = work.filter((w) => w.route?.shadow && w.features);
  if (shadowed.length === 0) return undefined;
  const leases = shadowed.map((w) => w.route!.shadow!);
  return new Promise<void>((resolve) => setImmediate(resolve))
    .then(() => {
      const runs = [...groupByVersion(shadowed, (w) => w.route!.shadow!.version)].map(async ([v, ws]) => {
        const rows = ws.map((w) => v.input(w.features!));
        const out = await v.scoreMany(rows);
        const at = log?.clock.now() ?? 0;
        const entries: DecisionEntry[] = [];
        ws.forEach((w, k) => {
          const score = out[k]!.score;
          if (log && Number.isFinite(score))
            entries.push({
              transactionId: w.tx.transaction_id,
              decisions: [{ version: v.version, role: 'shadow', score, decision: v.decide(score), at }],
            });
          v.drift.observe(rows[k]!, score);
          metrics.score.observe({ model_version: v.version }, score);
          logger.info(
            {
              audit: 'shadow',
              transaction_id: w.tx.transaction_id,
              model: v.name,
              model_version: v.version,
              score,
              decision: v.decide(score),
              primary_version: w.route!.primary.version.version,
            },
            'shadow score',
          );
        });
        log?.recorder.record(entries);
      });
      return Promise.allSettled(runs).then((settled) => {
        for (const s of settled)
          if (s.status === 'rejected') logger.warn({ err: s.reason }, 'shadow scoring failed');
        for (const l of leases) l.release();
      });
    })
    .catch((err: unknown) => logger.warn({ err }, 'shadow scoring failed'));
}
