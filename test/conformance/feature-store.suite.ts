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
import type { FutureLimit } from '../../src/ports/clock.js';
import type { FeatureStore } from '../../src/ports/feature-store.js';
import { linkCoverage } from '../helpers/device-sets.js';
import { type GeneratedTx, generateTransactions, rng } from '../helpers/generate.js';
import { referenceFeatures } from '../helpers/reference-features.js';

export interface StoreFactory {
  /** A fresh, empty store for each test (e.g. a new key prefix), refusing events dated beyond `limit`. */
  create(retention: RetentionPolicy, limit: FutureLimit): Promise<FeatureStore>;
  teardown?(): Promise<void>;
  /** The store keeps records' links (device and network features, issue 20): the link cases run. */
  links?: boolean;
}

const sets = loadFeatureSets('features');
const v1 = sets.get('transaction_v1')!;
const v2 = sets.get('transaction_v2')!;
const entities = entityUnion([...sets.values()]);
const RETENTION: RetentionPolicy = { horizonMs: v2.lookbackMs + DAY_MS };
const T0 = Date.parse('2018-05-01T12:00:00Z');
/**
 * The processing clock every store of the suite runs under, as the case has it: all the history the
 * other cases write (May–June 2018) lies in its past, and so is applied as ever.
 */
const NOW = Date.parse('2018-08-02T12:00:00Z');
const MAX_FUTURE_MS = 600_000;

const tx = (id: string, t: number, amount: number, customer = 'C1', terminal = 'T1'): TxInput => ({
  id,
  t,
  amount,
  customer_id: customer,
  terminal_id: terminal,
});

/**
 * The features of `x` as scoring computes them: from the store's bounded read (raw edge tiles plus whole-tile
 * aggregates). They must equal, bit for bit, the features computed from every raw record the store holds.
 */
async function features(
  store: FeatureStore,
  set: CompiledFeatureSet,
  x: TxInput,
): Promise<Record<string, number>> {
  const [summaries, records] = await Promise.all([
    store.summarize(set.summaryQueries(x)),
    store.read(set.queries(x)),
  ]);
  const v = set.compute(x, summaries);
  expect([...v], `${x.id} at ${new Date(x.t).toISOString()}: bounded read = every record`).toEqual([
    ...set.compute(x, records),
  ]);
  return Object.fromEntries(set.names.map((n, i) => [n, v[i]!]));
}

const ingest = (store: FeatureStore, x: TxInput) => store.apply(transactionEvents(x, entities));

/** The one suite every FeatureStore implementation must pass. */
export function featureStoreConformance(name: string, factory: StoreFactory): void {
  describe(`FeatureStore conformance: ${name}`, () => {
    let store: FeatureStore;
    let now = NOW;
    const limit: FutureLimit = { clock: { now: () => now, monotonic: () => 0 }, maxFutureMs: MAX_FUTURE_MS };
    beforeEach(async () => {
      now = NOW;
      store = await factory.create(RETENTION, limit);
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

    it('reads a log written newest first in time order, labels joined, and the same through both reads', async () => {
      const history = [5, 4, 3, 2, 1].map((d) => tx(`n${d}`, T0 + d * 3_600_000, d * 10));
      for (const x of history) await ingest(store, x);
      await store.apply(
        labelEvents(
          { txId: 'n4', t: T0 + 4 * 3_600_000, fraud: true, customer_id: 'C1', terminal_id: 'T1' },
          entities,
        ),
      );
      const rows = (
        await store
          .read([{ entity: 'customer', id: 'C1', from: 0, to: T0 + DAY_MS }])
          .then((r) => r.map(rowsOf))
      )[0];
      expect(rows!.map((r) => [r.id, r.t, r.amount, r.fraud])).toEqual(
        [1, 2, 3, 4, 5].map((d) => [`n${d}`, T0 + d * 3_600_000, d * 10, d === 4]),
      );
      const f = await features(store, v2, tx('probe', T0 + 8 * DAY_MS, 1));
      expect(f.CUSTOMER_ID_NB_TX_30DAY_WINDOW).toBe(6);
      expect(f.CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW).toBeCloseTo((10 + 20 + 30 + 40 + 50 + 1) / 6, 12);
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

    describe('event times ahead of the processing clock (issue 15)', () => {
      const at = (iso: string) => Date.parse(iso);
      const real = [
        tx('r1', at('2018-08-01T09:00:00Z'), 10, 'c', 't'),
        tx('r2', at('2018-08-02T09:00:00Z'), 20, 'c', 't'),
        tx('r3', at('2018-08-02T11:00:00Z'), 30, 'c', 't'),
      ];
      const allRows = async (entity: string, id: string) =>
        rowsOf((await store.read([{ entity, id, from: 0, to: Number.MAX_SAFE_INTEGER }]))[0]!);
      /** The real events are applied and the customer's 7-day count at 2018-08-02T11:00 is 3, as if the typo never came. */
      const expectHistoryIntact = async () => {
        for (const x of real) expect(await ingest(store, x), x.id).toEqual(['applied', 'applied']);
        expect((await features(store, v1, real[2]!)).CUSTOMER_ID_NB_TX_7DAY_WINDOW).toBe(3);
        expect((await allRows('customer', 'c')).map((r) => r.id)).toEqual(['r1', 'r2', 'r3']);
        expect((await allRows('terminal', 't')).map((r) => [r.id, r.fraud])).toEqual([
          ['r1', false],
          ['r2', false],
          ['r3', false],
        ]);
      };

      it('refuses a transaction dated 2081 as future; the real history that follows is applied', async () => {
        const typo = tx('typo', at('2081-08-02T09:00:00Z'), 99, 'c', 't');
        expect(await ingest(store, typo)).toEqual(['future', 'future']);
        await expectHistoryIntact();
        // Refused again once there is history: nothing of it moves.
        expect(await ingest(store, typo)).toEqual(['future', 'future']);
        expect((await allRows('customer', 'c')).map((r) => r.id)).toEqual(['r1', 'r2', 'r3']);
      });

      it('refuses a label whose transaction is dated 2081 as future; the real history that follows is applied', async () => {
        const label = (txId: string, t: number) =>
          store.apply(labelEvents({ txId, t, fraud: true, customer_id: 'c', terminal_id: 't' }, entities));
        expect(await label('typo', at('2081-08-02T09:00:00Z'))).toEqual(['future', 'future']);
        // Nor is a refused label kept to mark its transaction once that arrives.
        expect(await label('r2', at('2081-08-02T09:00:00Z'))).toEqual(['future', 'future']);
        await expectHistoryIntact();
      });

      it('refuses a typo among real events without trimming or hiding the history before it', async () => {
        expect(await ingest(store, real[0]!)).toEqual(['applied', 'applied']);
        expect(await ingest(store, tx('typo', at('2081-08-02T09:00:00Z'), 99, 'c', 't'))).toEqual([
          'future',
          'future',
        ]);
        // An event a full horizon before the real newest one still lands: the typo moved no newest time.
        const old = tx('old', real[0]!.t - RETENTION.horizonMs + DAY_MS, 1, 'c', 't');
        expect(await ingest(store, old)).toEqual(['applied', 'applied']);
        expect((await allRows('customer', 'c')).map((r) => r.id)).toEqual(['old', 'r1']);
      });

      it('accepts up to MAX_EVENT_FUTURE_MS ahead of the clock, read at each write', async () => {
        const edge = tx('edge', NOW + MAX_FUTURE_MS, 1, 'e', 't');
        const beyond = tx('beyond', NOW + MAX_FUTURE_MS + 1, 1, 'e', 't');
        expect(await ingest(store, beyond)).toEqual(['future', 'future']);
        expect(await ingest(store, edge)).toEqual(['applied', 'applied']);
        now += 1;
        expect(await ingest(store, beyond)).toEqual(['applied', 'applied']);
        // In one batch, each event on its own: the refused one changes nothing for the others.
        const mixed = [tx('m1', now - 1000, 1, 'f', 't'), tx('m2', now + MAX_FUTURE_MS + 1, 1, 'f', 't')];
        expect(await store.apply(mixed.flatMap((x) => transactionEvents(x, entities)))).toEqual([
          'applied',
          'applied',
          'future',
          'future',
        ]);
      });
    });

    describe('time tiles (bounded reads)', () => {
      const HOUR = 3_600_000;
      /** A UTC day edge: tiles of every level end here. */
      const EDGE = Date.parse('2018-06-20T00:00:00Z');
      const label = (x: GeneratedTx, fraud: boolean) =>
        store.apply(labelEvents({ ...x, txId: x.id, fraud }, entities));
      /**
       * Scores `x` (stored or not) and expects the brute-force features over `history` (in arrival order): the
       * reference takes records in time order, ties in arrival order, and an unstored `x` arriving last.
       */
      const expectReference = async (history: readonly GeneratedTx[], x: GeneratedTx) => {
        const ordered = [...history].sort((a, b) => a.t - b.t);
        const at = ordered.indexOf(x);
        const all = at >= 0 ? ordered : [...ordered, x];
        const expected = referenceFeatures(v2.definition, all, at >= 0 ? at : all.length - 1);
        const got = Object.values(await features(store, v2, x));
        expect(got, `${x.id} at ${new Date(x.t).toISOString()}`).toEqual(
          expected.map((e, k) => closeTo(e, got[k]!)),
        );
      };
      const gtx = (
        id: string,
        t: number,
        amount: number,
        c: string,
        m: string,
        fraud = false,
      ): GeneratedTx => ({
        ...tx(id, t, amount, c, m),
        fraud,
      });
      /** Times on and next to tile edges, and inside tiles, over the 36 days before EDGE. */
      const offsets = [
        0,
        1,
        -1,
        HOUR,
        HOUR + 1,
        HOUR - 1,
        5 * HOUR + 1_234_000,
        12 * HOUR,
        23 * HOUR + 3_599_999,
        // Ten-minute and six-hour edges, and next to them.
        10 * 60_000,
        HOUR + 10 * 60_000 - 1,
        6 * HOUR,
        18 * HOUR + 1,
      ];

      it('counts records on tile edges, and windows whose bounds fall on edges or inside tiles', async () => {
        const history: GeneratedTx[] = [];
        let n = 0;
        for (let d = 36; d >= 1; d--)
          for (const [k, o] of offsets.entries()) {
            // Two customers, one terminal: each tile of the terminal holds several records, some at equal times.
            const x = gtx(`e${n++}`, EDGE - d * DAY_MS + o, 1 + ((d * 7 + k) % 13) / 4, `c${k % 2}`, 'TE');
            history.push(x);
            await ingest(store, x);
          }
        // Probes on a day edge, an hour edge, next to them and inside a tile, and at stored records' instants.
        const probes = [0, 1, -1, HOUR, -HOUR, 37 * 60_000, 5 * HOUR + 1_234_000, -3 * HOUR - 17].map(
          (o, k) => gtx(`p${k}`, EDGE - DAY_MS + o, 10 + k, `c${k % 2}`, 'TE'),
        );
        for (const p of probes) await expectReference(history, p);
        // Stored transactions, scored after every event: ties at their instants counted by arrival.
        for (const x of history.slice(-3 * offsets.length)) await expectReference(history, x);
        // Bounded: every record in range is there once, most of them in tile aggregates; raw, only the records of
        // the finest tiles that hold a bound (and, in a store that keeps a one-record tile as its record, such tiles).
        const q = v1.summaryQueries(probes[0]!)[1]!;
        const [, terminal] = await store.summarize(v1.summaryQueries(probes[0]!));
        const held = history.filter((x) => x.t > q.bounds[0]! && x.t <= q.bounds.at(-1)!).length;
        const raw = terminal!.end - terminal!.start;
        expect(terminal!.tiles!.count.reduce((a, b) => a + b, 0)).toBe(held - raw);
        expect(raw).toBeLessThan(held / 5);
        const f = await features(store, v1, probes[0]!);
        // (EDGE − 38 d, EDGE − 8 d]: days 37..9 before EDGE hold 9 records each, plus the record on EDGE − 8 d.
        expect(f.TERMINAL_ID_NB_TX_30DAY_WINDOW).toBe(
          history.filter((x) => x.t > EDGE - 38 * DAY_MS && x.t <= EDGE - 8 * DAY_MS).length,
        );
      });

      it('moves the fraud counts of old tiles with labels before and after their transaction, corrections and redeliveries', async () => {
        const random = rng(3);
        const history: GeneratedTx[] = [];
        const early = new Set<string>();
        for (let i = 0; i < 600; i++) {
          const t = EDGE - 31 * DAY_MS + Math.floor(random() * 30 * DAY_MS);
          const x = gtx(
            `l${i}`,
            t,
            Math.round(random() * 10_000) / 100,
            `c${i % 5}`,
            `T${i % 2}`,
            random() < 0.2,
          );
          history.push(x);
        }
        history.sort((a, b) => a.t - b.t);
        // Some labels arrive before their transaction.
        for (const x of history.filter((_, i) => i % 7 === 0)) {
          early.add(x.id);
          await label(x, true);
        }
        for (const x of history) await ingest(store, x);
        const corrected = history.filter((x, i) => !x.fraud && early.has(x.id) && i % 2 === 0);
        for (const x of history.filter((x) => x.fraud)) await label(x, true);
        // Early labels that were wrong: corrected after the transaction, into old tiles.
        for (const x of history.filter((x) => !x.fraud && early.has(x.id))) await label(x, false);
        // Then a correction of the correction for some, and back.
        for (const x of corrected) {
          expect(await label(x, true)).toEqual(['applied', 'applied']);
          expect(await label(x, false)).toEqual(['applied', 'applied']);
        }
        // Redeliveries of transactions and labels change nothing.
        for (const x of history.filter((_, i) => i % 10 === 0)) {
          expect(await ingest(store, x)).toEqual(['duplicate', 'duplicate']);
          if (x.fraud || early.has(x.id)) expect(await label(x, x.fraud)).toEqual(['duplicate', 'duplicate']);
        }
        expect(history.filter((x) => x.fraud).length).toBeGreaterThan(60);
        for (let o = 0; o < DAY_MS; o += 47 * 60_000 + 11)
          await expectReference(history, gtx(`q${o}`, EDGE + o, 5, `c${o % 5}`, `T${o % 2}`));
        for (const x of history.slice(-40)) await expectReference(history, x);
      });

      it('reads only what lies inside the horizon when it cuts into the windows, trimmed or not yet', async () => {
        const history: GeneratedTx[] = [];
        for (let i = 0; i < 80 * 6; i++) {
          // One customer and one terminal: they share their newest time, so one cutoff holds for both.
          const x = gtx(
            `h${i}`,
            EDGE - 80 * DAY_MS + i * 4 * HOUR + (i % 3) * 1000,
            1 + (i % 9),
            'CH',
            'TH',
            i % 5 === 0,
          );
          history.push(x);
          await ingest(store, x);
          if (x.fraud) await label(x, true);
          if (i % 37 !== 36) continue;
          const live = history.filter((y) => y.t > x.t - RETENTION.horizonMs);
          for (const back of [
            DAY_MS / 3,
            5 * DAY_MS,
            20 * DAY_MS,
            31 * DAY_MS + 7,
            RETENTION.horizonMs - HOUR,
          ])
            await expectReference(live, gtx(`o${i}-${back}`, x.t - back, 3, 'CH', 'TH'));
        }
      });
    });

    describe.runIf(factory.links)('device and network features (links)', () => {
      const linked = entityUnion([...sets.values(), linkCoverage]);
      const set = linkCoverage;
      const put = async (x: GeneratedTx) => {
        await store.apply(transactionEvents(x, linked));
        if (x.fraud) await store.apply(labelEvents({ ...x, txId: x.id, fraud: true }, linked));
      };
      const expectReference = async (history: readonly GeneratedTx[], index: number, x = history[index]!) => {
        const expected = referenceFeatures(set.definition, history, index);
        const got = Object.values(await features(store, set, x));
        expect(got, `${x.id} at ${new Date(x.t).toISOString()}`).toEqual(
          expected.map((e, k) => closeTo(e, got[k]!)),
        );
        return got;
      };

      it('gives the brute-force reference on generated history with devices, shared ones and missing ones', async () => {
        const history = generateTransactions({
          seed: 11,
          days: 32,
          customers: 12,
          terminals: 9,
          perDay: 18,
          devices: true,
        });
        expect(history.filter((x) => x.device_id === undefined).length).toBeGreaterThan(30);
        expect(history.filter((x) => x.device_id === 'D-shared-0').length).toBeGreaterThan(40);
        let i = 0;
        for (const x of history) {
          const before = await expectReference(history, i);
          await put(x);
          expect(Object.values(await features(store, set, x))).toEqual(before);
          i++;
        }
      }, 60_000);

      it('counts distinct cards of a hot device exactly across tiles, edges and equal times', async () => {
        const HOUR = 3_600_000;
        const EDGE = Date.parse('2018-06-20T00:00:00Z');
        const history: GeneratedTx[] = [];
        const random = rng(5);
        for (let i = 0; i < 900; i++) {
          const t =
            EDGE - 9 * DAY_MS + Math.floor(random() * 9 * 24) * HOUR + (i % 4 === 0 ? 0 : (i % 7) * 1000);
          history.push({
            ...tx(`h${i}`, t, 1 + (i % 13), `c${Math.floor(random() * (i % 2 ? 40 : 400))}`, `T${i % 3}`),
            fraud: false,
            device_id: i % 10 === 0 ? `D${i % 3}` : 'HOT',
            ip: i % 5 === 0 ? `2001:db8:1:${i % 3}::1` : `192.0.2.${i % 256}`,
          });
        }
        history.sort((a, b) => a.t - b.t);
        for (const x of history) await put(x);
        for (const [k, x] of history.entries()) if (k % 9 === 0) await expectReference(history, k, x);
        const probe = {
          ...tx('probe', EDGE, 5, 'c-new', 'T0'),
          fraud: false,
          device_id: 'HOT',
          ip: '192.0.2.1',
        };
        const got = await expectReference([...history, probe], history.length, probe);
        expect(got[set.names.indexOf('DEVICE_ID_NB_CUSTOMERS_1DAY_WINDOW')]).toBeGreaterThan(40);
        const [, , device] = await store.summarize(set.summaryQueries(probe));
        expect(device!.tiles!.count.length).toBeGreaterThan(0);
      }, 60_000);

      it("counts a hot device's distinct cards from bounded reads (v3), and exactly whatever the read", async () => {
        const HOUR = 3_600_000;
        const END = Date.parse('2018-06-20T00:00:00Z');
        const random = rng(17);
        const history: GeneratedTx[] = [];
        for (let i = 0; i < 700; i++)
          history.push({
            ...tx(
              `v${i}`,
              END - 8 * DAY_MS + Math.floor(random() * 8 * 24 * 6) * (HOUR / 6),
              2,
              `k${i % 350}`,
            ),
            fraud: false,
            device_id: 'HOT3',
            ip: `192.0.2.${i % 7}`,
          });
        history.sort((a, b) => a.t - b.t);
        for (const x of history) await put(x);
        // Redeliveries change nothing.
        for (const x of history.slice(0, 50)) await put(x);
        const v3 = sets.get('transaction_v3')!;
        const check = async (probe: GeneratedTx, counted: boolean) => {
          const expected = referenceFeatures(v3.definition, [...history, probe], history.length);
          const got = Object.values(await features(store, v3, probe));
          expect(got, probe.id).toEqual(expected.map((e, k) => closeTo(e, got[k]!)));
          const device = (await store.summarize(v3.summaryQueries(probe)))[2]!;
          expect(device.distinct !== undefined, `${probe.id} counted by the store`).toBe(counted);
          if (counted)
            expect(device.tiles?.linkId?.length ?? 0).toBeLessThanOrEqual(device.tiles!.count.length);
          return got;
        };
        const at = (id: string, t: number, card: string): GeneratedTx => ({
          ...tx(id, t, 3, card),
          fraud: false,
          device_id: 'HOT3',
          ip: '192.0.2.200',
        });
        const last = history[history.length - 1]!.t;
        // Scoring at "now", after every event: the store counts (a new card, a known one, one seen only long ago).
        await check(at('p-new', last + 1000, 'k-new'), true);
        await check(at('p-known', last + 1000, history[history.length - 1]!.customer_id), true);
        await check(at('p-old', END, history[0]!.customer_id), true);
        await check({ ...at('p-no-ip', END, 'k-none'), ip: undefined }, true);
        // A card at the very instant of the newest record, or a transaction scored in the past: whole sets.
        await check(at('p-tie', last, 'k-tie'), false);
        await check(at('p-past', history[350]!.t + 1, 'k-past'), false);
        // Once ingested, the probe's own card is at its instant: scored again, the same features.
        const probe = at('p-after', last + 2000, 'k-after');
        const before = await check(probe, true);
        await put(probe);
        history.push(probe);
        expect(Object.values(await features(store, v3, probe))).toEqual(before);
        await check(at('p-next', last + 3000, 'k-after'), true);
      }, 60_000);

      it('writes no device or network without the field, and gives the documented defaults', async () => {
        const bare: GeneratedTx = { ...tx('bare', T0, 7, 'CB', 'TB'), fraud: false };
        await put({
          ...tx('with', T0 - 1000, 3, 'CB', 'TB'),
          fraud: false,
          device_id: 'DB',
          ip: '198.51.100.4',
        });
        expect(await store.apply(transactionEvents(bare, linked))).toEqual(['applied', 'applied']);
        const f = await features(store, set, bare);
        expect(f.CUSTOMER_ID_NB_DEVICES_30DAY_WINDOW).toBe(1);
        expect(f.CUSTOMER_ID_NEW_DEVICE_30DAY_WINDOW).toBe(0);
        expect(f.CUSTOMER_ID_SECONDS_SINCE_FIRST_DEVICE_USE_30DAY_WINDOW).toBe(30 * 86_400);
        expect(f.DEVICE_ID_NB_CUSTOMERS_1DAY_WINDOW).toBe(0);
        expect(f.DEVICE_ID_NB_TX_1DAY_WINDOW).toBe(0);
        expect(f.NETWORK_NB_CUSTOMERS_1DAY_WINDOW).toBe(0);
        expect(set.defaulted(bare)).toContain('DEVICE_ID_NB_CUSTOMERS_1DAY_WINDOW');
        expect(set.defaulted(bare)).not.toContain('CUSTOMER_ID_NB_DEVICES_30DAY_WINDOW');
        const other = {
          ...tx('other', T0 + 1000, 7, 'CX', 'TB'),
          fraud: false,
          device_id: 'DB',
          ip: '198.51.100.77',
        };
        const g = await features(store, set, other);
        expect(g.DEVICE_ID_NB_CUSTOMERS_1DAY_WINDOW).toBe(2);
        expect(g.NETWORK_NB_CUSTOMERS_1DAY_WINDOW).toBe(2);
        expect(g.IP_NB_CUSTOMERS_1DAY_WINDOW).toBe(1);
        expect(g.CUSTOMER_ID_NEW_DEVICE_30DAY_WINDOW).toBe(1);
        // Ids with what a store's encoding must keep apart: @, %, = and spaces (device ids are free text).
        const odd = ['c@x.org', 'c%40x', 'c=1'];
        for (const [i, c] of odd.entries())
          await put({
            ...tx(`odd${i}`, T0 + 2000 + i, 1, c, 'TB'),
            fraud: false,
            device_id: 'my phone@home %1',
          });
        const h = await features(store, set, {
          ...tx('odd-probe', T0 + 9000, 1, 'c@x.org', 'TB'),
          device_id: 'my phone@home %1',
        });
        expect(h.DEVICE_ID_NB_CUSTOMERS_1DAY_WINDOW).toBe(3);
        expect(h.CUSTOMER_ID_NEW_DEVICE_30DAY_WINDOW).toBe(0);
        expect(h.CUSTOMER_ID_SECONDS_SINCE_FIRST_DEVICE_USE_30DAY_WINDOW).toBe(7);
      });
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
        // Brute force over the whole history for every transaction: seconds, more on a machine under load.
      }, 60_000);
    });
  });
}

/** Returns `actual` when it is within 1e-9 relative of `expected`, else `expected`, so toEqual shows the diff. */
function closeTo(expected: number, actual: number): number {
  return Math.abs(expected - actual) <= 1e-9 * Math.max(1, Math.abs(expected)) ? actual : expected;
}
