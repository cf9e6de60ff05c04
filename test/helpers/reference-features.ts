import type { FeatureSet, KeyField } from '../../src/domain/features/definition.js';
import { ipPrefix } from '../../src/domain/features/keys.js';
import type { GeneratedTx } from './generate.js';

const DAY = 86_400_000;

const prefixes = new Map<string, string | undefined>();

function keyOf(x: GeneratedTx, field: KeyField): string | undefined {
  if (field !== 'ip_prefix') return x[field];
  if (x.ip === undefined) return undefined;
  if (!prefixes.has(x.ip)) prefixes.set(x.ip, ipPrefix(x.ip));
  return prefixes.get(x.ip);
}

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
    const own = keyOf(tx, key);
    const ofKey = f.of === undefined ? undefined : set.entities[f.of]!.key;
    const span = f.window_days * 86_400;
    // Documented defaults of a transaction without the entity's field: an empty window, without the transaction.
    if (own === undefined)
      return f.aggregation === 'amount_ratio_to_prior_mean'
        ? 1
        : f.aggregation === 'seconds_since_previous' || f.aggregation === 'seconds_since_first_with'
          ? span
          : 0;
    const same =
      key === 'ip_prefix' ? (x: GeneratedTx) => keyOf(x, key) === own : (x: GeneratedTx) => x[key] === own;
    const hi = tx.t - f.delay_days * DAY;
    const lo = hi - f.window_days * DAY;
    const distinct = (xs: GeneratedTx[]) =>
      new Set(xs.map((x) => keyOf(x, ofKey!)).filter((v) => v !== undefined)).size;
    if (f.delay_days > 0) {
      const w = history.filter((x) => same(x) && x.t > lo && x.t <= hi);
      if (f.aggregation === 'count') return w.length;
      if (f.aggregation === 'count_distinct') return distinct(w);
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
      case 'count_distinct':
        return distinct(all);
      case 'seconds_since_first_with':
      case 'new_with': {
        const mine = keyOf(tx, ofKey!);
        const before = prior.filter((x) => mine !== undefined && keyOf(x, ofKey!) === mine);
        if (f.aggregation === 'new_with') return mine !== undefined && before.length === 0 ? 1 : 0;
        return before.length === 0 ? span : (tx.t - Math.min(...before.map((x) => x.t))) / 1000;
      }
    }
  });
}
