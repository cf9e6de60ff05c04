import { describe, expect, it } from 'vitest';
import { MemoryFeatureStore } from '../../../src/adapters/memory/memory-store.js';
import { FeatureSetSchema } from '../../../src/domain/features/definition.js';
import { compileFeatureSet, entityUnion, transactionEvents } from '../../../src/domain/features/engine.js';
import { DAY_MS } from '../../../src/domain/features/time.js';
import { v3Definition } from '../../helpers/device-sets.js';
import type { GeneratedTx } from '../../helpers/generate.js';
import { rng } from '../../helpers/generate.js';
import { referenceFeatures } from '../../helpers/reference-features.js';

// v3 plus, on the device, a delayed plain count next to the counted distinct ones, and novelty of a card:
// the counts serve the windows that end at the transaction, the device's tiles send the own card's first time.
const definition = FeatureSetSchema.parse({
  ...v3Definition,
  name: 'distinct_mix',
  version: 1,
  features: [
    ...v3Definition.features,
    {
      name: 'DEVICE_ID_NB_TX_7DAY_DELAYED',
      kind: 'window',
      entity: 'device',
      aggregation: 'count',
      window_days: 7,
      delay_days: 1,
    },
    {
      name: 'DEVICE_ID_NEW_CUSTOMER_7DAY_WINDOW',
      kind: 'window',
      entity: 'device',
      aggregation: 'new_with',
      of: 'customer',
      window_days: 7,
      delay_days: 0,
    },
    {
      name: 'DEVICE_ID_SECONDS_SINCE_FIRST_CUSTOMER_USE_7DAY_WINDOW',
      kind: 'window',
      entity: 'device',
      aggregation: 'seconds_since_first_with',
      of: 'customer',
      window_days: 7,
      delay_days: 0,
    },
  ],
});
const set = compileFeatureSet(definition);
const entities = entityUnion([set]);

describe('distinct counts kept by the store (issue 20)', () => {
  it('ask only for windows that end at the transaction, with the own id and whether novelty reads it', () => {
    const device = entities.find((e) => e.name === 'device')!;
    expect(device.linksEndAtSelf).toBe(true);
    expect(device.links).toEqual([{ name: 'customer', key: 'customer_id', novelty: true }]);
    const q = set.summaryQueries({
      id: 'x',
      t: 10 * DAY_MS,
      amount: 1,
      customer_id: 'c',
      terminal_id: 't',
      device_id: 'd',
    });
    expect(q[2]!.distinct).toEqual([{ name: 'customer', own: 'c', novelty: true }]);
    const delayed = compileFeatureSet(
      FeatureSetSchema.parse({
        ...definition,
        features: [
          ...definition.features,
          {
            name: 'DEVICE_ID_NB_CUSTOMERS_DELAYED',
            kind: 'window',
            entity: 'device',
            aggregation: 'count_distinct',
            of: 'customer',
            window_days: 7,
            delay_days: 1,
          },
        ],
      }),
    );
    expect(entityUnion([set, delayed]).find((e) => e.name === 'device')!.linksEndAtSelf).toBe(false);
  });

  it('equal the brute-force reference on a hot device with a delayed plain window and novelty', async () => {
    const store = new MemoryFeatureStore({ horizonMs: set.lookbackMs + DAY_MS });
    const END = Date.parse('2018-06-20T00:00:00Z');
    const random = rng(29);
    const history: GeneratedTx[] = [];
    for (let i = 0; i < 600; i++)
      history.push({
        id: `x${i}`,
        t: END - Math.floor(random() * 9 * 24 * 60) * 60_000 - 60_000,
        amount: 1 + (i % 5),
        customer_id: `c${i % 200}`,
        terminal_id: 'T',
        device_id: 'HOT',
        fraud: false,
      });
    history.sort((a, b) => a.t - b.t);
    for (const x of history) await store.apply(transactionEvents(x, entities));
    for (const card of ['c7', 'c-new', history[0]!.customer_id]) {
      const probe: GeneratedTx = { ...history[0]!, id: `p-${card}`, t: END, customer_id: card };
      const summaries = await store.summarize(set.summaryQueries(probe));
      expect(summaries[2]!.distinct).toBeDefined();
      expect(summaries[2]!.tiles!.linkId?.length ?? 0).toBeLessThanOrEqual(summaries[2]!.tiles!.count.length);
      const got = [...set.compute(probe, summaries)];
      const expected = referenceFeatures(definition, [...history, probe], history.length);
      expect(got.map((v, k) => (Math.abs(v - expected[k]!) < 1e-9 ? expected[k] : v))).toEqual(expected);
    }
  });
});
