import { DAY_MS } from '../domain/features/time.js';
import { type Comparison, comparePaired, compareUnpaired } from '../domain/performance/compare.js';
import type { Labelled } from '../domain/performance/delong.js';
import { type VersionMetrics, versionMetrics } from '../domain/performance/metrics.js';
import type { DecisionRole } from '../domain/performance/outcomes.js';
import type { Clock } from '../ports/clock.js';
import type { DecisionLog } from '../ports/decision-log.js';

export interface PerformanceDeps {
  readonly log: DecisionLog;
  readonly clock: Clock;
  /** The roles each version plays now (the registry's serving state). */
  readonly serving: (model: string) => { active?: string; canary?: string; shadow?: string };
  /** LABEL_MATURITY_DAYS in ms: an unlabelled decision this old counts as a non-fraud outcome. */
  readonly maturityMs: number;
  /** Below this many labelled frauds the comparison says `insufficient_data` (PERFORMANCE_MIN_FRAUDS). */
  readonly minFrauds: number;
  readonly alpha?: number;
  /** Labelled transactions per version the comparison reads at most (a deterministic subset by id beyond). */
  readonly maxCompared?: number;
}

export interface VersionReport extends VersionMetrics {
  readonly version: string;
  readonly role: DecisionRole | 'retired';
}

export interface PerformanceReport {
  readonly model: string;
  /** The first decision day counted (UTC), when `since` was given. */
  readonly since?: string;
  /** Labels of transactions no version of the model scored (or scored before the horizon). */
  readonly unscored_labels: number;
  readonly versions: readonly VersionReport[];
  readonly comparison?: Comparison;
}

const round6 = (x: number | null) => (x === null ? null : Math.round(x * 1e6) / 1e6);

/**
 * Live model performance from the decision log: each version's outcomes (explicit labels and matured
 * decisions), AUC and average precision, precision and recall at its review and decline thresholds, label
 * latency; and the champion (active) against the challenger (the shadow, paired; else the canary, unpaired).
 */
export class Performance {
  constructor(private readonly d: PerformanceDeps) {}

  async report(model: string, since?: number): Promise<PerformanceReport> {
    const fromDay = since === undefined ? 0 : Math.floor(since / DAY_MS);
    // A decision day has matured once all of it is LABEL_MATURITY_DAYS old.
    const maturedThroughDay = Math.floor((this.d.clock.now() - this.d.maturityMs) / DAY_MS) - 1;
    const serving = this.d.serving(model);
    const recorded = await this.d.log.versions(model);
    const roleOf = (v: string): VersionReport['role'] =>
      serving.active === v
        ? 'active'
        : serving.canary === v
          ? 'canary'
          : serving.shadow === v
            ? 'shadow'
            : 'retired';
    const versions = await Promise.all(
      [...recorded.keys()].map(async (version) => {
        const m = versionMetrics(await this.d.log.counts(model, version, fromDay, maturedThroughDay));
        return {
          version,
          role: roleOf(version),
          ...m,
          auc: round6(m.auc),
          average_precision: round6(m.average_precision),
          precision_at_review: round6(m.precision_at_review),
          recall_at_review: round6(m.recall_at_review),
          precision_at_decline: round6(m.precision_at_decline),
          recall_at_decline: round6(m.recall_at_decline),
        };
      }),
    );
    const comparison = await this.compare(model, serving, recorded, fromDay);
    return {
      model,
      ...(since === undefined ? {} : { since: new Date(fromDay * DAY_MS).toISOString() }),
      unscored_labels: await this.d.log.unscored(model),
      versions,
      ...(comparison ? { comparison } : {}),
    };
  }

  private async compare(
    model: string,
    serving: { active?: string; canary?: string; shadow?: string },
    recorded: ReadonlyMap<string, DecisionRole>,
    fromDay: number,
  ): Promise<Comparison | undefined> {
    const champion = serving.active;
    const challenger = serving.shadow ?? serving.canary;
    if (!champion || !challenger || !recorded.has(champion) || !recorded.has(challenger)) return undefined;
    const options = { alpha: this.d.alpha ?? 0.05, minFrauds: this.d.minFrauds };
    const [a, b] = await Promise.all([
      this.d.log.labelled(model, champion, fromDay),
      this.d.log.labelled(model, challenger, fromDay),
    ]);
    if (serving.shadow === challenger) {
      const pairs = this.bounded(
        [...a].flatMap(([id, x]) => {
          const y = b.get(id);
          return y ? [{ id, a: x.score, b: y.score, fraud: x.fraud }] : [];
        }),
      );
      return comparePaired(champion, challenger, pairs, options);
    }
    const only = (m: Map<string, Labelled>) => this.bounded([...m].map(([id, x]) => ({ id, ...x })));
    return compareUnpaired(champion, challenger, only(a), only(b), options);
  }

  /** At most `maxCompared` items: those whose ids hash lowest, so every replica compares the same subset. */
  private bounded<T extends { id: string }>(items: T[]): T[] {
    const max = this.d.maxCompared ?? 200_000;
    if (items.length <= max) return items;
    return items
      .map((x) => ({ x, h: fnv1a(x.id) }))
      .sort((p, q) => p.h - q.h || (p.x.id < q.x.id ? -1 : 1))
      .slice(0, max)
      .map((p) => p.x);
  }
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
