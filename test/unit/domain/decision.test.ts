import { describe, expect, it } from 'vitest';
import { decide } from '../../../src/domain/scoring/decision.js';

describe('decide', () => {
  const t = { review: 0.3, decline: 0.8 };

  it('maps scores to approve, review and decline with inclusive thresholds', () => {
    expect(decide(0, t)).toBe('approve');
    expect(decide(0.2999, t)).toBe('approve');
    expect(decide(0.3, t)).toBe('review');
    expect(decide(0.7999, t)).toBe('review');
    expect(decide(0.8, t)).toBe('decline');
    expect(decide(1, t)).toBe('decline');
  });

  it('equal thresholds never review', () => {
    expect(decide(0.5, { review: 0.5, decline: 0.5 })).toBe('decline');
    expect(decide(0.49, { review: 0.5, decline: 0.5 })).toBe('approve');
  });

  it('sends a NaN score to review rather than approving it', () => {
    expect(decide(Number.NaN, t)).toBe('review');
  });
});
