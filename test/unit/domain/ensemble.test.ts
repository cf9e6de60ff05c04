import { describe, expect, it } from 'vitest';
import { compileCombiner } from '../../../src/domain/models/ensemble.js';

const members = (weights: number[]) => weights.map((weight) => ({ weight }) as never);
const logit = (p: number) => Math.log(p / (1 - p));

describe('compileCombiner', () => {
  it('weighted_mean divides by the total weight', () => {
    const combine = compileCombiner({ members: members([3, 1]), combiner: { kind: 'weighted_mean' } });
    expect(combine([0.2, 0.6])).toBeCloseTo((3 * 0.2 + 0.6) / 4, 12);
  });

  it('weighted_mean ignores zero-weight members and refuses an all-zero ensemble', () => {
    expect(
      compileCombiner({ members: members([0, 2]), combiner: { kind: 'weighted_mean' } })([0.9, 0.3]),
    ).toBe(0.3);
    expect(() => compileCombiner({ members: members([0, 0]), combiner: { kind: 'weighted_mean' } })).toThrow(
      /positive weight/,
    );
  });

  it('logistic_stack is σ(intercept + Σ coefᵢ·logit(clip(pᵢ)))', () => {
    const combine = compileCombiner({
      members: members([1, 1]),
      combiner: { kind: 'logistic_stack', intercept: -0.5, coefficients: [0.7, 1.3], clip: 1e-6 },
    });
    const z = -0.5 + 0.7 * logit(0.2) + 1.3 * logit(0.9);
    expect(combine([0.2, 0.9])).toBeCloseTo(1 / (1 + Math.exp(-z)), 12);
  });

  it('logistic_stack clips certainties so 0 and 1 stay finite', () => {
    const combine = compileCombiner({
      members: members([1, 1]),
      combiner: { kind: 'logistic_stack', intercept: 0, coefficients: [1, 1], clip: 0.01 },
    });
    expect(combine([0, 1])).toBeCloseTo(0.5, 12);
    expect(combine([1, 1])).toBeCloseTo(1 / (1 + Math.exp(-2 * logit(0.99))), 12);
    expect(Number.isFinite(combine([0, 0]))).toBe(true);
  });

  it('refuses a stack whose coefficients do not match the members', () => {
    expect(() =>
      compileCombiner({
        members: members([1, 1]),
        combiner: { kind: 'logistic_stack', intercept: 0, coefficients: [1], clip: 1e-6 },
      }),
    ).toThrow(/one coefficient per member/);
  });
});
