import type { FeatureSet } from '../../src/domain/features/definition.js';
import type { GeneratedTx } from './generate.js';

const DAY = 86_400_000;

/**
 * Brute-force features straight from the definitions, over the whole history with every label known:
 * slow, obviously correct, and sharing no code with the engine.
 */
export function referenceFeatures(set: FeatureSet, history: readonly GeneratedTx[], index: number): number[] {
  const tx = history[index]!;
  const earlier = history.slice(0, index);
  return set.features.map((f) => {
    if (f.kind === 'request') return tx.amount;
    const d = new Date(tx.t);
    if (f.kind === 'calendar')
      return f.calendar === 'weekend'
        ? Number(d.getUTCDay() === 0 || d.getUTCDay() === 6)
        : Number(d.getUTCHours() <= f.night_end_hour);
    const key = set.entities[f.entity]!.key;
    const same = (x: GeneratedTx) => x[key] === tx[key];
    const hi = tx.t - f.delay_days * DAY;
    const lo = hi - f.window_days * DAY;
    if (f.delay_days > 0) {
      const w = history.filter((x) => same(x) && x.t > lo && x.t <= hi);
      if (f.aggregation === 'count') return w.length;
      return w.length === 0 ? 0 : w.filter((x) => x.fraud).length / w.length;
    }
    const prior = earlier.filter((x) => same(x) && x.t > lo && x.t <= hi);
    const all = [...prior, tx];
    const mean = (xs: GeneratedTx[]) => xs.reduce((s, x) => s + x.amount, 0) / xs.length;
    switch (f.aggregation) {
      case 'count':
        return all.length;
      case 'mean_amount':
        return mean(all);
      case 'fraud_rate':
        return all.filter((x) => x.fraud).length / all.length;
      case 'amount_ratio_to_prior_mean':
        return prior.length === 0 || mean(prior) === 0 ? 1 : tx.amount / mean(prior);
      case 'seconds_since_previous':
        return prior.length === 0
          ? f.window_days * 86_400
          : (tx.t - Math.max(...prior.map((x) => x.t))) / 1000;
    }
  });
}
