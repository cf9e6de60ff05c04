import type { Logger } from '../../ports/logger.js';
import type { ScoringMetrics } from '../../ports/metrics.js';
import { groupByVersion, type Work } from './work.js';

/**
 * Shadow versions score after the response is on its way and can never change it: each shadowed item is
 * scored by its shadow version (one batch per version), logged as a `shadow` audit record and observed for
 * drift; the shadow leases are released when all runs settle. Items without a shadow or features are skipped.
 */
export function scheduleShadow(work: readonly Work[], logger: Logger, metrics: ScoringMetrics): void {
  const shadowed = work.filter((w) => w.route?.shadow && w.features);
  if (shadowed.length === 0) return;
  const leases = shadowed.map((w) => w.route!.shadow!);
  setImmediate(() => {
    const runs = [...groupByVersion(shadowed, (w) => w.route!.shadow!.version)].map(async ([v, ws]) => {
      const rows = ws.map((w) => v.input(w.features!));
      const out = await v.scoreMany(rows);
      ws.forEach((w, k) => {
        const score = out[k]!.score;
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
    });
    void Promise.allSettled(runs).then((settled) => {
      for (const s of settled)
        if (s.status === 'rejected') logger.warn({ err: s.reason }, 'shadow scoring failed');
      for (const l of leases) l.release();
    });
  });
}
