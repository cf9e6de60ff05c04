import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadFeatureSets } from '../../src/adapters/fs/feature-set-files.js';
import {
  type CompiledFeatureSet,
  entityUnion,
  labelEvents,
  type TxInput,
  transactionEvents,
} from '../../src/domain/features/engine.js';
import { type RetentionPolicy, rowsOf } from '../../src/domain/features/records.js';
import { DAY_MS } from '../../src/domain/features/time.js';
import type { FeatureStore } from '../../src/ports/feature-store.js';
import { generateTransactions } from '../helpers/generate.js';
import { referenceFeatures } from '../helpers/reference-features.js';

export interface StoreFactory {
  /** A fresh, empty store for each test (e.g. a new key prefix). */
  create(retention: RetentionPolicy): Promise<FeatureStore>;
  teardown?(): Promise<void>;
}

const sets = loadFeatureSets('features');
const v1 = sets.get('transaction_v1')!;
const v2 = sets.get('transaction_v2')!;
const entities = entityUnion([...sets.values()]);
const RETENTION: RetentionPolicy = { horizonMs: v2.lookbackMs + DAY_MS };
const T0 = Date.parse('2018-05-01T12:00:00Z');

const tx = (id: string, t: number, amount: number, customer = 'C1', terminal = 'T1'): TxInput => ({
  id,
  t,
  amount,
  customer_id: customer,
  terminal_id: terminal,
});

async function features(
  store: FeatureStore,
  set: CompiledFeatureSet,
  x: TxInput,
): Promise<Record<string, number>> {
  const windows = await store.read(set.queries(x));
  const v = set.compute(x, windows);
  return Object.fromEntries(set.names.map((n, i) => [n, v[i]!]));
}

const ingest = (store: FeatureStore, x: TxInput) => store.apply(transactionEvents(x, entities));

/** The one suite every FeatureStore implementation must pass. */
export function featureStoreConformance(name: string, factory: StoreFactory): void {
  describe(`FeatureStore conformance: ${name}`, () => {
    let store: FeatureStore;
    beforeEach(async () => {
      store = await factory.create(RETENTION);
      return () => store.close();
    });
    afterAll(async () => factory.teardown?.());

    it('reads back what it applied, sorted by time, within (from, to]', async () => {
      await ingest(store, tx('b', T0 + 2000, 2));
      await ingest(store, tx('a', T0 + 1000, 1.1));
      await ingest(store, tx('c', T0 + 3000, 3));
      const rows = (
        await store
          .read([{ entity: 'customer', id: 'C1', from: T0 + 1000, to: T0 + 3000 }])
          .then((r) => r.map(rowsOf))
      )[0];
      expect(rows!.map((r) => [r.id, r.t, r.amount])).toEqual([
        ['b', T0 + 2000, 2],
        ['c', T0 + 3000, 3],
      ]);
    });

    it('keeps amounts exact', async () => {
      const amounts = [0.1, 0.2, 1e-7, 123456.789, 0, 57.16];
      for (const [i, a] of amounts.entries()) await ingest(store, tx(`x${i}`, T0 + i, a));
      const rows = (
        await store.read([{ entity: 'customer', id: 'C1', from: 0, to: T0 + 100 }]).then((r) => r.map(rowsOf))
      )[0];
      expect(rows!.map((r) => r.amount)).toEqual(amounts);
    });

    it('applies a transaction once however often it is delivered', async () => {
      const x = tx('dup', T0, 10);
      expect(await ingest(store, x)).toEqual(['applied', 'applied']);
      const before = await features(store, v1, tx('next', T0 + 1, 5));
      expect(await ingest(store, x)).toEqual(['duplicate', 'duplicate']);
      expect(await features(store, v1, tx('next', T0 + 1, 5))).toEqual(before);
      expect(before.CUSTOMER_ID_NB_TX_1DAY_WINDOW).toBe(2);
    });

    it('recognises a redelivered id whatever its form or time, numeric ids in any order included', async () => {
      const ids = [
        ...['100', '7', 'tx-a', '100', '007', '7', '12', 'tx-a', '99999999999999999'],
        // Names that plain JavaScript objects treat specially.
        ...['__proto__', 'constructor', '__proto__', 'toString'],
      ];
      const outcomes = [];
      for (const [i, id] of ids.entries()) outcomes.push((await ingest(store, tx(id, T0 + i * 1000, 1)))[0]);
      expect(outcomes).toEqual([
        'applied',
        'applied',
        'applied',
        'duplicate',
        'applied',
        'duplicate',
        'applied',
        'duplicate',
        'applied',
        'applied',
        'applied',
        'duplicate',
        'applied',
      ]);
      const f = await features(store, v1, tx('probe', T0 + 20_000, 1));
      expect(f.CUSTOMER_ID_NB_TX_1DAY_WINDOW).toBe(10);
    });

    it('counts the scored transaction exactly once, stored or not', async () => {
      await ingest(store, tx('p', T0 - 1000, 4));
      const x = tx('self', T0, 6);
      const unseen = await features(store, v2, x);
      await ingest(store, x);
      expect(await features(store, v2, x)).toEqual(unseen);
      expect(unseen.CUSTOMER_ID_NB_TX_1DAY_WINDOW).toBe(2);
      expect(unseen.CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW).toBe(5);
      expect(unseen.CUSTOMER_ID_AMOUNT_RATIO_7DAY_WINDOW).toBe(1.5);
      expect(unseen.CUSTOMER_ID_SECONDS_SINCE_PREV_TX).toBe(1);
    });

    it('orders equal timestamps by arrival: earlier arrivals count, later ones never do', async () => {
      for (const id of ['e1', 'e2', 'e3']) await ingest(store, tx(id, T0, id === 'e2' ? 20 : 10));
      const f = async (id: string, amount: number) => features(store, v1, tx(id, T0, amount));
      expect((await f('e1', 10)).CUSTOMER_ID_NB_TX_1DAY_WINDOW).toBe(1);
      expect((await f('e2', 20)).CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW).toBe(15);
      expect((await f('e3', 10)).CUSTOMER_ID_NB_TX_1DAY_WINDOW).toBe(3);
      expect((await f('unseen', 10)).CUSTOMER_ID_NB_TX_1DAY_WINDOW).toBe(4);
    });

    it('joins labels to transactions whichever arrives first, and accepts corrections', async () => {
      const early = tx('early', T0, 1, 'C1', 'T9');
      const late = tx('late', T0 + 1000, 1, 'C2', 'T9');
      const lab = (x: TxInput, fraud: boolean) =>
        store.apply(
          labelEvents(
            { txId: x.id, t: x.t, fraud, customer_id: x.customer_id, terminal_id: x.terminal_id },
            entities,
          ),
        );
      await ingest(store, early);
      expect(await lab(early, true)).toEqual(['applied', 'applied']);
      expect(await lab(late, true)).toEqual(['applied', 'applied']);
      await ingest(store, late);
      expect(await lab(late, true)).toEqual(['duplicate', 'duplicate']);
      const probe = tx('probe', T0 + 7 * DAY_MS + 5000, 1, 'C3', 'T9');
      let f = await features(store, v1, probe);
      expect(f.TERMINAL_ID_NB_TX_1DAY_WINDOW).toBe(2);
      expect(f.TERMINAL_ID_RISK_1DAY_WINDOW).toBe(1);
      await lab(late, false);
      f = await features(store, v1, probe);
      expect(f.TERMINAL_ID_RISK_1DAY_WINDOW).toBe(0.5);
    });

    it('includes the delayed window boundary t - 7d and excludes t - 8d', async () => {
      const t = T0 + 30 * DAY_MS;
      await ingest(store, tx('at7', t - 7 * DAY_MS, 1, 'A', 'T2'));
      await ingest(store, tx('at8', t - 8 * DAY_MS, 1, 'B', 'T2'));
      await ingest(store, tx('in', t - 7 * DAY_MS - 1, 1, 'D', 'T2'));
      const f = await features(store, v1, tx('now', t, 1, 'E', 'T2'));
      expect(f.TERMINAL_ID_NB_TX_1DAY_WINDOW).toBe(2);
      expect(f.TERMINAL_ID_NB_TX_7DAY_WINDOW).toBe(3);
    });

    it('trims state past the horizon and refuses events older than it', async () => {
      await ingest(store, tx('old', T0, 1));
      await ingest(store, tx('new', T0 + RETENTION.horizonMs + 1, 1));
      const rows = (
        await store
          .read([{ entity: 'customer', id: 'C1', from: 0, to: Number.MAX_SAFE_INTEGER }])
          .then((r) => r.map(rowsOf))
      )[0];
      expect(rows!.map((r) => r.id)).toEqual(['new']);
      expect(await ingest(store, tx('ancient', T0, 1))).toEqual(['late', 'late']);
      // Inside the grace period an out-of-order event still lands in its place.
      expect(await ingest(store, tx('lateok', T0 + 2 * DAY_MS, 1))).toEqual(['applied', 'applied']);
    });

    describe('on generated history', () => {
      const history = generateTransactions({ seed: 7, days: 40, customers: 12, terminals: 9, perDay: 30 });
      beforeAll(() => expect(history.length).toBeGreaterThan(1000));

      it('gives the brute-force reference features for every transaction, scored before or after ingest', async () => {
        let i = 0;
        for (const x of history) {
          const expected = referenceFeatures(v2.definition, history, i);
          const before = await features(store, v2, x);
          await ingest(store, x);
          if (x.fraud) await store.apply(labelEvents({ ...x, txId: x.id, fraud: true }, entities));
          const after = await features(store, v2, x);
          expect(Object.values(before), `${x.id} before ingest`).toEqual(
            expected.map((e, k) => closeTo(e, Object.values(before)[k]!)),
          );
          expect(after).toEqual(before);
          i++;
        }
      });
    });
  });
}

/** Returns `actual` when it is within 1e-9 relative of `expected`, else `expected`, so toEqual shows the diff. */
function closeTo(expected: number, actual: number): number {
  return Math.abs(expected - actual) <= 1e-9 * Math.max(1, Math.abs(expected)) ? actual : expected;
}
