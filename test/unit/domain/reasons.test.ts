import { describe, expect, it } from 'vitest';
import { directionProbe, directionsFromProbe } from '../../../src/domain/scoring/directions.js';
import { compileReasons, plainWords, ReasonCodeSchema } from '../../../src/domain/scoring/reasons.js';

const manifest = {
  inputs: ['TX_AMOUNT', 'TX_DURING_NIGHT', 'SECONDS_SINCE_PREV', 'CONSTANT', 'UNIMPORTANT'],
  importance: {
    TX_AMOUNT: 0.5,
    TX_DURING_NIGHT: 0.2,
    SECONDS_SINCE_PREV: 0.3,
    CONSTANT: 0.5,
    UNIMPORTANT: 0,
  },
  reference: {
    rows: 1,
    features: {},
    score: { edges: [0, 1], counts: [0, 1, 0] },
    moments: {
      TX_AMOUNT: { mean: 50, std: 20 },
      TX_DURING_NIGHT: { mean: 0.2, std: 0.4 },
      SECONDS_SINCE_PREV: { mean: 20_000, std: 10_000 },
      CONSTANT: { mean: 1, std: 0 },
      UNIMPORTANT: { mean: 0, std: 1 },
    },
  },
};

describe('compileReasons', () => {
  it('cites the strongest importance-weighted deviations towards fraud, at most three', () => {
    const explain = compileReasons(manifest, [1, 1, -1, 1, 1]);
    const reasons = explain([134, 1, 100, 7, 50]);
    // 4.2σ × 0.5, 1.99σ × 0.3, 2σ × 0.2
    expect(reasons.map((r) => r.feature)).toEqual(['TX_AMOUNT', 'SECONDS_SINCE_PREV', 'TX_DURING_NIGHT']);
    expect(reasons[0]).toEqual({
      feature: 'TX_AMOUNT',
      value: 134,
      explanation: 'TX_AMOUNT is 4.2σ above typical (134 vs mean 50)',
    });
    expect(reasons[1]!.explanation).toBe('SECONDS_SINCE_PREV is 2.0σ below typical (100 vs mean 20000)');
    for (const r of reasons) expect(ReasonCodeSchema.safeParse(r).success).toBe(true);
  });

  it('ignores deviations away from fraud, small deviations, constant and unimportant inputs', () => {
    const explain = compileReasons(manifest, [1, 1, -1, 1, 1]);
    expect(explain([10, 0, 90_000, 7, 50])).toEqual([]);
    expect(explain([60, 0.2, 20_000, 1, 0])).toEqual([]);
  });

  it('orders by strength and honours max', () => {
    const explain = compileReasons(manifest, undefined, { max: 1 });
    // amount 2σ × 0.5 = 1.0 beats night 2σ × 0.2 = 0.4
    expect(explain([90, 1, 0, 1, 0]).map((r) => r.feature)).toEqual(['TX_AMOUNT']);
    const three = compileReasons(manifest);
    expect(three([60, 1, 50_000, 1, 0]).map((r) => r.feature)).toEqual([
      'SECONDS_SINCE_PREV',
      'TX_DURING_NIGHT',
    ]);
  });

  it('prints float32 values without noise', () => {
    const row = Float32Array.from([312.4, 0, 0, 1, 0]);
    expect(compileReasons(manifest)(row)[0]!.value).toBe(312.4);
  });
});

describe('direction probe', () => {
  it('finds which way each input moves a model', () => {
    const m = {
      inputs: ['A', 'B', 'C'],
      reference: { moments: { A: { mean: 0, std: 1 }, B: { mean: 5, std: 2 } } },
    };
    const { rows, count } = directionProbe(m as never);
    expect(count).toBe(12);
    // score rises with A, falls with B, ignores C
    const scores = Array.from({ length: count }, (_, r) => rows[r * 3]! - rows[r * 3 + 1]!);
    expect(Array.from(directionsFromProbe(3, scores))).toEqual([1, -1, 1]);
  });
});

describe('device and network reasons in plain words (issue 20)', () => {
  it('names device features as an analyst reads them, and keeps the σ form for the rest', () => {
    expect(plainWords('DEVICE_ID_NB_CUSTOMERS_1DAY_WINDOW', 14)).toBe('device used by 14 cards in 24 h');
    expect(plainWords('DEVICE_ID_NB_CUSTOMERS_7DAY_WINDOW', 1)).toBe('device used by 1 card in 7 days');
    expect(plainWords('NETWORK_NB_CUSTOMERS_1DAY_WINDOW', 40)).toBe(
      'network (IP /24 or /48) used by 40 cards in 24 h',
    );
    expect(plainWords('CUSTOMER_ID_NEW_DEVICE_30DAY_WINDOW', 1)).toBe(
      'a device this card has not used in 30 days',
    );
    expect(plainWords('CUSTOMER_ID_SECONDS_SINCE_FIRST_DEVICE_USE_30DAY_WINDOW', 7200)).toBe(
      'card first used this device 2 h ago',
    );
    expect(plainWords('TX_AMOUNT', 5)).toBeUndefined();
  });
});
