import { expect } from 'vitest';
import { systemClock } from '../../src/adapters/clock/system-clock.js';
import { MemoryFeatureStore } from '../../src/adapters/memory/memory-store.js';
import {
  type CompiledFeatureSet,
  type EntitySpec,
  labelEvents,
  transactionEvents,
} from '../../src/domain/features/engine.js';
import { DAY_MS } from '../../src/domain/features/time.js';
import type { FutureLimit } from '../../src/ports/clock.js';
import type { FeatureStore } from '../../src/ports/feature-store.js';
import type { GeneratedTx } from './generate.js';

/** The default MAX_EVENT_FUTURE_MS (10 minutes) on the real clock: generated history (2018) lies in the past. */
export const realTimeLimit: FutureLimit = { clock: systemClock, maxFutureMs: 600_000 };

/** The retention the worker tests give their stores: the longest lookback of the sets plus a day. */
export function retentionFor(sets: readonly CompiledFeatureSet[]) {
  return { horizonMs: Math.max(...sets.map((s) => s.lookbackMs)) + DAY_MS };
}

/**
 * Feeds an in-memory store every transaction (and fraud label) of `rows` and expects `store`'s bounded reads (what
 * scoring uses) to give each row the features of the in-memory store's records, for every set. Returns the number
 * of vectors compared.
 */
export async function expectSameFeatures(
  store: FeatureStore,
  rows: readonly GeneratedTx[],
  sets: readonly CompiledFeatureSet[],
  entities: readonly EntitySpec[],
  chunk = 250,
): Promise<number> {
  const memory = new MemoryFeatureStore(retentionFor(sets));
  for (const t of rows) {
    await memory.apply(transactionEvents(t, entities));
    if (t.fraud) await memory.apply(labelEvents({ ...t, txId: t.id, fraud: true }, entities));
  }
  let compared = 0;
  for (const set of sets)
    for (let i = 0; i < rows.length; i += chunk) {
      const slice = rows.slice(i, i + chunk);
      const [online, offline] = [
        await store.summarize(slice.flatMap((t) => set.summaryQueries(t))),
        await memory.read(slice.flatMap((t) => set.queries(t))),
      ];
      const per = set.entities.length;
      slice.forEach((t, k) => {
        const w = <T>(x: T[]) => x.slice(k * per, (k + 1) * per);
        expect([...set.compute(t, w(online))], t.id).toEqual([...set.compute(t, w(offline))]);
        compared++;
      });
    }
  return compared;
}

/** A backfill CSV as transaction id → the named features, in `names` order. */
export function parseFeatures(csv: string, names: readonly string[]): Map<string, number[]> {
  const [header, ...lines] = csv.trim().split('\n');
  const cols = header!.split(',');
  const at = names.map((n) => cols.indexOf(n));
  return new Map(
    lines.map((l) => {
      const f = l.split(',');
      return [f[0]!, at.map((i) => Number(f[i]))];
    }),
  );
}
