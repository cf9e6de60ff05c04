import { z } from 'zod';
import type { Manifest } from '../models/manifest.js';

export const DecisionSchema = z.enum(['approve', 'review', 'decline']);
export type Decision = z.infer<typeof DecisionSchema>;

export type Thresholds = Pick<Manifest['thresholds'], 'review' | 'decline'>;

/** Thresholds are inclusive. A score that is not a number goes to review: a broken model must not approve silently. */
export function decide(score: number, t: Thresholds): Decision {
  if (Number.isNaN(score)) return 'review';
  if (score >= t.decline) return 'decline';
  if (score >= t.review) return 'review';
  return 'approve';
}
