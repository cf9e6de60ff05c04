import { z } from 'zod';

export const DecisionSchema = z.enum(['approve', 'review', 'decline']);
export type Decision = z.infer<typeof DecisionSchema>;

export const DegradedReasonSchema = z.enum([
  'features_timeout',
  'features_unavailable',
  'features_stale',
  'model_timeout',
  'model_error',
]);
export type DegradedReason = z.infer<typeof DegradedReasonSchema>;

export const ReasonSchema = z.object({
  feature: z.string(),
  value: z.number(),
  explanation: z.string(),
});

export const ScoreResultSchema = z.object({
  transaction_id: z.string(),
  score: z.number().min(0).max(1),
  decision: DecisionSchema,
  reasons: z.array(ReasonSchema).max(3),
  model: z.object({ name: z.string(), version: z.string(), feature_set: z.string() }),
  shadow: z.object({ version: z.string() }).optional(),
  degraded: z.boolean(),
  degraded_reasons: z.array(DegradedReasonSchema).optional(),
  timings_ms: z.object({ features: z.number(), inference: z.number(), total: z.number() }),
  features: z.record(z.string(), z.number()).optional(),
  /**
   * Inputs of the model that took their documented default because the request lacked a field they are keyed by
   * (`device_id`, `ip`: transaction_v3's device and network features); absent when none did.
   */
  defaulted_features: z.array(z.string()).optional(),
});
export type ScoreResult = z.infer<typeof ScoreResultSchema>;
